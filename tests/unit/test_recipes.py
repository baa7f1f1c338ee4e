"""Multi-stage recipes (distill, journey, r1) end to end on tiny random models, with a scripted
teacher behind a real ``reasonlab serve`` server: stage manifests, skipping on rerun, redoing a
stage (and the later ones) when its config changes, and ``kill -9`` mid-stage then rerun ending
with the same traces, weights and metrics as an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest
import yaml
from faults import kill_when, run
from live_server import live
from tiny_model_dir import save_tiny_model
from typer.testing import CliRunner

from reasonlab.cli.main import app
from reasonlab.io import read_json, read_jsonl_rows
from reasonlab.serve import create_app
from reasonlab.types import Completion

PHRASES = ["First I add up: {a} {op} {b} = {v}. So the result is {v}.",
           "Working it out step by step, {a} {op} {b} = {v}, which I check once more.",
           "Let me compute carefully: {a} {op} {b} = {v}; that is the answer.",
           "Counting from {a} with {op}{b} lands on {v}, so {a} {op} {b} = {v}."]


class Teacher:
    """Right on two of three samples, off by one (with the false step written out) on the rest;
    which ones depends only on the question, the request's seed and the sample index, so a
    resumed run asks for and gets exactly what an uninterrupted one does."""

    name = "teacher"

    def __init__(self):
        self.sampled = 0  # problems asked for with n > 1 (generation, not greedy evaluation)

    def generate(self, prompts, params):
        self.sampled += len(prompts) if params.n > 1 else 0
        out = []
        for p in prompts:
            q = p[1]["content"]
            a, op, b = re.search(r"(\d+) ([+-]) (\d+)", q).groups()
            v = int(a) + int(b) if op == "+" else int(a) - int(b)
            texts = []
            for i in range(params.n):
                h = int(hashlib.sha256(f"{q}|{params.seed}|{i}".encode()).hexdigest(), 16)
                val = v + (h % 3 == 0)
                texts.append(PHRASES[h % 4].format(a=a, op=op, b=b, v=val) + f"\n</think>\n<answer>{val}</answer>")
            out.append([Completion(text=t, token_ids=tuple(range(len(t.split()))), prompt_token_ids=(1, 2))
                        for t in texts])
        return out

    def sync_weights(self):
        pass


TEACHER = Teacher()


@pytest.fixture(scope="module")
def server():
    with live(create_app(TEACHER, "teacher-1")) as url:
        yield url + "/v1"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


TASK = {"name": "arith", "options": {"max_number": 9}, "split": "train", "prompt": "r1"}


def sft_cfg(model=None, **extra) -> dict:
    c = {"epochs": 2, "batch_size": 4, "max_len": 128, "pack": False, "dtype": "fp32", "report_to": "none",
         "save_every": 1, "keep_last": 2, "optim": {"lr": 3e-3, "warmup_steps": 1, "micro_batch": 4}}
    if model is not None:
        c["model"] = str(model)
    return {**c, **extra}


def gen_cfg(**extra) -> dict:
    return {"task": TASK, "limit": 6, "n": 3, "max_new_tokens": 32, "concurrency": 2,
            "filters": {"decontam": False}, **extra}


EVAL = {"limit": 4, "max_new_tokens": 12}


def write(path, cfg: dict):
    path.write_text(yaml.safe_dump(cfg))
    return path


def invoke(*args):
    res = CliRunner().invoke(app, ["recipe", *map(str, args), "--no-progress"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def weights(checkpoint) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(checkpoint.glob("*.safetensors")))


def same_weights(a, b, atol: float = 1e-6) -> bool:
    """Resume promises weights within 1e-6 of an uninterrupted run, not bit-identical files: a
    matmul's rounding can differ by one ulp between processes under load."""
    import torch
    from safetensors.torch import load_file

    wa, wb = load_file(next(a.glob("*.safetensors"))), load_file(next(b.glob("*.safetensors")))
    return wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=atol, rtol=0) for k in wa)


@pytest.fixture(scope="module")
def distill(tmp_path_factory, server, tiny):
    root = tmp_path_factory.mktemp("distill")
    cfg = write(root / "distill.yaml", {"teacher": {"base_url": server}, "generate": gen_cfg(),
                                        "sft": sft_cfg(tiny), "eval": EVAL})
    out = root / "run"
    return cfg, out, invoke("distill", "--config", cfg, "--out", out)


