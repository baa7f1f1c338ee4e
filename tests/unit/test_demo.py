"""The demo end to end with tiny budgets: the R1 recipe in miniature (base eval, the task's own
worked solutions as cold-start traces, SFT, GRPO, eval, and the final checkpoint evaluated again
with plain transformers), and the R1-Zero demo; a rerun resumes instead of redoing."""

import json

from faults import run

from reasonlab.io import read_json, read_jsonl_rows

TINY_R1 = ["cold_start.worked.limit=12", "cold_start.worked.task.options.max_number=9",
           "sft_cold.max_steps=2", "sft_cold.batch_size=4", "sft_cold.dtype=fp32",
           "sft_cold.save_every=1", "sft_cold.report_to=none", "grpo.steps=2", "grpo.dtype=fp32",
           "grpo.save_every=1", "grpo.sampling.prompts_per_step=2", "grpo.sampling.group_size=2",
           "grpo.sampling.max_new_tokens=6", "grpo.sampling.dynamic_sampling=false", "grpo.report_to=none",
           "eval.max_new_tokens=8"]


def test_r1_demo_runs_end_to_end_resumes_and_checks_with_plain_transformers(tmp_path, tiny_dir):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--eval-limit", "3", f"model={tiny_dir}", *TINY_R1]
    first = run(args)
    s = read_json(out / "summary.json")
    assert list(s["evals"]) == ["base", "cold-start SFT", "cold-start SFT + GRPO", "final, plain transformers"]
    # stop_after: grpo -> no second round
    assert not (out / "rejection").exists() and not (out / "grpo_final").exists()
    traces = read_jsonl_rows(out / "cold_traces" / "traces.jsonl")
    assert len(traces) == 12 and all(r["provenance"]["verdict"]["correct"] for r in traces)
    assert read_json(out / "cold_data" / "manifest.json")["metrics"] == {"rows": 12, "kept": 12}
    assert read_json(out / "sft_cold" / "manifest.json")["metrics"]["steps"] == 2
    grpo = read_json(out / "grpo" / "manifest.json")
    plain = read_json(out / "eval_plain" / "manifest.json")
    assert plain["inputs"]["model"] == grpo["outputs"]["model"]  # the final checkpoint, from disk
    rows = read_jsonl_rows(out / "eval_plain" / "samples.jsonl")
    assert len(rows) == 3 and all(r["prompt"] == [{"role": "user", "content": r["prompt"][0]["content"]}]
                                  for r in rows)  # a bare user turn: the checkpoint's template does the rest
    assert "final, plain transformers: pass@1" in first.stderr + first.stdout
    gain = s["gains_over_base"]["final, plain transformers"]
    assert gain["problems"] == 3 and gain["ci95"][0] <= gain["gain"] <= gain["ci95"][1]
    html = (out / "report.html").read_text()
    assert "What the final model writes" in html and "plain transformers" in html
    before = (out / "eval_base" / "samples.jsonl").read_text()
    again = run(args)  # finished: every stage is skipped
    assert (out / "eval_base" / "samples.jsonl").read_text() == before
    assert read_json(out / "summary.json")["evals"] == s["evals"]
    assert "eval_plain: done, skipped" in again.stderr + again.stdout


def test_r1_difficulty_stage_measures_the_cold_start_model_and_grpo_trains_on_its_band(tmp_path, tiny_dir):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--eval-limit", "2", f"model={tiny_dir}", "plain_eval=false", *TINY_R1,
            "difficulty.limit=3", "difficulty.n=2", "difficulty.max_new_tokens=6", "grpo.difficulty.band=0,1"]
    run(args)
    diff = read_json(out / "difficulty" / "manifest.json")
    assert diff["inputs"]["model"] == read_json(out / "sft_cold" / "manifest.json")["outputs"]["model"]
    measured = [r["problem_id"] for r in read_jsonl_rows(out / "difficulty" / "problems.jsonl")]
    assert measured == ["arith/train/0", "arith/train/1", "arith/train/2"]  # grpo's task, not the block's default
    grpo = read_json(out / "grpo" / "manifest.json")
    assert grpo["inputs"]["problems"] == diff["outputs"]["problems"]
    trained = {r["problem_id"] for r in read_jsonl_rows(out / "grpo" / "samples.jsonl")}
    assert trained and trained <= set(measured)
    again = run(args)
    assert "grpo: done, skipped" in again.stderr + again.stdout
    made = tmp_path / "problems.jsonl"
    made.write_text('{"problem_id": "arith/train/0", "pass_rate": 0.5}\n')
    r = run(["demo", "--out", str(tmp_path / "x"), "difficulty.limit=3", f"grpo.difficulty.problems={made}"], check=False)
    assert r.returncode == 2 and "grpo.difficulty.problems" in r.stderr


def test_r1_zero_demo_runs_end_to_end_and_resumes(tmp_path, tiny_dir):
    out = tmp_path / "demo"
    args = ["demo", "--recipe", "r1-zero", "--out", str(out), "--eval-limit", "3", f"model={tiny_dir}", "steps=2",
            "dtype=fp32", "save_every=1", "sampling.prompts_per_step=2", "sampling.group_size=2",
            "sampling.max_new_tokens=6", "sampling.dynamic_sampling=false", "report_to=none"]
    run(args)
    s = json.loads((out / "summary.json").read_text())
    assert s["steps"] == 2 and s["final_checkpoint"].endswith("step-2")
    assert {"pass@1", "format_rate", "nonempty_think_rate"} <= set(s["after"])
    assert (out / "eval_after_step-2" / "summary.json").exists() and (out / "report.html").exists()
    before = (out / "eval_before" / "samples.jsonl").read_text()
    r = run(args)  # finished: nothing is trained or sampled again
    assert (out / "eval_before" / "samples.jsonl").read_text() == before
    assert json.loads((out / "summary.json").read_text())["after"] == s["after"]
    assert "pass@1" in r.stderr


def test_demo_rejects_an_unknown_recipe(tmp_path):
    r = run(["demo", "--recipe", "r2", "--out", str(tmp_path / "x")], check=False)
    assert r.returncode == 2 and "--recipe 'r2': unknown; valid: r1, r1-zero" in r.stderr
