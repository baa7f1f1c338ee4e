"""One small description per decoder architecture the fast forward implements.

Why: Llama, Mistral, Qwen2/2.5, Qwen3, SmolLM2/3 and Gemma 3 are one transformer with a handful
of knobs (a qk-norm, a norm offset, an embedding scale, GELU instead of SiLU, sliding windows, no
RoPE on some layers). ``Arch`` names those knobs once, each family's builder (registered under
its HF ``model_type``) reads them from the HF config, and ``FastLlama`` reads only ``Arch`` —
no ``if model_type ==`` in the forward. Anything a builder cannot describe exactly raises
``Unsupported`` with the reason, so callers fall back to transformers' own forward instead of
sampling wrong text.

RoPE tables are not re-derived here: ``rope_tables`` asks the model's own rotary module, so every
static ``rope_type`` transformers implements (default, linear, llama3, yarn) is exact; the
sequence-length dependent ones (dynamic, longrope) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from reasonlab.registry import Registry

STATIC_ROPE = ("default", "linear", "llama3", "yarn")


class Unsupported(ValueError):
    """The model is outside what ``FastLlama`` computes exactly; the message says why."""


@dataclass(frozen=True)
class Arch:
    """How a family departs from plain Llama; defaults are Llama's.

    windows[i]: layer i attends to keys at most ``w - 1`` positions back (HF's sliding-window
    mask, ``k > q - w``), or None for full causal attention.
    rope[i]: which RoPE table layer i uses (a key of ``rope_tables``), or None for no RoPE.
    """

    name: str
    windows: tuple[int | None, ...]
    rope: tuple[str | None, ...]
    act: str = "silu"  # gated-MLP activation: "silu" | "gelu_tanh"
    qk_norm: bool = False  # RMSNorm over head_dim on q and k before RoPE (Qwen3, Gemma 3)
    norm_offset: float = 0.0  # RMSNorm multiplies by (offset + w): Gemma stores w around 0
    embed_scale: float = 1.0  # token embeddings are multiplied by this (Gemma: sqrt(hidden))
    sandwich_norm: bool = False  # Gemma: RMSNorm on the attention / MLP output before the residual add
    attn_scale: float | None = None  # query scale; None: head_dim ** -0.5
    final_softcap: float | None = None  # logits = cap * tanh(logits / cap)


FAMILIES: Registry[Callable[[object], Arch]] = Registry("architecture")


def _windows(cfg, sliding: str = "sliding_attention") -> tuple[int | None, ...]:
    """Per-layer windows from ``config.layer_types`` (Qwen2/3, SmolLM3, Gemma 3)."""
    types = getattr(cfg, "layer_types", None) or ["full_attention"] * cfg.num_hidden_layers
    return tuple(cfg.sliding_window if t == sliding else None for t in types)


def _act(cfg, attr: str = "hidden_act") -> str:
    act = getattr(cfg, attr, "silu")
    names = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh"}
    if act not in names:
        raise Unsupported(f"activation {act!r}")
    return names[act]


@FAMILIES.register("llama")
def llama(cfg) -> Arch:
    """Llama 2/3.x, SmolLM2 (llama3 RoPE scaling comes from the rotary module)."""
    L = cfg.num_hidden_layers
    return Arch("llama", (None,) * L, ("default",) * L, act=_act(cfg))


@FAMILIES.register("mistral")
def mistral(cfg) -> Arch:
    """Mistral: one sliding window for every layer when ``sliding_window`` is set."""
    L = cfg.num_hidden_layers
    return Arch("mistral", (getattr(cfg, "sliding_window", None),) * L, ("default",) * L, act=_act(cfg))


@FAMILIES.register("qwen2")
def qwen2(cfg) -> Arch:
    """Qwen2/2.5: q/k/v biases (read from the modules); windows on layers >= max_window_layers
    when ``use_sliding_window`` (transformers encodes that in ``layer_types``)."""
    return Arch("qwen2", _windows(cfg), ("default",) * cfg.num_hidden_layers, act=_act(cfg))


@FAMILIES.register("qwen3")
def qwen3(cfg) -> Arch:
    """Qwen3: Qwen2 plus a per-head RMSNorm on q and k."""
    return Arch("qwen3", _windows(cfg), ("default",) * cfg.num_hidden_layers, act=_act(cfg), qk_norm=True)


@FAMILIES.register("smollm3")
def smollm3(cfg) -> Arch:
    """SmolLM3: Llama with no RoPE on every ``no_rope_layer_interval``-th layer (NoPE)."""
    rope = tuple("default" if use else None for use in cfg.no_rope_layers)
    return Arch("smollm3", _windows(cfg), rope, act=_act(cfg))


@FAMILIES.register("gemma3_text")
def gemma3_text(cfg) -> Arch:
    """Gemma 3 text (Gemma3ForCausalLM): local sliding-window and global layers with their own
    RoPE tables, (1 + w) norms, sqrt(hidden) embedding scale, GELU-tanh MLP, sandwich norms,
    ``query_pre_attn_scalar``, optional final-logit softcap."""
    if getattr(cfg, "use_bidirectional_attention", False):
        raise Unsupported("bidirectional attention")
    if getattr(cfg, "attn_logit_softcapping", None) is not None:
        # transformers' Gemma3Attention never passes it to the attention kernel; rather than
        # pick a side, let transformers' forward run.
        raise Unsupported("attn_logit_softcapping (transformers' Gemma 3 ignores it)")
    return Arch("gemma3_text", _windows(cfg), tuple(cfg.layer_types), act=_act(cfg, "hidden_activation"),
                qk_norm=True, norm_offset=1.0, embed_scale=cfg.hidden_size ** 0.5, sandwich_norm=True,
                attn_scale=cfg.query_pre_attn_scalar ** -0.5,
                final_softcap=getattr(cfg, "final_logit_softcapping", None))


def _rope_params(cfg) -> list[dict]:
    rp = getattr(cfg, "rope_parameters", None) or {}
    return [rp] if "rope_type" in rp or "rope_theta" in rp else [v for v in rp.values() if v]


def describe(model) -> Arch:
    """The ``Arch`` of a ``*ForCausalLM`` (unwrapped), or ``Unsupported`` naming what is missing."""
    cfg = getattr(model, "config", None)
    kind = getattr(cfg, "model_type", None)
    if kind not in FAMILIES:
        raise Unsupported(f"model type {kind!r} ({type(model).__name__}) has no fast path")
    for rp in _rope_params(cfg):
        if rp.get("rope_type", "default") not in STATIC_ROPE:
            raise Unsupported(f"{kind}: rope_type {rp['rope_type']!r}")
        if rp.get("partial_rotary_factor", 1.0) != 1.0:
            raise Unsupported(f"{kind}: partial rotary embeddings")
    try:
        return FAMILIES.get(kind)(cfg)
    except Unsupported as exc:
        raise Unsupported(f"{kind}: {exc}") from None


def rope_tables(model, arch: Arch, positions: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{table key: (cos, sin)}, each (positions, head_dim) float32, from the model's rotary module."""
    rotary = model.model.rotary_emb
    dev = model.lm_head.weight.device
    pos = torch.arange(positions, device=dev)[None]
    dummy = torch.zeros(1, device=dev, dtype=torch.float32)
    tables = {}
    for key in sorted({k for k in arch.rope if k is not None}):
        cos, sin = rotary(dummy, pos) if key == "default" else rotary(dummy, pos, key)
        tables[key] = (cos[0], sin[0])
    return tables
