"""End to end through the CLI as a user runs it, on the embedded SmolLM2-135M (bounded time)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "reasonlab.cli.main"]


def run(*args, ok=True):
    r = subprocess.run(CLI + list(args), capture_output=True, text=True, cwd=REPO, timeout=600)
    if ok:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_eval_arith_writes_summary_and_resumes(tmp_path):
    out = tmp_path / "e"
    run("eval", "--model", "smollm2-135m", "--task", "arith", "--limit", "6", "--n", "2",
        "--max-new-tokens", "48", "--out", str(out))
    s = json.loads((out / "summary.json").read_text())
    assert s["task"] == "arith" and s["n"] == 2 and s["problems"] == 6
    assert set(s["metrics"]) == {"pass@1", "pass@2", "maj@2", "format_rate", "nonempty_think_rate"}
    assert 0 <= s["metrics"]["pass@1"] <= s["metrics"]["pass@2"] <= 1 and s["tokens_generated"] > 0
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and rows[0]["completion"].startswith("<think>")
    run("eval", "--model", "smollm2-135m", "--task", "arith", "--limit", "6", "--n", "2",
        "--max-new-tokens", "48", "--out", str(out))
    assert len((out / "samples.jsonl").read_text().splitlines()) == 12  # nothing redone


def test_eval_task_options_reach_the_task(tmp_path):
    out = tmp_path / "small"
    run("eval", "--task", "arith", "--task-option", "max_number=3", "--task-option", "ops=+", "--limit", "4",
        "--max-new-tokens", "8", "--out", str(out))
    for row in map(json.loads, (out / "samples.jsonl").read_text().splitlines()):
        question = row["prompt"][-2]["content"]  # the user turn; the last message is the pre-fill
        a, op, b = question.removeprefix("What is ").rstrip("?").split()
        assert op == "+" and int(a) <= 3 and int(b) <= 3


def test_eval_humaneval_runs_in_sandbox(tmp_path):
    run("eval", "--task", "humaneval", "--limit", "2", "--prompt", "plain", "--max-new-tokens", "64",
        "--out", str(tmp_path / "h"))
    s = json.loads((tmp_path / "h" / "summary.json").read_text())
    assert s["problems"] == 2 and "pass@1" in s["metrics"]


def test_cli_errors_name_choices_files_and_lines(tmp_path):
    r = run("eval", "--task", "nosuch", "--out", str(tmp_path / "x"), ok=False)
    assert r.returncode == 2 and "valid:" in r.stderr and "arith" in r.stderr
    r = run("eval", "--task", "arith", "--task-option", "digits=3", "--out", str(tmp_path / "x"), ok=False)
    assert r.returncode == 2 and "digits" in r.stderr and "max_number" in r.stderr
    r = run("eval", "--model", "no-such-model", "--task", "arith", "--out", str(tmp_path / "x"), ok=False)
    assert r.returncode == 2 and "smollm2-135m" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "1+1", "a": "2"}\n{oops\n')
    r = run("eval", "--task", "jsonl", "--data", str(bad), "--question-field", "q", "--answer-field", "a",
            "--out", str(tmp_path / "x"), ok=False)
    assert r.returncode == 2 and f"{bad}:2" in r.stderr
    r = run("eval", "--task", "gsm8k", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), ok=False)
    assert r.returncode == 2 and "--data" in r.stderr


def test_grpo_two_steps_on_embedded_model_gives_loadable_checkpoint(tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "g"
    run("train", "grpo", "--out", str(out), "steps=2", "save_every=2", "sampling.prompts_per_step=2",
        "sampling.group_size=4", "sampling.max_new_tokens=24", "report_to=none")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(l["loss"] is not None for l in lines)
    model = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "step-2")
    assert model.config.num_hidden_layers == 30


def test_demo_default_recipe_with_tiny_budgets_and_a_plain_transformers_check(tmp_path):
    """`make demo`'s own config on the embedded model, cut to a few steps: the checkpoint it
    ends with, loaded by plain transformers from a bare user turn, opens its answer with the
    template's <think> (the R1 prompt travels inside the checkpoint)."""
    out = tmp_path / "demo"
    r = run("demo", "--out", str(out), "--eval-limit", "4", "cold_start.worked.limit=24", "sft_cold.max_steps=2",
            "sft_cold.save_every=2", "grpo.steps=1", "grpo.save_every=1", "grpo.sampling.prompts_per_step=2",
            "grpo.sampling.group_size=2", "grpo.sampling.max_new_tokens=24", "eval.max_new_tokens=24",
            "sft_cold.report_to=none", "grpo.report_to=none")
    s = json.loads((out / "summary.json").read_text())
    assert list(s["evals"]) == ["base", "cold-start SFT", "cold-start SFT + GRPO", "final, plain transformers"]
    rows = [json.loads(x) for x in (out / "eval_plain" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(len(r["prompt"]) == 1 and r["prompt"][0]["role"] == "user" for r in rows)
    assert all(r["completion"].startswith("<think>\n") for r in rows)
    assert "final, plain transformers: pass@1" in r.stdout + r.stderr
