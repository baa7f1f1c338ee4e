"""The demo recipe end to end with a tiny budget: eval before, GRPO, eval of the saved checkpoint
loaded from disk, summary and report; a rerun resumes instead of redoing."""

import json

from faults import run


def test_demo_runs_end_to_end_and_resumes(tmp_path, tiny_dir):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--eval-limit", "3", f"model={tiny_dir}", "steps=2", "dtype=fp32",
            "save_every=1", "sampling.prompts_per_step=2", "sampling.group_size=2", "sampling.max_new_tokens=6",
            "sampling.dynamic_sampling=false", "tensorboard=false"]
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