STAGES = ("eval_student_before", "eval_teacher", "generate", "sft", "eval_student_after")


def test_distill_end_to_end(distill):
    _, out, output = distill
    for name in STAGES:
        m = read_json(out / name / "manifest.json")
        assert m["status"] == "done" and m["config_hash"] and all(o["hash"] for o in m["outputs"].values())
    gen, sft = read_json(out / "generate" / "manifest.json"), read_json(out / "sft" / "manifest.json")
    assert sft["inputs"]["traces"] == gen["outputs"]["traces"]  # the SFT read exactly what generate wrote
    traces = read_jsonl_rows(out / "generate" / "traces.jsonl")
    assert traces and all(r["provenance"]["verdict"]["correct"] for r in traces)
    assert gen["metrics"]["written"] == len(traces) and 0 < gen["metrics"]["pass_rate_mean"] < 1
    assert sft["metrics"]["steps"] == len(read_jsonl_rows(out / "sft" / "metrics.jsonl")) > 0
    summary = read_json(out / "summary.json")
    teacher = summary["evals"]["teacher"]
    assert teacher["format_rate"] == 1.0 and teacher["nonempty_think_rate"] == 1.0 and teacher["problems"] == 4
    assert summary["evals"]["student before"]["format_rate"] == 0.0  # a random model writes no format
    html = (out / "report.html").read_text()
    assert "student before" in html and "student after" in html and "teacher" in html and "<img" in html
    assert "report:" in output and "teacher: pass@1" in output


def test_rerun_skips_finished_stages_and_a_config_change_redoes_later_ones(distill, tmp_path):
    cfg, out, _ = distill
    run_dir = tmp_path / "run"
    shutil.copytree(out, run_dir)
    before = {n: (run_dir / n / "manifest.json").read_bytes() for n in STAGES}
    again = invoke("distill", "--config", cfg, "--out", run_dir)
    assert all(f"{n}: done, skipped" in again for n in STAGES)
    assert before == {n: (run_dir / n / "manifest.json").read_bytes() for n in STAGES}

    changed = invoke("distill", "--config", cfg, "--out", run_dir, "sft.optim.lr=0.001")
    assert "generate: done, skipped" in changed and "sft: its config changed" in changed
    assert "eval_student_after: its inputs changed" in changed, changed
    assert read_json(run_dir / "sft" / "manifest.json")["config"]["optim"]["lr"] == 0.001
    assert weights(run_dir / "sft" / "checkpoints" / f"step-{read_json(run_dir / 'sft' / 'manifest.json')['metrics']['steps']}") \
        != weights(out / "sft" / "checkpoints" / f"step-{read_json(out / 'sft' / 'manifest.json')['metrics']['steps']}")
    for n in ("eval_student_before", "eval_teacher", "generate"):
        assert before[n] == (run_dir / n / "manifest.json").read_bytes()

    # a deleted output redoes its stage; a changed selection redoes generate over the same samples
    (run_dir / "eval_teacher" / "summary.json").unlink()
    sampled = TEACHER.sampled
    reselect = invoke("distill", "--config", cfg, "--out", run_dir, "sft.optim.lr=0.001",
                      "generate.selection.max_per_problem=1")
    assert "eval_teacher: output" in reselect and (run_dir / "eval_teacher" / "summary.json").exists()
    assert "generate: its config changed since the last run; redoing this stage (reusing its samples)" in reselect
    assert TEACHER.sampled == sampled  # nothing re-requested
    rows = read_jsonl_rows(run_dir / "generate" / "traces.jsonl")
    assert len(rows) == len({r["problem_id"] for r in rows}) < len(read_jsonl_rows(out / "generate" / "traces.jsonl"))
    assert "sft: its inputs changed" in reselect


