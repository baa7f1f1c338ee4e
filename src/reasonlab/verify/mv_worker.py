"""math-verify in a killable worker process, shared by all threads of this process.

Why a subprocess (not multiprocessing): it also works inside daemonic multiprocessing workers,
which may not fork children of their own. Why not ``signal.alarm``: it only works in the main
thread, and sympy's C-level loops may ignore it anyway; a process can always be killed.

Protocol: the child reads one JSON request ``[id, pred, ref]`` per line on stdin and answers
``<id> true|false|none`` on its own private copy of stdout (anything a library prints goes to
stderr, so stray output can never be mistaken for an answer; answers with a stale id are
skipped). A request that runs past its limit gets the child killed; the next request starts a
new one (imports take 0.3-2 s, bounded by ``START_TIMEOUT_S`` and not counted against a
request's limit). Threads of one process share the worker one request at a time (a lock), so a
request may wait for others, each bounded. A forked child (e.g. a ``fork`` multiprocessing pool)
never reuses its parent's pipes: the worker state is reset after fork.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import subprocess
import sys
import threading
import time

START_TIMEOUT_S = 60.0


class _Worker:
    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Forget the child without touching it (used after fork: the pipes are the parent's)."""
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.buf = b""
        self.ids = itertools.count()

    def _start(self) -> bool:
        self.buf = b""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reasonlab.verify.mv_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
            env={**os.environ, "PYTHONWARNINGS": "ignore"}, start_new_session=True)
        return self._readline(time.monotonic() + START_TIMEOUT_S) == "ready"

    def _readline(self, deadline: float) -> str | None:
        """One line from the child before ``deadline``, or None (timeout or child gone)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", "replace").strip()

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
            rid = str(next(self.ids))
            try:
                self.proc.stdin.write((json.dumps([rid, pred, ref]) + "\n").encode())
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._kill()
                return None
            deadline = time.monotonic() + timeout_s
            while True:
                line = self._readline(deadline)
                if line is None:
                    self._kill()
                    return None
                got, _, verdict = line.partition(" ")
                if got == rid:
                    return {"true": True, "false": False}.get(verdict)


_WORKER = _Worker()
os.register_at_fork(after_in_child=_WORKER.reset)


def verify_in_worker(pred: str, ref: str, timeout_s: float) -> bool | None:
    """math-verify's verdict on ``pred`` vs ``ref`` within ``timeout_s`` seconds, else None."""
    return _WORKER.ask(pred, ref, timeout_s)


def _judge(pred: str, ref: str) -> str:
    from math_verify import parse, verify

    def wrap(s: str) -> str:
        return s if "$" in s or "\\boxed" in s else f"${s}$"

    # Our own hard limit replaces math-verify's (signal-based, main-thread-only) timeouts.
    gold = parse(wrap(ref), parsing_timeout=None)
    answer = parse(wrap(pred), parsing_timeout=None)
    if not gold or not answer:
        return "none"
    return "true" if verify(gold, answer, timeout_seconds=None) else "false"


def _serve() -> None:
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a library prints now goes to stderr, not into our answers
    sys.stdout = sys.stderr
    import math_verify  # noqa: F401  (import before "ready": start-up is not a request's time)

    answers.write("ready\n")
    for line in sys.stdin:
        rid = "?"
        try:
            rid, pred, ref = json.loads(line)
            out = _judge(pred, ref)
        except Exception:  # noqa: BLE001 - one bad request never kills the worker
            out = "none"
        answers.write(f"{rid} {out}\n")


if __name__ == "__main__":
    _serve()
