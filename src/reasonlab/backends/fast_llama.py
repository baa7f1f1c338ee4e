"""A hand-written Llama-family forward for sampling on CPU (and GPU), from a live HF model.

Why: ``transformers.generate`` spends most of its CPU time in Python and generic cache logic,
not in matmuls. Here each layer is a handful of large ops on pre-fused weights:
one ``qkv`` projection (q, k, v concatenated), linears pre-packed for oneDNN on CPU with the
residual adds and the MLP's swish and gating fused into them (``Linear``), a static
pre-allocated KV cache, and grouped-query attention as two batched matmuls. Weights are copied once into the
sampling dtype (bf16 on CPUs with native bf16) by ``FastLlama.from_hf``; trainers refresh them
after each optimizer step (``HFGenerator.sync_weights``), with LoRA deltas merged in.

Supports model types llama, mistral and qwen2 (attention bias). Shapes: B batch, T time,
H hidden, nh/nkv query/key-value heads, hd head dim, L layers, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SUPPORTED = ("llama", "mistral", "qwen2")


def supports(model) -> bool:
    """True for architectures this module implements exactly (no sliding-window attention)."""
    cfg = getattr(base_model(model), "config", None)
    kind = getattr(cfg, "model_type", None)
    if kind not in SUPPORTED:
        return False
    return not (kind == "qwen2" and getattr(cfg, "use_sliding_window", False))


def base_model(model):
    """The ``*ForCausalLM`` under peft/DDP wrappers."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def effective_weight(linear) -> torch.Tensor:
    """A Linear's weight with active LoRA deltas merged (peft LoraLayer), else the weight."""
    if hasattr(linear, "base_layer") and hasattr(linear, "get_delta_weight"):
        w = linear.base_layer.weight.detach()
        if not getattr(linear, "disable_adapters", False) and not getattr(linear, "merged", False):
            for name in linear.active_adapters:
                if name in linear.lora_A:
                    w = w + linear.get_delta_weight(name).detach()
        return w
    return linear.weight.detach()


def _bias(linear):
    lin = getattr(linear, "base_layer", linear)
    return None if lin.bias is None else lin.bias.detach()


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


