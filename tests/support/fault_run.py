"""``python fault_run.py ARGS...``: the ``reasonlab`` command line with one fault injected, for
the fault-injection tests (tests/unit/test_faults_eval.py).

``REASONLAB_FAULT`` picks the fault; the process dies by a real SIGKILL (no cleanup, no atexit,
no flush of Python buffers), exactly as under ``kill -9`` or the OOM killer:
- ``generate:K``: at the start of the K-th call to the hf backend's ``generate`` (K-1 calls'
  work done and written; the K-th lost mid-generation);
- ``append:K``: during the K-th append to an eval ``samples.jsonl``: half of its bytes reach the
  file, then the kill (a torn last line, as a kill inside ``write`` leaves it).
"""

from __future__ import annotations

import os
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(fault: str) -> None:
    kind, _, k = fault.partition(":")
    at, calls = int(k), [0]

    def due() -> bool:
        calls[0] += 1
        return calls[0] == at

    if kind == "generate":
        from reasonlab.backends.hf import HFGenerator

        original = HFGenerator.generate

        def generate(self, prompts, params):
            if due():
                die()
            return original(self, prompts, params)

        HFGenerator.generate = generate
    elif kind == "append":
        import json

        import reasonlab.eval.runner as runner

        original_append = runner.append_jsonl

        def append(path, rows):
            if not due():
                return original_append(path, rows)
            data = "".join(json.dumps(r) + "\n" for r in rows).encode()
            with open(path, "ab") as f:
                f.write(data[: len(data) // 2])
                f.flush()
            die()

        runner.append_jsonl = append
    else:
        raise SystemExit(f"unknown REASONLAB_FAULT {fault!r}")


if __name__ == "__main__":
    if os.environ.get("REASONLAB_FAULT"):
        install(os.environ["REASONLAB_FAULT"])
    from reasonlab.cli.main import app

    app(args=sys.argv[1:], prog_name="reasonlab")
