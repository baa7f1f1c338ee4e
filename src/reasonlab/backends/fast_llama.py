"""A hand-written decoder forward for sampling and scoring on CPU (and GPU).

Why: ``transformers.generate`` spends most of its CPU time in Python and generic cache logic,
not in matmuls. Here each layer is a handful of large ops on pre-fused weights:
one ``qkv`` projection (q, k, v concatenated), linears pre-packed for oneDNN on CPU with the
residual adds and the MLP's activation and gating fused into them (``linear.Linear``), a static
pre-allocated KV cache, and grouped-query attention as two batched matmuls. Weights are copied once into the
sampling dtype (bf16 on CPUs where it is the faster dtype, ``cpu_dtype``) by ``FastLlama.from_weights``, from the
``(name, tensor)`` pairs a trainer publishes after each optimizer step (``models.full_weights``:
HF names, LoRA merged) — the same pairs ``vllm`` loads; the forward never reads a live module.

Which families it computes, and how they differ, is described in ``arch.py`` (Llama 2/3.x,
Mistral, Qwen2/2.5, Qwen3, SmolLM2/3, Gemma 3 text); the forward reads only that description.
Shapes: B batch, T time, H hidden, nh/nkv query/key-value heads, hd head dim, L layers, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F

from reasonlab.backends.arch import Arch, Unsupported, describe, rope_tables
from reasonlab.backends.linear import Linear, can_pack
from reasonlab.models import base_model, full_weights


def fast_plan(model) -> tuple[Arch | None, str]:
    """(the model's ``Arch``, "") where ``FastLlama`` computes it exactly, else (None, why not)."""
    try:
        return describe(base_model(model)), ""
    except Unsupported as exc:
        return None, str(exc)


class _Weights:
    """Reads the published ``(name, tensor)`` pairs (HF names, LoRA already merged) into the
    sampling device and dtype: linears packed where ``pack``, norm weights shifted by the family's
    offset so every norm is a plain ``F.rms_norm``, q/k/v concatenated (zero biases filled in
    where only some projections have one)."""

    def __init__(self, pairs, dev: torch.device, dtype: torch.dtype, pack: bool, norm_offset: float):
        self.sd = dict(pairs)
        self.dev, self.dtype, self.pack, self.norm_offset = dev, dtype, pack, norm_offset

    def cast(self, t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(device=self.dev, dtype=self.dtype).contiguous()

    def tensor(self, name: str) -> torch.Tensor:
        if name not in self.sd:
            raise KeyError(f"fast forward: the published weights have no {name!r}")
        return self.sd[name]

    def linear(self, prefix: str) -> Linear:
        bias = self.sd.get(prefix + ".bias")
        return Linear(self.cast(self.tensor(prefix + ".weight")), None if bias is None else self.cast(bias),
                      self.pack)

    def qkv(self, prefix: str) -> Linear:
        names = [f"{prefix}.{p}_proj" for p in "qkv"]
        weights = [self.tensor(n + ".weight") for n in names]
        biases = [self.sd.get(n + ".bias") for n in names]
        bias = None
        if any(b is not None for b in biases):
            bias = torch.cat([b if b is not None else w.new_zeros(w.shape[0]) for b, w in zip(biases, weights)])
        return Linear(self.cast(torch.cat(weights)), None if bias is None else self.cast(bias), self.pack)

    def norm(self, name: str) -> torch.Tensor:
        return self.cast(self.tensor(name + ".weight").float() + self.norm_offset)


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


def _layer(i: int, arch: Arch, w: _Weights) -> Layer:
    """Decoder layer ``i`` -> ``Layer``. Gemma's ``post_attention_layernorm`` is a sandwich norm
    on the attention output; Llama's is the pre-MLP norm (same name, different place)."""
    p = f"model.layers.{i}."
    sandwich, qk_norm = arch.sandwich_norm, arch.qk_norm
    return Layer(
        ln1=w.norm(p + "input_layernorm"), qkv=w.qkv(p + "self_attn"), o=w.linear(p + "self_attn.o_proj"),
        ln2=w.norm(p + ("pre_feedforward_layernorm" if sandwich else "post_attention_layernorm")),
        gate=w.linear(p + "mlp.gate_proj"), up=w.linear(p + "mlp.up_proj"), down=w.linear(p + "mlp.down_proj"),
        rope=arch.rope[i], window=arch.windows[i],
        q_norm=w.norm(p + "self_attn.q_norm") if qk_norm else None,
        k_norm=w.norm(p + "self_attn.k_norm") if qk_norm else None,
        post_attn=w.norm(p + "post_attention_layernorm") if sandwich else None,
        post_mlp=w.norm(p + "post_feedforward_layernorm") if sandwich else None)


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
    def from_hf(cls, model, dtype: torch.dtype, max_positions: int = 32768, pack: bool | None = None) -> "FastLlama":
        """The fast forward of a live model's current weights (``models.full_weights``)."""
        return cls.from_weights(model, full_weights(model), dtype, max_positions, pack)

    @classmethod
    @torch.no_grad()
    def from_weights(cls, model, weights: Iterable[tuple[str, torch.Tensor]], dtype: torch.dtype,
                     max_positions: int = 32768, pack: bool | None = None) -> "FastLlama":
        """The fast forward of ``weights``: the ``(name, tensor)`` pairs a trainer publishes (HF
        names, LoRA merged; what ``vllm`` loads too). ``model`` gives only the shape: its config,
        family (``arch.describe``) and RoPE tables; its parameters are not read. ``pack``:
        pre-pack weights for oneDNN (default: wherever ``can_pack``). Raises ``Unsupported`` for a
        model ``arch.describe`` cannot describe, ``KeyError`` for a weight missing from the pairs."""
        m = base_model(model)
        arch = describe(m)
        dev = m.lm_head.weight.device
        w = _Weights(weights, dev, dtype, can_pack(dev, dtype) if pack is None else pack, arch.norm_offset)
        layers = [_layer(i, arch, w) for i in range(m.config.num_hidden_layers)]
        embed = w.tensor("model.embed_tokens.weight")
        # a tied head is published once, as the embedding
        lm_head = w.linear("lm_head") if "lm_head.weight" in w.sd else Linear(w.cast(embed), None, w.pack)
        positions = min(max_positions, getattr(m.config, "max_position_embeddings", max_positions))
        return cls(arch, layers, w.cast(embed), w.norm("model.norm"), lm_head,
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
