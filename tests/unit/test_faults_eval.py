"""Fault injection for `reasonlab eval` and `reasonlab scale`: kill -9 at several points, damage
the newest files, run the same command again, and check that nothing written before is lost and
that the outputs equal an uninterrupted run's (eval promises exact resume; see eval/runner.py).

The killed runs are real processes (``tests/support/fault_run.py``: the CLI with a SIGKILL at a
chosen point); the reference and resumed runs go through the same CLI in-process, on a tiny
random Llama saved to disk, so the whole module takes tens of seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonlab.cli.main import app
from tiny_model_dir import save_tiny_model

FAULT_RUN = str(Path(__file__).parents[1] / "support" / "fault_run.py")
COMMON = ["--task", "arith", "--limit", "96", "--temperature", "1.0", "--max-new-tokens", "8",
          "--dtype", "fp32", "--seed", "3"]  # 96 problems; n=2 makes units of 32: 3 generate calls a block


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny") / "m"))


def eval_args(model: str, out: Path, n: int) -> list[str]:
    return ["eval", "--model", model, "--out", str(out), "--n", str(n), *COMMON]


def run_inproc(args: list[str]) -> None:
    res = CliRunner().invoke(app, args, env={"REASONLAB_DEBUG": "1"})
    assert res.exit_code == 0, (res.output, res.exception)


def run_process(args: list[str], fault: str | None = None, kill_when=None) -> int:
    """Run the CLI in a process with a fault armed: SIGKILL from inside (``fault``) or from here
    as soon as ``kill_when()`` is true. Returns the exit status."""
    env = {**os.environ, "REASONLAB_FAULT": fault or ""}
    proc = subprocess.Popen([sys.executable, FAULT_RUN, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_when is not None:
        deadline = time.time() + 120
        while proc.poll() is None and not kill_when() and time.time() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
    return proc.returncode


def run_killed(args: list[str], fault: str | None = None, kill_when=None) -> None:
    assert run_process(args, fault, kill_when) == -signal.SIGKILL, "the fault never fired"


def complete_rows(path: Path) -> list[dict]:
    """The samples a crash left whole: lines ending in a newline that parse."""
    rows = []
    for raw in path.read_bytes().splitlines(keepends=True) if path.exists() else []:
        if raw.endswith(b"\n"):
            try:
                rows.append(json.loads(raw))
            except json.JSONDecodeError:
                pass
    return rows


def outputs(out: Path) -> tuple[dict, dict]:
    """(samples by (problem, index), summary without the wall time)."""
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    by_key = {(r["problem_id"], r["sample_index"]): r for r in rows}
    assert len(by_key) == len(rows), "a sample was written twice"
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("wall_s")
    return by_key, summary


@pytest.fixture(scope="module")
def reference(model, tmp_path_factory):
    """Uninterrupted runs: n=2, then the same directory extended to n=4."""
    root = tmp_path_factory.mktemp("ref")
    run_inproc(eval_args(model, root / "n2", 2))
    shutil.copytree(root / "n2", root / "n4")
    run_inproc(eval_args(model, root / "n4", 4))
    return {2: outputs(root / "n2"), 4: outputs(root / "n4"), "dir": root / "n2"}


def resume_and_check(model, out: Path, n: int, reference) -> None:
    before = complete_rows(out / "samples.jsonl")
    run_inproc(eval_args(model, out, n))
    samples, summary = outputs(out)
    for r in before:  # nothing written before the kill is lost or changed
        assert samples[(r["problem_id"], r["sample_index"])] == r
    ref_samples, ref_summary = reference[n]
    assert samples == ref_samples  # exactly the uninterrupted run's samples
    assert summary == ref_summary


def tear_last_line(path: Path) -> None:
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last + (len(data) - last) // 2])


# fault name -> (REASONLAB_FAULT, n, start from the complete n=2 run?)
FAULTS = {
    "kill before the first generate": ("generate:1", 2, False),
    "kill during the second generate": ("generate:2", 2, False),
    "kill during the third generate": ("generate:3", 2, False),
    "kill mid-write of samples (torn line)": ("append:2", 2, False),
    "extension to n=4 killed during generate": ("generate:2", 4, True),
    "extension to n=4 killed mid-write": ("append:3", 4, True),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_eval_resumes_exactly_after_kill(fault, model, reference, tmp_path):
    spec, n, extend = FAULTS[fault]
    out = tmp_path / "run"
    if extend:
        shutil.copytree(reference["dir"], out)
    run_killed(eval_args(model, out, n), spec)
    resume_and_check(model, out, n, reference)


def test_eval_external_kill_then_damaged_files(model, reference, tmp_path):
    """kill -9 from outside as soon as the first samples land, then damage the newest files:
    a torn last sample line, an emptied state.json, no summary."""
    out = tmp_path / "run"
    samples = out / "samples.jsonl"
    run_killed(eval_args(model, out, 2),
               kill_when=lambda: samples.exists() and samples.stat().st_size > 0)
    tear_last_line(samples)
    if (out / "state.json").exists():
        (out / "state.json").write_text("")
    (out / "summary.json").unlink(missing_ok=True)
    resume_and_check(model, out, 2, reference)


@pytest.mark.parametrize("n", [2, 1])
def test_eval_rerun_of_a_finished_run_generates_nothing(n, model, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference["dir"], out)
    before = (out / "samples.jsonl").read_bytes()
    assert run_process(eval_args(model, out, n), "generate:1") == 0  # dies if it generates
    assert (out / "samples.jsonl").read_bytes() == before
    assert json.loads((out / "summary.json").read_text())["n"] == n


SCALE = ["scale", "--task", "arith", "--limit", "8", "--strategy", "vote", "--n", "1,2",
         "--max-new-tokens", "8", "--seed", "3"]


def scale_outputs(out: Path) -> tuple[list[str], dict]:
    summary = json.loads((out / "summary.json").read_text())
    for rows in summary["strategies"].values():
        for row in rows:
            row.pop("wall_s")
    return sorted((out / "results.jsonl").read_text().splitlines()), summary


def test_scale_rerun_after_kill_equals_uninterrupted(model, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "run"
    run_inproc(SCALE + ["--model", model, "--out", str(ref)])
    run_killed(SCALE + ["--model", model, "--out", str(out)], "generate:1")
    run_inproc(SCALE + ["--model", model, "--out", str(out)])
    assert scale_outputs(out) == scale_outputs(ref)


def test_scale_killed_rerun_keeps_finished_results(model, tmp_path):
    out = tmp_path / "run"
    run_inproc(SCALE + ["--model", model, "--out", str(out)])
    before = scale_outputs(out)
    run_killed(SCALE + ["--model", model, "--out", str(out)], "generate:1")
    assert scale_outputs(out) == before
