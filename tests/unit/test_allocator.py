"""``allocator.keep_freed_memory``: large tensors come from the heap, not a fresh mmap each."""

import subprocess
import sys

import pytest

CHECK = """
import ctypes, sys, torch
from reasonlab import allocator
took = allocator.keep_freed_memory()
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                              "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
x = torch.ones(64 << 20, dtype=torch.uint8)  # 64 MB, above glibc's largest mmap threshold
print(took, libc.mallinfo2().hblkhd >= 64 << 20, allocator.keep_freed_memory())
"""


def _run(env_value: str | None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != "REASONLAB_MALLOC"}
    if env_value is not None:
        env["REASONLAB_MALLOC"] = env_value
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_tensors_are_not_mmapped_unless_the_user_opts_out():
    assert _run(None) == ["True", "False", "True"]  # taken, the 64 MB not in an mmap, idempotent
    assert _run("system") == ["False", "True", "False"]  # glibc's defaults: an mmap per large tensor