class Linear:
    """``x @ W.T`` (+ bias), optionally fused with swish, ``+ other`` or ``* other``.

    Why: on CPU, weights pre-packed once for oneDNN (``mkldnn._reorder_linear_weight``, what
    inductor's CPU freezing does) make decode-sized GEMMs 1.3-2.8x faster than ``x @ W.T`` here,
    and the post-ops save separate element-wise passes. Elsewhere (GPU, builds without oneDNN)
    it is a plain matmul with the same results.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, packed: bool):
        self.packed, self.bias = packed, bias
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, None) if packed else weight.t().contiguous()

    def __call__(self, x: torch.Tensor, act: str = "none") -> torch.Tensor:
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, act, [], "")
        y = x @ self.weight if self.bias is None else torch.addmm(self.bias, x.flatten(0, -2), self.weight).view(
            *x.shape[:-1], -1)
        return F.silu(y) if act == "swish" else y

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


@dataclass
class Layer:
    ln1: torch.Tensor
    qkv: Linear  # q, k, v projections concatenated: (nh + 2 nkv) hd outputs
    o: Linear
    ln2: torch.Tensor
    gate: Linear
    up: Linear
    down: Linear


class FastLlama:
    def __init__(self, layers, embed, norm, lm_head, cos, sin, cfg, dtype):
        self.layers, self.embed, self.norm, self.lm_head = layers, embed, norm, lm_head
        half = cos.shape[-1] // 2
        # sin with the rotate-half sign folded in: rope(x) = x * cos + roll(x, half) * sin_signed
        self.cos, self.sin = cos, torch.cat((-sin[:, :half], sin[:, half:]), -1)  # (P, hd) each
        self.nh = cfg.num_attention_heads
        self.nkv = cfg.num_key_value_heads
        self.hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.nh
        self.eps = cfg.rms_norm_eps
        self.dtype = dtype
        self.max_pos = cos.shape[0]
        # fp32 K/V on CPU: small batched attention matmuls run ~1.7x faster in fp32 than bf16 there
        self.cache_dtype = torch.float32 if embed.device.type == "cpu" else dtype

    @classmethod
    @torch.no_grad()
    def from_hf(cls, model, dtype: torch.dtype, max_positions: int = 4096, pack: bool | None = None) -> "FastLlama":
        """``pack``: pre-pack weights for oneDNN (default: wherever ``can_pack``)."""
        m = base_model(model)
        cfg = m.config
        dev = m.lm_head.weight.device
        pack = can_pack(dev, dtype) if pack is None else pack
        cast = lambda t: t.to(device=dev, dtype=dtype).contiguous()  # noqa: E731
        linear = lambda w, b=None: Linear(cast(w), None if b is None else cast(b), pack)  # noqa: E731
        layers = []
        for blk in m.model.layers:
            att, mlp = blk.self_attn, blk.mlp
            qkv = torch.cat([effective_weight(att.q_proj), effective_weight(att.k_proj),
                             effective_weight(att.v_proj)], 0)
            biases = [_bias(att.q_proj), _bias(att.k_proj), _bias(att.v_proj)]
            layers.append(Layer(
                ln1=cast(blk.input_layernorm.weight),
                qkv=linear(qkv, torch.cat(biases) if biases[0] is not None else None),
                o=linear(effective_weight(att.o_proj)), ln2=cast(blk.post_attention_layernorm.weight),
                gate=linear(effective_weight(mlp.gate_proj)), up=linear(effective_weight(mlp.up_proj)),
                down=linear(effective_weight(mlp.down_proj))))
        embed = cast(m.model.embed_tokens.weight)
        tied = getattr(cfg, "tie_word_embeddings", False)
        lm_head = linear(embed if tied else effective_weight(m.lm_head))
        positions = min(max_positions, getattr(cfg, "max_position_embeddings", max_positions))
        pos = torch.arange(positions, device=dev)[None]
        dummy = torch.zeros(1, device=dev, dtype=torch.float32)
        cos, sin = m.model.rotary_emb(dummy, pos)
        return cls(layers, embed, cast(m.model.norm.weight), lm_head, cos[0].to(dtype), sin[0].to(dtype), cfg, dtype)

    def new_cache(self, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (len(self.layers), batch, self.nkv, length, self.hd)
        dev = self.embed.device
        dt = self.cache_dtype
        return torch.zeros(shape, dtype=dt, device=dev), torch.zeros(shape, dtype=dt, device=dev)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotary embedding; ``sin`` carries rotate-half's sign (see ``__init__``): 3 ops, not 5."""
        return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, -1), sin)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Grouped-query attention without expanding K/V: q (B, nh, T, hd), k/v (B, nkv, S, hd),
        bias (B * nkv, g * T, S) additive (``_group_bias``) -> (B, T, nh * hd). A group's query
        heads share K/V, so each (row, kv head) is one small matmul; ``baddbmm`` adds scale and
        mask in the same op.
        Plain batched matmuls: on CPU, SDPA's flash kernel spends ~1 ms per layer on a one-token
        decode, most of the step."""
        B, nh, T, hd = q.shape
        S = k.shape[2]
        q32 = torch.empty((B, nh, T, hd), dtype=k.dtype, device=q.device)
        q32.copy_(q)  # layout change and dtype cast in one op
        scores = torch.baddbmm(bias, q32.view(B * self.nkv, nh // self.nkv * T, hd),
                               k.reshape(B * self.nkv, S, hd).transpose(1, 2), alpha=hd ** -0.5)
        probs = scores.float().softmax(-1).to(v.dtype)
        out = torch.bmm(probs, v.reshape(B * self.nkv, S, hd))
        res = torch.empty((B, T, nh, hd), dtype=self.dtype, device=q.device)
        res.copy_(out.view(B, nh, T, hd).transpose(1, 2))
        return res.view(B, T, nh * hd)

    def _group_bias(self, attn_mask: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, S) bool mask -> (B * nkv, g * T, S) additive bias, built once per forward
        and shared by every layer."""
        B, _, T, S = attn_mask.shape
        g = self.nh // self.nkv
        bias = torch.zeros((B, 1, 1, T, S), dtype=self.cache_dtype, device=attn_mask.device)
        bias.masked_fill_(~attn_mask[:, :, None], float("-inf"))
        return bias.expand(B, self.nkv, g, T, S).reshape(B * self.nkv, g * T, S)

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, pos: torch.Tensor, cache, start: int,
                attn_mask: torch.Tensor) -> torch.Tensor:
        """Run T new tokens per row, writing their K/V at cache columns [start, start+T).

        ids, pos: (B, T) token ids and RoPE positions; attn_mask: (B, 1, T, start+T) bool, True
        where attention is allowed. Returns logits of the last position, (B, V) float32.
        """
        kc, vc = cache
        B, T = ids.shape
        nh, nkv, hd = self.nh, self.nkv, self.hd
        x = F.embedding(ids, self.embed)
        cos = self.cos[pos].unsqueeze(2)  # (B, T, 1, hd): broadcast over q and k heads
        sin = self.sin[pos].unsqueeze(2)
        end = start + T
        bias = self._group_bias(attn_mask)
        for i, layer in enumerate(self.layers):
            h = F.rms_norm(x, (x.shape[-1],), layer.ln1, self.eps)
            qkv = layer.qkv(h)
            # RoPE on q and k in one go (fewer small ops: per-op overhead matters at decode)
            qk = self._rope(qkv[..., :(nh + nkv) * hd].view(B, T, nh + nkv, hd), cos, sin)
            q = qk[:, :, :nh].transpose(1, 2)
            kc[i, :, :, start:end] = qk[:, :, nh:].transpose(1, 2)
            vc[i, :, :, start:end] = qkv[..., (nh + nkv) * hd:].view(B, T, nkv, hd).transpose(1, 2)
            att = self._attend(q, kc[i, :, :, :end], vc[i, :, :, :end], bias)
            x = layer.o.add(att, x)
            h = F.rms_norm(x, (x.shape[-1],), layer.ln2, self.eps)
            x = layer.down.add(layer.up.mul(h, layer.gate(h, "swish")), x)
        last = F.rms_norm(x[:, -1], (x.shape[-1],), self.norm, self.eps)
        return self.lm_head(last).float()
