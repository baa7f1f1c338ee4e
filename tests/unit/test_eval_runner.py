import json
import os

import pytest

from reasonlab.eval.runner import evaluate, open_run, run_settings
from reasonlab.tasks.errors import DataError
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
             out_dir=tmp_path, chunk_problems=8, progress=False)  # recorded: the resume keeps it
    # a crash mid-write leaves a torn line; it must be dropped, not crash the resume
    with (tmp_path / "samples.jsonl").open("a") as f:
        f.write('{"problem_id": "toy/9", "sampl')
    second = scripted(answer_right_on_even_samples)
    summary = evaluate(second, toy_task, toy_task.load(limit=10), prompt_format="plain",
                       params=params, out_dir=tmp_path, progress=False)
    # chunk 0 (problems 0-7) is generated whole, as an uninterrupted run would, so that its
    # samples do not depend on where the first run stopped; 0-3 keep their rows from the first run
    assert second.prompts_seen == 10
    assert summary["problems"] == 10
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 20 and all(json.loads(x) for x in lines)
    assert len({(r["problem_id"], r["sample_index"]) for r in map(json.loads, lines)}) == 20


def test_partial_problem_is_completed_keeping_its_samples(tmp_path, toy_task, scripted):
    params = SamplingParams(n=2)
    evaluate(scripted(answer_right_on_even_samples), toy_task, toy_task.load(limit=1),
             prompt_format="plain", params=params, out_dir=tmp_path, progress=False)
    path = tmp_path / "samples.jsonl"
    first, second = path.read_text().splitlines()
    path.write_text(first + "\n" + second[:25])  # a kill mid-write: sample 1 torn
    gen = scripted(answer_right_on_even_samples)
    summary = evaluate(gen, toy_task, toy_task.load(limit=1), prompt_format="plain",
                       params=params, out_dir=tmp_path, progress=False)
    assert gen.prompts_seen == 1
    assert path.read_text().splitlines() == [first, second]  # sample 0 kept, sample 1 redone alike
    assert summary["metrics"]["pass@1"] == 0.5


class SeedEcho:
    """Answers "<answer>seed/i</answer>": which seed and row made each sample is on disk."""

    name = "seed-echo"

    def __init__(self, fail=False):
        self.fail, self.calls = fail, []

    def generate(self, prompts, params):
        from reasonlab.types import Completion

        self.calls.append((len(prompts), params))
        if self.fail:
            raise KeyboardInterrupt("killed before generating")
        return [[Completion(text=f"<answer>{params.seed}/{i}</answer>", token_ids=(1,))
                 for i in range(params.n)] for _ in prompts]


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_larger_n_keeps_samples_and_extends_with_fresh_seed(tmp_path, toy_task):
    """Issue 14 item 2: a re-run with a larger n emptied samples.jsonl before generating."""
    probs = toy_task.load(limit=3)
    run = lambda gen, n: evaluate(gen, toy_task, probs, prompt_format="plain", out_dir=tmp_path,  # noqa: E731
                                  params=SamplingParams(n=n, temperature=0.7, seed=5), progress=False)
    run(SeedEcho(), 2)
    before = _rows(tmp_path / "samples.jsonl")
    with pytest.raises(KeyboardInterrupt):
        run(SeedEcho(fail=True), 4)
    assert _rows(tmp_path / "samples.jsonl") == before  # nothing lost by the interrupted re-run
    gen = SeedEcho()
    summary = run(gen, 4)
    rows = _rows(tmp_path / "samples.jsonl")
    assert rows[:6] == before
    assert [(n, p.n) for n, p in gen.calls] == [(3, 2)]  # only the missing two samples each
    extra_seed = gen.calls[0][1].seed
    assert extra_seed not in (5, None)  # new draws, not copies of samples 0 and 1
    assert sorted((r["problem_id"], r["sample_index"], r["extracted"]) for r in rows[6:]) == [
        (f"toy/{k}", i, f"{extra_seed}/{i - 2}") for k in range(3) for i in (2, 3)]
    assert summary["n"] == 4 and summary["problems"] == 3
    small = SeedEcho()
    assert run(small, 1)["n"] == 1 and small.calls == []  # fewer samples: the first ones, no work


