"""Keep freed memory in the process instead of handing it back to the OS (glibc on Linux).

glibc serves every allocation above its mmap threshold (at most 32 MB on 64-bit) with a fresh
``mmap`` and unmaps it on free, so each large tensor of a training step (activations, logits,
gradients of the embedding) is page-faulted in again, page by page, every micro-batch. On the
2-core VMs this project runs on, that made element-wise ops over such tensors run at page-fault
speed: the GRPO update on the demo's rollout measured 17.5 s with glibc's defaults and 15.0 s
with mmap turned off and the heap never trimmed (BENCHMARKS.md "Where the update goes"), the
same result to the bit. Generation was not affected (its buffers are small or reused).

The cost: the process keeps its peak heap resident until it exits. ``REASONLAB_MALLOC=system``
leaves glibc's settings alone (so do a preloaded jemalloc or tcmalloc, which this does not touch).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Turn glibc's mmap-per-allocation off and its heap trimming off, once per process.
    True when glibc took the settings; False where there is no glibc or the user opted out."""
    global _done
    if _done is None:
        _done = False
        if sys.platform.startswith("linux") and os.environ.get("REASONLAB_MALLOC", "") != "system":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # musl and friends: no mallopt
                return False
            # a trim threshold of -1 never trims (mallopt(3)); the largest int would trim a free top past 2 GB
            _done = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, -1))
    return _done
