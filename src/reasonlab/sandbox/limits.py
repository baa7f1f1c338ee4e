"""Resource limits applied to every sandboxed process tree.

- rlimits (inherited across fork/exec): address space (memory), CPU seconds, file size (bounds
  stdout/stderr, which go to files, and anything written in the temp dir), open files, core 0.
- process count: a cgroup-v1 ``pids`` group per execution when the host offers a writable one
  (root on most Linux machines); otherwise RLIMIT_NPROC, which the kernel enforces only for
  non-root users — see docs/sandbox.md for what holds where.
"""

from __future__ import annotations

import os
import resource
import uuid
from dataclasses import dataclass
from pathlib import Path

PIDS_ROOT = Path("/sys/fs/cgroup/pids")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    memory_mb: int = 512
    max_processes: int = 32
    output_bytes: int = 1 << 20  # per stream, on disk; what is returned is cut to 64 KiB
    open_files: int = 64


def apply_rlimits(lim: Limits) -> None:
    """Called in the child before exec (preexec_fn)."""
    mem = lim.memory_mb * 1024 * 1024
    cpu = max(1, int(lim.timeout_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim.output_bytes, lim.output_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim.open_files, lim.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.getuid() != 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (lim.max_processes, lim.max_processes))


class PidsGroup:
    """A throw-away cgroup-v1 pids group: caps the number of processes of one execution and
    lets us kill every one of them at the end, whatever they did to escape their parent."""

    def __init__(self, max_processes: int):
        self.path: Path | None = None
        if not (PIDS_ROOT / "cgroup.procs").exists() or not os.access(PIDS_ROOT, os.W_OK):
            return
        try:
            path = PIDS_ROOT / "reasonlab" / uuid.uuid4().hex[:12]
            path.mkdir(parents=True)
            (path / "pids.max").write_text(str(max_processes))
            self.path = path
        except OSError:
            self.path = None

    def enter(self) -> None:
        """In the child before exec: join the group."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def kill_all(self) -> None:
        if self.path is None:
            return
        for _ in range(50):
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        try:
            self.path.rmdir()
        except OSError:
            pass