def test_sigkill_in_generate_and_in_sft_then_rerun_matches_uninterrupted(distill, tmp_path):
    cfg, ref_out, _ = distill
    out = tmp_path / "run"
    args = ["recipe", "distill", "--config", str(cfg), "--out", str(out), "--no-progress"]
    kill_when(args, out / "eval_student_before" / "run.json")
    assert not (out / "eval_student_before" / "manifest.json").exists()
    kill_when(args, out / "generate" / "raw.jsonl")
    assert not (out / "generate" / "manifest.json").exists()
    kill_when(args, out / "sft" / "checkpoints" / "step-2")
    assert not (out / "sft" / "manifest.json").exists()
    res = run(args)
    assert "generate: done, skipped" in res.stderr and "sft: resuming" in res.stderr
    assert "eval_student_before: done, skipped" in res.stderr
    assert (out / "generate" / "traces.jsonl").read_bytes() == (ref_out / "generate" / "traces.jsonl").read_bytes()
    steps = read_json(ref_out / "sft" / "manifest.json")["metrics"]["steps"]
    assert read_json(out / "sft" / "manifest.json")["metrics"]["steps"] == steps
    assert same_weights(out / "sft" / "checkpoints" / f"step-{steps}", ref_out / "sft" / "checkpoints" / f"step-{steps}")
    got, want = read_json(out / "summary.json")["evals"], read_json(ref_out / "summary.json")["evals"]
    assert got == want


def test_journey_end_to_end(tmp_path, server, tiny):
    cfg = write(tmp_path / "journey.yaml", {"teacher": {"base_url": server}, "generate": gen_cfg(n=4),
                                            "sft": sft_cfg(tiny, epochs=1, max_len=320), "eval": EVAL, "seed": 3})
    out = tmp_path / "run"
    output = invoke("journey", "--config", cfg, "--out", out)
    stats = read_json(out / "journey_data" / "stats.json")
    journey = read_jsonl_rows(out / "journey_data" / "journey.jsonl")
    shortcut = read_jsonl_rows(out / "journey_data" / "shortcut.jsonl")
    assert journey and shortcut and stats["journey"]["examples"] == len(journey)
    for r in journey:  # wrong attempt, a reflection naming the false step, then the right solution
        text = r["messages"][-1]["content"]
        a, op, b, true, wrong = re.search(r"(\d+) ([+-]) (\d+) is (-?\d+), not (-?\d+)\.", text).groups()
        assert int(true) == (int(a) + int(b) if op == "+" else int(a) - int(b)) and int(wrong) == int(true) + 1
        assert text.index(f"= {wrong}") < text.index(f"is {true}, not") < text.rindex(f"= {true}")
        assert text.endswith(f"<answer>{true}</answer>")
    budget = stats["token_budget"]
    for kind in ("journey", "shortcut"):  # equal budgets: each set within it, short of it by under one example
        assert budget - 80 < stats[kind]["tokens"] <= budget
    fates = read_jsonl_rows(out / "generate" / "samples.jsonl")
    both = {s["problem_id"] for s in fates if s["fate"] == "incorrect"} & \
        {s["problem_id"] for s in fates if s["fate"] == "kept"}
    assert {r["problem_id"] for r in journey + shortcut} <= both and stats["problems"] == len(both)
    for kind in ("shortcut", "journey"):
        assert read_json(out / f"sft_{kind}" / "manifest.json")["inputs"]["data"]["path"].endswith(f"{kind}.jsonl")
        assert "pass@1_se" in read_json(out / f"eval_{kind}" / "manifest.json")["metrics"]
    html = (out / "report.html").read_text()
    assert "journey - shortcut pass@1" in html and "shortcut" in output and "journey:" in output
    versus = read_json(out / "summary.json")["journey_minus_shortcut"]
    assert versus["problems"] == EVAL["limit"] and versus["ci95"][0] <= versus["gain"] <= versus["ci95"][1]


