"""math-verify in a killable worker process, shared by all threads of this process.

Why a subprocess (not multiprocessing): it also works inside daemonic multiprocessing workers,
which may not fork children of their own. The child reads one JSON request per line on stdin and
answers one line on stdout. A request that runs past its limit gets the child killed; the next
request starts a new one (imports take ~2 s once, not counted against a request's limit).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading

START_TIMEOUT_S = 60.0


class _Worker:
    def __init__(self):
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None

    def _start(self) -> bool:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reasonlab.verify.mv_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
            env={**os.environ, "PYTHONWARNINGS": "ignore"})
        return self._readline(START_TIMEOUT_S) == "ready"

    def _readline(self, timeout_s: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return line.strip() if line else None

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def ask(self, pred: str, ref: str, timeout_s: float) -> bool | None:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                if not self._start():
                    self._kill()
                    return None
            try:
                self.proc.stdin.write(json.dumps([pred, ref]) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._kill()
                return None
            line = self._readline(timeout_s)
            if line is None:
                self._kill()
                return None
            return {"true": True, "false": False}.get(line)


_WORKER = _Worker()


def verify_in_worker(pred: str, ref: str, timeout_s: float) -> bool | None:
    return _WORKER.ask(pred, ref, timeout_s)


def _serve() -> None:
    from math_verify import parse, verify

    def wrap(s: str) -> str:
        return s if "$" in s or "\\boxed" in s else f"${s}$"

    print("ready", flush=True)
    for line in sys.stdin:
        try:
            pred, ref = json.loads(line)
            gold = parse(wrap(ref), parsing_timeout=None)
            answer = parse(wrap(pred), parsing_timeout=None)
            if not gold or not answer:
                out = "none"
            else:
                out = "true" if verify(gold, answer, timeout_seconds=None) else "false"
        except Exception:  # noqa: BLE001
            out = "none"
        print(out, flush=True)


if __name__ == "__main__":
    _serve()
