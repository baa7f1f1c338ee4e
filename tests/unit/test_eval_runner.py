import json

import pytest

from reasonlab.eval.runner import evaluate
from reasonlab.types import SamplingParams


def answer_right_on_even_samples(prompt, i):
    q = prompt[-1]["content"]  # "q<k>"
    k = int(q[1:])
    return f"<think>hmm</think><answer>{k if i % 2 == 0 else k + 1}</answer>"


def test_evaluate_writes_samples_and_exact_metrics(tmp_path, toy_task, scripted):
    gen = scripted(answer_right_on_even_samples)
    params = SamplingParams(n=4, temperature=0.7)
    summary = evaluate(gen, toy_task, toy_task.load(limit=6), prompt_format="plain",
                       params=params, out_dir=tmp_path, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 24
    assert {"problem_id", "prompt", "completion", "extracted", "correct", "tokens"} <= set(rows[0])
    m = summary["metrics"]
    assert m["pass@1"] == pytest.approx(0.5)
    assert m["pass@4"] == pytest.approx(1.0)
    assert m["maj@4"] == pytest.approx(1.0)  # 2-2 tie, the first seen (correct) wins
    assert m["format_rate"] == 1.0
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["metrics"] == m and on_disk["n"] == 4 and on_disk["task"] == "toy"


def test_evaluate_resumes_without_redoing_problems(tmp_path, toy_task, scripted):
    params = SamplingParams(n=2)
    first = scripted(answer_right_on_even_samples)
    evaluate(first, toy_task, toy_task.load(limit=4), prompt_format="plain", params=params,
             out_dir=tmp_path, progress=False)
    # a crash mid-write leaves a torn line; it must be dropped, not crash the resume
    with (tmp_path / "samples.jsonl").open("a") as f:
        f.write('{"problem_id": "toy/9", "sampl')
    second = scripted(answer_right_on_even_samples)
    summary = evaluate(second, toy_task, toy_task.load(limit=10), prompt_format="plain",
                       params=params, out_dir=tmp_path, progress=False)
    assert second.prompts_seen == 6
    assert summary["problems"] == 10
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 20 and all(json.loads(x) for x in lines)


def test_partial_problem_is_redone(tmp_path, toy_task, scripted):
    row = {"problem_id": "toy/0", "sample_index": 0, "completion": "x", "extracted": None,
           "correct": False, "tokens": 1}
    (tmp_path / "samples.jsonl").write_text(json.dumps(row) + "\n")
    gen = scripted(answer_right_on_even_samples)
    summary = evaluate(gen, toy_task, toy_task.load(limit=1), prompt_format="plain",
                       params=SamplingParams(n=2), out_dir=tmp_path, progress=False)
    assert gen.prompts_seen == 1
    assert summary["metrics"]["pass@1"] == 0.5
