"""Linears for the fast forward: oneDNN pre-packed weights with fused post-ops on CPU.

Why: on CPU, weights pre-packed once for oneDNN (``mkldnn._reorder_linear_weight``, what
inductor's CPU freezing does) make decode-sized GEMMs 1.3-2.8x faster than ``x @ W.T`` here,
and the fused activation / residual add / gating save separate element-wise passes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def can_pack(device: torch.device, dtype: torch.dtype = torch.float32) -> bool:
    """oneDNN pre-packed linears work for ``dtype`` here (CPU builds with mkldnn; bf16 also needs
    AVX-512 or AVX-NE-CONVERT in the CPU). Probed once per dtype."""
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if dtype not in _PACK_OK:
        try:
            w = torch.ops.mkldnn._reorder_linear_weight(torch.ones(4, 4, dtype=dtype), 1)
            y = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 4, dtype=dtype), w, None, "none", [], "")
            _PACK_OK[dtype] = bool(y[0, 0] == 4)
        except Exception:  # noqa: BLE001 - an op or CPU feature missing here: plain matmuls
            _PACK_OK[dtype] = False
    return _PACK_OK[dtype]


_PACK_OK: dict[torch.dtype, bool] = {}


_ONEDNN_ACT = {"none": ("none", ""), "silu": ("swish", ""), "gelu_tanh": ("gelu", "tanh")}


class Linear:
    """``x @ W.T`` (+ bias), optionally fused with an activation, ``+ other`` or ``* other``.

    Why: on CPU, weights pre-packed once for oneDNN (``mkldnn._reorder_linear_weight``, what
    inductor's CPU freezing does) make decode-sized GEMMs 1.3-2.8x faster than ``x @ W.T`` here,
    and the post-ops save separate element-wise passes. Elsewhere (GPU, builds without oneDNN)
    it is a plain matmul with the same results.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, packed: bool):
        self.packed, self.bias = packed, bias
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, None) if packed else weight.t().contiguous()

    def __call__(self, x: torch.Tensor, act: str = "none") -> torch.Tensor:
        """``act``: "none" | "silu" | "gelu_tanh", applied to the output."""
        if self.packed:
            op, alg = _ONEDNN_ACT[act]
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, op, [], alg)
        y = x @ self.weight if self.bias is None else torch.addmm(self.bias, x.flatten(0, -2), self.weight).view(
            *x.shape[:-1], -1)
        if act == "silu":
            return F.silu(y)
        return F.gelu(y, approximate="tanh") if act == "gelu_tanh" else y

    def add(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``x @ W.T + other`` (a residual add)."""
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise.binary(x, other, self.weight, self.bias, "add")
        return self(x) + other

    def mul(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``(x @ W.T) * other`` (the gated MLP's up projection)."""
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise.binary(x, other, self.weight, self.bias, "mul")
        return self(x) * other