def test_journey_builder_is_deterministic_for_a_seed(tmp_path, server):
    from reasonlab.models import load_tokenizer
    from reasonlab.recipes.journey_data import build

    gen = tmp_path / "gen"
    cfg = write(tmp_path / "j.yaml", {"teacher": {"base_url": server}, "generate": gen_cfg(n=4)})
    from reasonlab.config import load_config
    from reasonlab.recipes.journey import JourneyConfig
    from reasonlab.recipes.parts import generate_stage, teacher_backend

    c = load_config(JourneyConfig, cfg)
    generate_stage(c.generate, lambda: teacher_backend(c.teacher), True, False)(gen)
    tok = load_tokenizer("smollm2-135m")
    files = []
    for i, seed in enumerate((7, 7, 8)):
        build(gen, tmp_path / f"b{i}", tok, seed=seed)
        files.append((tmp_path / f"b{i}" / "journey.jsonl").read_bytes())
    assert files[0] == files[1] and files[0] != files[2]
    half = build(gen, tmp_path / "half", tok, seed=7, token_budget=200)
    assert half["token_budget"] == 200 and half["journey"]["tokens"] <= 200 and half["shortcut"]["tokens"] <= 200

    # a wrong attempt that closed its think block twice is not used: one block per journey row
    fates = read_jsonl_rows(gen / "samples.jsonl")
    bad = next(s for s in fates if s["fate"] == "incorrect")
    raw = read_jsonl_rows(gen / "raw.jsonl")
    for r in raw:
        if (r["problem_id"], r["sample_index"]) == (bad["problem_id"], bad["sample_index"]):
            r["text"] = "2 + 2 = 5\n</think>\nno wait\n</think>\n<answer>5</answer>"
    (gen / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw))
    build(gen, tmp_path / "stray", tok, seed=7)
    rows = read_jsonl_rows(tmp_path / "stray" / "journey.jsonl")
    assert rows and all(r["messages"][-1]["content"].count("</think>") == 1 for r in rows)
    assert not any(r["problem_id"] == bad["problem_id"] and r["provenance"]["wrong_sample"] == bad["sample_index"]
                   for r in rows)


def r1_traces(path, n: int):
    from reasonlab import prompts
    from reasonlab.tasks.base import get_task

    rows = []
    for p in get_task("arith", max_number=9).load("train", n):
        a, op, b = p.question[8:-1].split()
        rows.append({"messages": prompts.build(p, "r1_noprefill") + [{"role": "assistant", "content":
                     f"<think>\nI work it out: {a} {op} {b} = {p.answer}.\n</think>\n<answer>{p.answer}</answer>"}]})
    rows[0]["messages"][-1]["content"] = "<think>\n</think>\n<answer>1</answer>"  # empty thinking: dropped
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_r1_end_to_end_and_bad_config_errors(tmp_path, tiny):
    grpo = {"steps": 2, "dtype": "fp32", "task": TASK, "report_to": "none", "save_every": 1,
            "rewards": {"weights": {"accuracy": 1.0, "format": 1.0, "language": 0.5}},
            "sampling": {"prompts_per_step": 2, "group_size": 2, "max_new_tokens": 8},
            "optim": {"lr": 1e-3, "micro_batch": 4}}
    cfg = write(tmp_path / "r1.yaml", {
        "model": str(tiny), "cold_start": {"traces": str(r1_traces(tmp_path / "cold.jsonl", 8))},
        "sft_cold": sft_cfg(epochs=1), "grpo": grpo,
        "rejection": {"generate": gen_cfg(limit=3, n=2, max_new_tokens=8, min_written=0, batch=3),
                      "plain_examples": 4},
        "sft": sft_cfg(epochs=1), "grpo_final": {**grpo, "steps": 1}, "eval": {"limit": 3, "max_new_tokens": 8}})
    out = tmp_path / "run"
    output = invoke("r1", "--config", cfg, "--out", out)
    assert read_json(out / "cold_data" / "manifest.json")["metrics"] == {"rows": 8, "kept": 7}
    assert read_json(out / "sft_cold" / "manifest.json")["metrics"]["steps"] == 2  # 7 rows / batch 4
    grpo_m = read_json(out / "grpo" / "manifest.json")
    assert grpo_m["metrics"]["steps"] == 2 and grpo_m["inputs"]["model"] == \
        read_json(out / "sft_cold" / "manifest.json")["outputs"]["model"]
    rej = read_json(out / "rejection" / "manifest.json")
    assert rej["inputs"]["model"] == grpo_m["outputs"]["model"] and rej["metrics"]["samples"] == 6
    mix = read_jsonl_rows(out / "sft_data" / "data.jsonl")
    plain = [r for r in mix if r["provenance"]["set"] == "non-reasoning"]
    assert len(plain) == 4 and all(r["messages"][-1]["content"].lstrip("-").isdigit() for r in plain)
    sft_m = read_json(out / "sft" / "manifest.json")
    assert sft_m["inputs"]["model"]["path"] == str(tiny)  # the base model, not a checkpoint of this run
    assert read_json(out / "grpo_final" / "manifest.json")["inputs"]["model"] == sft_m["outputs"]["model"]
    assert set(read_json(out / "summary.json")["evals"]) == {"base", "cold-start SFT", "cold-start SFT + GRPO",
                                                             "final (R1 recipe)"}
    assert "final (R1 recipe): pass@1" in output and (out / "report.html").exists()

    bad = CliRunner().invoke(app, ["recipe", "r1", "--config", str(cfg), "--out", str(tmp_path / "x"),
                                   "grpo.model=other"])
    assert bad.exit_code == 2 and "grpo.model: is set by the recipe" in bad.output
    missing = CliRunner().invoke(app, ["recipe", "r1", "--config", str(cfg), "--out", str(tmp_path / "y"),
                                       f"cold_start.traces={tmp_path / 'nope.jsonl'}"])
    assert missing.exit_code == 2 and "cold_start.traces:" in missing.output and "Traceback" not in missing.output