@pytest.mark.parametrize("change, words", [
    ({"temperature": 0.2}, "temperature=0.7, not 0.2"),
    ({"max_new_tokens": 9}, "max_new_tokens=256, not 9"),
    ({"seed": 1}, "seed=5, not 1"),
])
def test_other_setting_change_is_refused_naming_it(tmp_path, toy_task, change, words):
    """Issue 14 item 3: other settings reused old samples under a new label."""
    probs = toy_task.load(limit=2)
    base = dict(n=2, temperature=0.7, seed=5)
    evaluate(SeedEcho(), toy_task, probs, prompt_format="plain", params=SamplingParams(**base),
             out_dir=tmp_path, progress=False)
    gen = SeedEcho()
    with pytest.raises(DataError) as info:
        evaluate(gen, toy_task, probs, prompt_format="plain", params=SamplingParams(**{**base, **change}),
                 out_dir=tmp_path, progress=False)
    msg = str(info.value)
    assert words in msg and "another --out" in msg and "\n" not in msg and gen.calls == []
    with pytest.raises(DataError, match="model='', not 'm2'"):
        open_run(tmp_path, run_settings("toy", "m2", "plain", SamplingParams(**base)), 2)


def test_samples_without_settings_are_refused(tmp_path, toy_task):
    run = lambda: evaluate(SeedEcho(), toy_task, toy_task.load(limit=1), prompt_format="plain",  # noqa: E731
                           params=SamplingParams(), out_dir=tmp_path, progress=False)
    run()
    samples = (tmp_path / "samples.jsonl").read_bytes()
    for damage in ("", '{"settings": {"ta'):  # emptied, torn (we write it atomically; a user may not)
        (tmp_path / "run.json").write_text(damage)
        with pytest.raises(DataError, match=f"{tmp_path / 'run.json'}: missing or unreadable"):
            run()
    (tmp_path / "run.json").unlink()
    with pytest.raises(DataError, match="another --out"):
        run()
    assert (tmp_path / "samples.jsonl").read_bytes() == samples


def test_damage_before_the_last_line_is_refused_naming_the_line(tmp_path, toy_task):
    probs = toy_task.load(limit=2)
    evaluate(SeedEcho(), toy_task, probs, prompt_format="plain", params=SamplingParams(n=2),
             out_dir=tmp_path, progress=False)
    path = tmp_path / "samples.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="samples.jsonl:2: malformed JSON"):
        evaluate(SeedEcho(), toy_task, probs, prompt_format="plain", params=SamplingParams(n=2),
                 out_dir=tmp_path, progress=False)
    assert path.read_text().splitlines() == lines  # refused, not "repaired" by cutting


def test_unwritable_out_refused_before_generating(tmp_path, toy_task):
    (tmp_path / "file").write_text("x")
    outs = [(tmp_path / "file", "is a file"), (tmp_path / "file" / "run", "cannot write there")]
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o500)
        outs.append((tmp_path / "ro", "cannot write there"))
    for out, words in outs:
        gen = SeedEcho()
        with pytest.raises(DataError, match=words):
            evaluate(gen, toy_task, toy_task.load(limit=1), prompt_format="plain",
                     params=SamplingParams(), out_dir=out, progress=False)
        assert gen.calls == []


def test_a_failed_start_does_not_lock_the_run_dir(tmp_path):
    """run.json is written before the model loads; a start that failed there (a typo in --model)
    made no samples, so the corrected command must not be refused."""
    open_run(tmp_path, {"model": "typo", "task": "arith"}, 1)
    record = open_run(tmp_path, {"model": "smollm2-135m", "task": "arith"}, 1)
    assert record["settings"]["model"] == "smollm2-135m"
    (tmp_path / "samples.jsonl").write_text('{"problem_id": "a", "sample_index": 0}\n')
    with pytest.raises(DataError, match="model='smollm2-135m', not 'other'"):
        open_run(tmp_path, {"model": "other", "task": "arith"}, 1)


@pytest.mark.parametrize("n, calls", [(1, 2), (4, 7), (16, 13)])
def test_default_unit_is_about_64_rows(tmp_path, scripted, n, calls):
    """100 problems: one generate call per 64 problems at n=1 (rows, not problems, set the
    batch), per 16 at n=4, and never fewer than 8 problems (n=16: 128 rows a call)."""
    from conftest import ToyTask

    gen = scripted(answer_right_on_even_samples)
    task = ToyTask(size=100)
    evaluate(gen, task, task.load(), prompt_format="plain", params=SamplingParams(n=n),
             out_dir=tmp_path, progress=False)
    assert gen.calls == calls
    assert json.loads((tmp_path / "run.json").read_text())["chunk_problems"] == {1: 64, 4: 16, 16: 8}[n]
