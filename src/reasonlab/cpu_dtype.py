"""Whether this CPU computes faster in bf16 than in fp32: measured once per machine, then remembered.

The instruction flags alone do not answer it. Without ``avx512_bf16`` / ``amx_bf16`` bf16 is
emulated (slower than fp32: no measurement needed). With them it depends on the core: an
AVX-512 AMD EPYC (Zen 4) ran a bf16 matmul at 390 GFLOP/s against 160 in fp32, while a 5th-gen
Intel Xeon guest whose AMX is hidden (``avx512_bf16`` only) ran bf16 at 156 against 325 in fp32:
why is not measured (likely: fewer bf16 dot-product issues per cycle than fp32 FMAs there, plus
the casts), but bf16 made a GRPO step 1.5x slower. So where the flags allow bf16, a short timing of both dtypes
on a matmul of the model's size (~0.1 s) decides, and bf16 must win by ``MARGIN``; the answer is
kept in the cache dir under this CPU's identity so every later run (a resume included) picks the
same dtype. ``REASONLAB_DTYPE`` overrides it all (``models.default_dtype``).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from reasonlab.io import atomic_write_json, read_json

MARGIN = 1.25  # bf16 is chosen only when it is this much faster: near a tie fp32's precision wins
SHAPE = (1024, 576, 1536)  # (tokens, hidden, out): one MLP projection of a 135M model on a micro-batch


def native_bf16_flags(cpuinfo: str) -> bool:
    """Whether the CPU has bf16 matmul instructions at all (AVX512-BF16 or AMX-BF16)."""
    return "avx512_bf16" in cpuinfo or "amx_bf16" in cpuinfo


def matmul_seconds(dtype: torch.dtype, shape: tuple[int, int, int] = SHAPE, repeats: int = 5) -> float:
    """Best-of-``repeats`` time of one (M, K) x (K, N) matmul in ``dtype`` on this CPU."""
    M, K, N = shape
    a, b = torch.randn(M, K).to(dtype), torch.randn(K, N).to(dtype)
    torch.mm(a, b)  # first call: oneDNN picks and JITs its kernel
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return best


def measure() -> dict:
    """{"fp32_s", "bf16_s", "bf16": bool}: both dtypes timed, alternating, bf16 kept only if faster
    by ``MARGIN``."""
    fp32 = bf16 = float("inf")
    for _ in range(2):
        fp32 = min(fp32, matmul_seconds(torch.float32))
        bf16 = min(bf16, matmul_seconds(torch.bfloat16))
    return {"fp32_s": fp32, "bf16_s": bf16, "bf16": bf16 * MARGIN < fp32}


def _identity(cpuinfo: str) -> str:
    """This CPU as the cache knows it: model name, flags and torch version (a new torch may bring
    new kernels)."""
    first = cpuinfo.split("\n\n")[0]
    keep = [line for line in first.splitlines() if line.split(":")[0].strip() in ("model name", "flags")]
    return hashlib.sha256("\n".join(keep + [torch.__version__]).encode()).hexdigest()[:16]


def prefers_bf16(cpuinfo: str, cache: Path) -> bool:
    """The decision for the CPU ``cpuinfo`` describes, read from (or measured into) ``cache``."""
    if not native_bf16_flags(cpuinfo):
        return False
    path = cache / f"cpu-dtype-{_identity(cpuinfo)}.json"
    known = read_json(path)
    if isinstance(known, dict) and isinstance(known.get("bf16"), bool):
        return known["bf16"]
    found = measure()
    try:
        atomic_write_json(path, found)
    except OSError:  # a read-only cache: decide again next time
        pass
    return found["bf16"]