def test_stage_runner_redoes_a_stage_whose_input_file_changed_and_resumes_one_that_failed(tmp_path):
    from reasonlab.recipes.stages import Result, Stages, ref

    src = tmp_path / "data.txt"
    src.write_text("one")
    calls = []

    def copy(folder):
        calls.append("copy")
        (folder / "out.txt").write_text(src.read_text().upper())
        return Result({"out": folder / "out.txt"}, {"chars": len(src.read_text())})

    def count(fail=False):
        def fn(folder):
            calls.append("count")
            (folder / "partial").write_text("x")  # work a rerun must find again
            if fail:
                raise RuntimeError("killed")
            return Result({"n": folder / "partial"}, {})
        return fn

    def recipe(lines, fail=False):
        st = Stages(tmp_path / "run", lines.append)
        a = st.run("copy", {"k": 1}, {"src": src}, copy)
        st.run("count", {}, {"a": ref(a, "out")}, count(fail))

    with pytest.raises(RuntimeError):
        recipe(lines := [], fail=True)
    recipe(lines := [])
    assert lines == ["copy: done, skipped", "count: resuming", "count: finished"]
    src.write_text("two!")
    recipe(lines := [])
    assert lines[0] == "copy: its inputs changed since the last run; redoing this stage and every later one"
    assert lines[2].startswith("count: its inputs changed")
    assert read_json(tmp_path / "run" / "count" / "manifest.json")["inputs"]["a"] == \
        read_json(tmp_path / "run" / "copy" / "manifest.json")["outputs"]["out"]
    assert (tmp_path / "run" / "copy" / "out.txt").read_text() == "TWO!" and calls == ["copy", "count", "count", "copy", "count"]


def test_r1_cold_start_takes_exactly_one_source_and_worked_needs_a_task_that_can_work():
    from reasonlab.config import ConfigError, load_config
    from reasonlab.recipes.r1 import R1Config
    from reasonlab.tasks.base import get_task
    from reasonlab.traces.worked import worked_rows

    with pytest.raises(ConfigError, match="exactly one source of cold-start traces"):
        load_config(R1Config, "r1_demo", ["cold_start.traces=some.jsonl"])
    with pytest.raises(ConfigError, match="stop_after"):
        load_config(R1Config, "r1_demo", ["stop_after=sft"])
    task = get_task("arith", max_number=50, operands=3)
    rows = worked_rows(task, task.load("train", 30))
    assert all(r["provenance"]["verdict"]["correct"] for r in rows)  # the task's own scorer agrees
    assert "Left to right:" in rows[0]["messages"][-1]["content"]
    from reasonlab.errors import DataError

    with pytest.raises(DataError, match="task 'gsm8k' has no worked solutions"):
        worked_rows(get_task("gsm8k"), get_task("gsm8k").load("test", 1))


def test_paired_gains_compare_the_same_problems(tmp_path):
    from reasonlab.io import atomic_write_jsonl
    from reasonlab.recipes.parts import paired_gains

    def stage(name, correct):
        atomic_write_jsonl(tmp_path / name / "samples.jsonl", [
            {"problem_id": f"p{i}", "sample_index": 0, "correct": c} for i, c in enumerate(correct)])

    stage("base", [True, False, False, False, True, False, False, False])
    stage("after", [True, True, True, False, True, True, False, True])
    stage("same", [True, False, False, False, True, False, False, False])
    g = paired_gains(tmp_path, {"b": "base", "a": "after", "s": "same"}, "b")
    assert g["a"]["gain"] == 0.5 and g["a"]["problems"] == 8 and 0 < g["a"]["ci95"][0] <= 0.5 <= g["a"]["ci95"][1]
    assert g["s"]["gain"] == 0.0 and g["s"]["ci95"] == [0.0, 0.0]
