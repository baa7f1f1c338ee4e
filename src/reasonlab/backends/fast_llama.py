"""A hand-written decoder forward for sampling and scoring on CPU (and GPU), from a live HF model.

Why: ``transformers.generate`` spends most of its CPU time in Python and generic cache logic,
not in matmuls. Here each layer is a handful of large ops on pre-fused weights:
one ``qkv`` projection (q, k, v concatenated), linears pre-packed for oneDNN on CPU with the
residual adds and the MLP's activation and gating fused into them (``linear.Linear``), a static
pre-allocated KV cache, and grouped-query attention as two batched matmuls. Weights are copied once into the
sampling dtype (bf16 on CPUs with native bf16) by ``FastLlama.from_hf``; trainers refresh them
after each optimizer step (``HFGenerator.sync_weights``), with LoRA deltas merged in.

Which families it computes, and how they differ, is described in ``arch.py`` (Llama 2/3.x,
Mistral, Qwen2/2.5, Qwen3, SmolLM2/3, Gemma 3 text); the forward reads only that description.
Shapes: B batch, T time, H hidden, nh/nkv query/key-value heads, hd head dim, L layers, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reasonlab.backends.arch import Arch, Unsupported, describe, rope_tables
from reasonlab.backends.linear import Linear, can_pack
from reasonlab.models import base_model, merged_weight as effective_weight


def fast_plan(model) -> tuple[Arch | None, str]:
    """(the model's ``Arch``, "") where ``FastLlama`` computes it exactly, else (None, why not)."""
    try:
        return describe(base_model(model)), ""
    except Unsupported as exc:
        return None, str(exc)


def _bias(linear):
    lin = getattr(linear, "base_layer", linear)
    return None if lin.bias is None else lin.bias.detach()


def _qkv_bias(att) -> torch.Tensor | None:
    """q, k and v biases concatenated (zeros for a projection without one), or None if none has one."""
    projs = (att.q_proj, att.k_proj, att.v_proj)
    biases = [_bias(p) for p in projs]
    if all(b is None for b in biases):
        return None
    dev = next(b for b in biases if b is not None).device
    return torch.cat([b if b is not None else torch.zeros(getattr(p, "base_layer", p).out_features, device=dev)
                      for b, p in zip(biases, projs)])


@dataclass
class Layer:
    ln1: torch.Tensor
    qkv: Linear  # q, k, v projections concatenated: (nh + 2 nkv) hd outputs
    o: Linear
    ln2: torch.Tensor  # the norm before the MLP
    gate: Linear
    up: Linear
    down: Linear
    rope: str | None  # key of FastLlama.rope; None: this layer has no RoPE (SmolLM3)
    window: int | None  # sliding-window width, None: full causal attention
    q_norm: torch.Tensor | None = None  # per-head RMSNorm weights (Arch.qk_norm)
    k_norm: torch.Tensor | None = None
    post_attn: torch.Tensor | None = None  # sandwich norms on the branch outputs (Arch.sandwich_norm)
    post_mlp: torch.Tensor | None = None


@dataclass
class _Weights:
    """Copies HF weights to the sampling device and dtype (linears packed where ``pack``; norm
    weights shifted by the family's offset, so every norm is a plain ``F.rms_norm``)."""

    dev: torch.device
    dtype: torch.dtype
    pack: bool
    norm_offset: float

    def cast(self, t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(device=self.dev, dtype=self.dtype).contiguous()

    def linear(self, mod, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> Linear:
        """A Linear from ``mod`` (LoRA merged), or from explicit ``weight``/``bias``."""
        if weight is None:
            weight, bias = effective_weight(mod), _bias(mod)
        return Linear(self.cast(weight), None if bias is None else self.cast(bias), self.pack)

    def norm(self, mod) -> torch.Tensor:
        return self.cast(mod.weight.detach().float() + self.norm_offset)


def _layer(blk, i: int, arch: Arch, w: _Weights) -> Layer:
    """One HF decoder layer -> ``Layer``. Gemma's ``post_attention_layernorm`` is a sandwich norm
    on the attention output; Llama's is the pre-MLP norm (same name, different place)."""
    att, mlp = blk.self_attn, blk.mlp
    sandwich, qk_norm = arch.sandwich_norm, arch.qk_norm
    qkv = torch.cat([effective_weight(att.q_proj), effective_weight(att.k_proj), effective_weight(att.v_proj)])
    return Layer(
        ln1=w.norm(blk.input_layernorm), qkv=w.linear(None, qkv, _qkv_bias(att)), o=w.linear(att.o_proj),
        ln2=w.norm(blk.pre_feedforward_layernorm if sandwich else blk.post_attention_layernorm),
        gate=w.linear(mlp.gate_proj), up=w.linear(mlp.up_proj), down=w.linear(mlp.down_proj),
        rope=arch.rope[i], window=arch.windows[i],
        q_norm=w.norm(att.q_norm) if qk_norm else None, k_norm=w.norm(att.k_norm) if qk_norm else None,
        post_attn=w.norm(blk.post_attention_layernorm) if sandwich else None,
        post_mlp=w.norm(blk.post_feedforward_layernorm) if sandwich else None)


class FastLlama:
    def __init__(self, arch: Arch, layers: list[Layer], embed, norm, lm_head: Linear,
                 rope: dict[str, tuple[torch.Tensor, torch.Tensor]], cfg, dtype: torch.dtype, max_pos: int):
        self.arch, self.layers, self.embed, self.norm, self.lm_head = arch, layers, embed, norm, lm_head
        # sin with the rotate-half sign folded in: rope(x) = x * cos + roll(x, half) * sin_signed
        self.rope = {k: (cos.to(dtype), torch.cat((-sin[:, :sin.shape[-1] // 2], sin[:, sin.shape[-1] // 2:]),
                                                   -1).to(dtype)) for k, (cos, sin) in rope.items()}
        self.nh = cfg.num_attention_heads
        self.nkv = cfg.num_key_value_heads
        self.hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.nh
        self.eps = cfg.rms_norm_eps
        self.scale = arch.attn_scale if arch.attn_scale is not None else self.hd ** -0.5
        # the scale rounded to the weights' dtype first, as transformers' Gemma does
        self.embed_scale = torch.tensor(arch.embed_scale, dtype=dtype).item()
        self.dtype = dtype
        self.max_pos = max_pos
        # K/V in the sampling dtype: a decode step reads the whole cache, so halving its bytes
        # (bf16) is what speeds attention up once the cache outgrows the CPU's caches
        self.cache_dtype = dtype

    @classmethod
    @torch.no_grad()
    def from_hf(cls, model, dtype: torch.dtype, max_positions: int = 32768, pack: bool | None = None) -> "FastLlama":
        """``pack``: pre-pack weights for oneDNN (default: wherever ``can_pack``). Raises
        ``Unsupported`` for a model ``arch.describe`` cannot describe."""
        m = base_model(model)
        arch = describe(m)
        dev = m.lm_head.weight.device
        w = _Weights(dev, dtype, can_pack(dev, dtype) if pack is None else pack, arch.norm_offset)
        layers = [_layer(blk, i, arch, w) for i, blk in enumerate(m.model.layers)]
        positions = min(max_positions, getattr(m.config, "max_position_embeddings", max_positions))
        return cls(arch, layers, w.cast(m.model.embed_tokens.weight), w.norm(m.model.norm), w.linear(m.lm_head),
                   rope_tables(m, arch, positions), m.config, dtype, positions)

    def new_cache(self, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """K stored transposed, (layers, batch, kv heads, head dim, columns), V as (layers, batch,
        kv heads, columns, head dim), so each attention matmul reads its operand untransposed
        (oneDNN's bf16 batched matmul copies any operand it cannot read as is; see ``forward``
        for why callers attend over the whole width). Address columns with ``columns``."""
        L, dev, dt = len(self.layers), self.embed.device, self.cache_dtype
        return (torch.zeros((L, batch, self.nkv, self.hd, length), dtype=dt, device=dev),
                torch.zeros((L, batch, self.nkv, length, self.hd), dtype=dt, device=dev))

    @staticmethod
    def width(cache) -> int:
        """Columns the cache holds."""
        return cache[1].shape[3]

    @staticmethod
    def columns(cache, stop: int, rows: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of cache columns [0, stop) of batch ``rows``, K and V, for copying between caches."""
        k, v = cache
        return k[:, rows, ..., :stop], v[:, rows, :, :stop]

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotary embedding; ``sin`` carries rotate-half's sign (see ``__init__``): 3 ops, not 5."""
        return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, -1), sin)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Grouped-query attention without expanding K/V: q (B, nh, T, hd), k (B, nkv, hd, S),
        v (B, nkv, S, hd), bias (B * nkv, g * T, S) additive (``_group_bias``) -> (B, T, nh * hd).
        A group's query heads share K/V, so each (row, kv head) is one small matmul; ``baddbmm``
        adds scale and mask in the same op.
        Plain batched matmuls: on CPU, SDPA's flash kernel spends ~1 ms per layer on a one-token
        decode, most of the step."""
        B, nh, T, hd = q.shape
        S = v.shape[2]
        qc = torch.empty((B, nh, T, hd), dtype=k.dtype, device=q.device)
        qc.copy_(q)  # the batched matmul's layout (and the cache's dtype) in one op
        scores = torch.baddbmm(bias, qc.view(B * self.nkv, nh // self.nkv * T, hd),
                               k.reshape(B * self.nkv, hd, S), alpha=self.scale)
        probs = scores.softmax(-1)  # bf16 in and out, accumulated in fp32 inside the kernel
        out = torch.bmm(probs, v.reshape(B * self.nkv, S, hd))
        if T == 1:  # decode: (B * nkv, g, hd) already lies in memory as (B, 1, nh * hd)
            return out.view(B, 1, nh * hd)
        res = torch.empty((B, T, nh, hd), dtype=self.dtype, device=q.device)
        res.copy_(out.view(B, nh, T, hd).transpose(1, 2))
        return res.view(B, T, nh * hd)

    def _group_bias(self, attn_mask: torch.Tensor, start: int, window: int | None) -> torch.Tensor:
        """(B, 1, T, S) bool mask -> (B * nkv, g * T, S) additive bias, built once per forward
        and window and shared by the layers using it. A window keeps keys in cache columns
        ``k > q - window`` (columns and positions differ by a row's constant left padding)."""
        if window is not None:
            T, S = attn_mask.shape[-2:]
            q = torch.arange(start, start + T, device=attn_mask.device)[:, None]
            attn_mask = attn_mask & (torch.arange(S, device=attn_mask.device)[None] > q - window)
        B, _, T, S = attn_mask.shape
        g = self.nh // self.nkv
        bias = torch.zeros((B, 1, 1, T, S), dtype=self.cache_dtype, device=attn_mask.device)
        bias.masked_fill_(~attn_mask[:, :, None], float("-inf"))
        return bias.expand(B, self.nkv, g, T, S).reshape(B * self.nkv, g * T, S)

    def _qk(self, qkv: torch.Tensor, layer: Layer, ropes: dict) -> torch.Tensor:
        """(B, T, (nh + 2 nkv) hd) -> q and k heads (B, T, nh + nkv, hd), normed and rotated
        together (fewer small ops: per-op overhead matters at decode)."""
        B, T = qkv.shape[:2]
        nh, nkv, hd = self.nh, self.nkv, self.hd
        qk = qkv[..., :(nh + nkv) * hd].view(B, T, nh + nkv, hd)
        if layer.q_norm is not None:
            qk = torch.cat((F.rms_norm(qk[:, :, :nh], (hd,), layer.q_norm, self.eps),
                            F.rms_norm(qk[:, :, nh:], (hd,), layer.k_norm, self.eps)), 2)
        return qk if layer.rope is None else self._rope(qk, *ropes[layer.rope])

    def _layers(self, ids: torch.Tensor, pos: torch.Tensor, cache, start: int, attn_mask: torch.Tensor) -> torch.Tensor:
        """The decoder stack on T new tokens per row -> hidden states before the final norm (B, T, H)."""
        kc, vc = cache
        B, T = ids.shape
        nh, nkv, hd = self.nh, self.nkv, self.hd
        x = F.embedding(ids, self.embed)
        if self.embed_scale != 1.0:
            x = x * self.embed_scale
        ropes = {k: (cos[pos].unsqueeze(2), sin[pos].unsqueeze(2)) for k, (cos, sin) in self.rope.items()}
        biases = {w: self._group_bias(attn_mask, start, w) for w in {layer.window for layer in self.layers}}
        end = start + T
        S = attn_mask.shape[-1]  # columns attended: the whole cache when the caller's mask spans it
        act = self.arch.act
        for i, layer in enumerate(self.layers):
            h = F.rms_norm(x, (x.shape[-1],), layer.ln1, self.eps)
            qkv = layer.qkv(h)
            qk = self._qk(qkv, layer, ropes)
            kc[i, ..., start:end] = qk[:, :, nh:].permute(0, 2, 3, 1)
            vc[i, :, :, start:end] = qkv[..., (nh + nkv) * hd:].view(B, T, nkv, hd).transpose(1, 2)
            att = self._attend(qk[:, :, :nh].transpose(1, 2), kc[i, ..., :S], vc[i, :, :, :S],
                               biases[layer.window])
            if layer.post_attn is None:
                x = layer.o.add(att, x)
            else:
                x = x + F.rms_norm(layer.o(att), (x.shape[-1],), layer.post_attn, self.eps)
            h = F.rms_norm(x, (x.shape[-1],), layer.ln2, self.eps)
            gated = layer.up.mul(h, layer.gate(h, act))
            if layer.post_mlp is None:
                x = layer.down.add(gated, x)
            else:
                x = x + F.rms_norm(layer.down(gated), (x.shape[-1],), layer.post_mlp, self.eps)
        return x

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, pos: torch.Tensor, cache, start: int,
                attn_mask: torch.Tensor) -> torch.Tensor:
        """Run T new tokens per row, writing their K/V at cache columns [start, start+T).

        ids, pos: (B, T) token ids and RoPE positions; attn_mask: (B, 1, T, S) bool over cache
        columns [0, S), S >= start+T, True where attention is allowed (sliding windows are
        applied on top). Passing S = the cache's width reads K/V as whole, dense tensors: a
        column slice of a bf16 cache makes oneDNN's batched matmul copy it first, which cost
        as much as the matmul (``decode`` grows its cache in chunks for this). Returns logits
        of the last position, (B, V) float32.
        """
        x = self._layers(ids, pos, cache, start, attn_mask)
        logits = self.lm_head(F.rms_norm(x[:, -1], (x.shape[-1],), self.norm, self.eps)).float()
        cap = self.arch.final_softcap
        return logits if cap is None else torch.tanh(logits / cap) * cap

    @torch.inference_mode()
    def hidden_states(self, ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """Final-normed hidden states of whole sequences, for scoring (value heads).

        ids, attn (B, T): token ids and 1/0 validity (either padding side; positions count valid
        tokens, as transformers' own forward does for right padding) -> (B, T, H) float32.
        """
        B, T = ids.shape
        if T > self.max_pos:
            raise ValueError(f"sequence of {T} tokens exceeds the model's {self.max_pos} positions")
        valid = attn.to(self.embed.device).bool()
        pos = (valid.long().cumsum(-1) - 1).clamp(min=0)
        causal = torch.ones(T, T, dtype=torch.bool, device=valid.device).tril()
        mask = (causal[None] & valid[:, None, :]) | torch.eye(T, dtype=torch.bool, device=valid.device)[None]
        x = self._layers(ids.to(valid.device), pos, self.new_cache(B, T), 0, mask[:, None])
        return F.rms_norm(x, (x.shape[-1],), self.norm, self.eps).float()
