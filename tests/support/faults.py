"""Fault injection for long-running commands: start, SIGKILL when a file appears, damage files.

Shared by the trainer and recipe tests, so every "kill -9 then rerun" test kills the same way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "reasonlab.cli.main"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "1000"}  # rich wraps at the width


def run(args: list[str], check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run(CLI + args, capture_output=True, text=True, cwd=REPO, env=ENV, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"reasonlab {' '.join(args)} exited {r.returncode}:\n{r.stderr[-3000:]}")
    return r


def kill_when(args: list[str], marker: Path, timeout: float = 300, delay: float = 0.0) -> None:
    """Run ``reasonlab ARGS`` and SIGKILL it as soon as ``marker`` exists (plus ``delay`` s)."""
    proc = subprocess.Popen(CLI + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=ENV)
    deadline = time.time() + timeout
    try:
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"reasonlab {' '.join(args)} ended (exit {proc.returncode}) before {marker} appeared")
            if time.time() > deadline:
                raise AssertionError(f"{marker} did not appear within {timeout} s")
            time.sleep(0.02)
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def tear_last_line(path: Path) -> None:
    """Cut the last line of a JSONL file in half, as a kill mid-write leaves it."""
    data = path.read_bytes().rstrip(b"\n")
    cut = data.rfind(b"\n") + 1
    path.write_bytes(data[: cut + max(1, (len(data) - cut) // 2)])


def truncate(path: Path, size: int | None = None) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2 if size is None else size)
