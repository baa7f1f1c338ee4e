"""Run untrusted (model-written) Python: ``execute(code) -> Result``; ``execute_many`` for batches.

Each execution gets a fresh temp dir (its only writable place), an empty environment, resource
limits (limits.py) and, where it works, bubblewrap namespaces (isolation.py). stdout/stderr go to
files capped by RLIMIT_FSIZE, so an output flood kills the writer instead of our memory; what is
returned is cut to ``MAX_RETURNED`` bytes per stream.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reasonlab.sandbox.isolation import AUDIT_PRELUDE, bwrap_argv, bwrap_path, python_runtime, userns_guard
from reasonlab.sandbox.limits import Limits, PidsGroup, apply_rlimits

MAX_RETURNED = 64 * 1024
RUNNER = "import sys\nsys.argv = ['main.py']\nexec(compile(open('main.py').read(), 'main.py', 'exec'), {'__name__': '__main__'})\n"


@dataclass(frozen=True)
class Result:
    status: str  # ok | error | timeout | memory | killed
    stdout: str
    stderr: str
    wall_s: float
    returncode: int | None = None


def execute(code: str, *, stdin: str = "", timeout_s: float = 5.0, memory_mb: int = 512,
            max_processes: int = 32, isolation: str = "auto") -> Result:
    """Run ``code`` as a script. ``isolation``: auto (bwrap if it works here) | bwrap | none."""
    lim = Limits(timeout_s=timeout_s, memory_mb=memory_mb, max_processes=max_processes)
    bwrap = bwrap_path() if isolation in ("auto", "bwrap") else None
    if isolation == "bwrap" and bwrap is None:
        raise RuntimeError("bubblewrap is not available or cannot create namespaces here")
    work = Path(tempfile.mkdtemp(prefix="reasonlab-sbx-"))
    try:
        os.chmod(work, 0o777)
        (work / "main.py").write_text(code)
        (work / "run.py").write_text(RUNNER if bwrap else AUDIT_PRELUDE + RUNNER)
        (work / ".stdin").write_text(stdin)
        guard, fds = userns_guard() if bwrap else ([], ())
        if bwrap:
            argv = bwrap_argv(bwrap, str(work), ["-I", "-S", "run.py"], guard)
        else:
            argv = [python_runtime()[0], "-I", "-S", "run.py"]
        try:
            return _run(argv, work, lim, fds)
        finally:
            for fd in fds:
                os.close(fd)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(argv: list[str], work: Path, lim: Limits, pass_fds: tuple[int, ...] = ()) -> Result:
    group = PidsGroup(lim.max_processes)

    def pre():  # in the child, before exec
        group.enter()
        apply_rlimits(lim)

    out_path, err_path = work / ".stdout", work / ".stderr"
    start = time.perf_counter()
    timed_out = False
    with open(work / ".stdin", "rb") as fin, open(out_path, "wb") as fout, open(err_path, "wb") as ferr:
        proc = subprocess.Popen(argv, stdin=fin, stdout=fout, stderr=ferr, env={}, cwd=work,
                                preexec_fn=pre, start_new_session=True, close_fds=True,
                                pass_fds=pass_fds)
        try:
            rc = proc.wait(timeout=lim.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _killpg(proc.pid)
            rc = proc.wait()
        finally:
            _killpg(proc.pid)  # whatever the script left running in its session
            group.kill_all()
    wall = time.perf_counter() - start
    stdout, stderr = _read(out_path), _read(err_path)
    return Result(_status(rc, timed_out, stderr), stdout, stderr, round(wall, 4), rc)


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_RETURNED).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _status(rc: int, timed_out: bool, stderr: str) -> str:
    if timed_out or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return "timeout"
    if rc in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ) or "[Errno 27] File too large" in stderr:
        return "killed"  # hit the output/file size limit
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
        return "memory"
    if rc == 0:
        return "ok"
    if rc < 0 or rc > 128:  # killed by a signal (bwrap reports 128 + n)
        return "killed"
    return "error"


def execute_many(codes: list[str], *, stdins: list[str] | None = None, concurrency: int | None = None,
                 **kwargs) -> list[Result]:
    """Run many programs at once; each is its own sandbox. Order of results = order of codes."""
    stdins = stdins or [""] * len(codes)
    workers = concurrency or max(2, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda cs: execute(cs[0], stdin=cs[1], **kwargs), zip(codes, stdins)))
