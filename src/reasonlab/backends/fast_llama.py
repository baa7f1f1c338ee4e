"""A hand-written Llama-family forward for sampling on CPU (and GPU), from a live HF model.

Why: ``transformers.generate`` spends most of its CPU time in Python and generic cache logic,
not in matmuls. Here each layer is a handful of large ops on pre-fused weights:
``qkv = x @ W_qkv`` (q, k, v projections concatenated), ``gate_up = x @ W_gu``, a static
pre-allocated KV cache, and ``scaled_dot_product_attention``. Weights are copied once into the
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


@dataclass
class Layer:
    ln1: torch.Tensor
    w_qkv: torch.Tensor  # (H, (nh + 2 nkv) hd), transposed for x @ w
    b_qkv: torch.Tensor | None
    w_o: torch.Tensor  # (nh hd, H)
    ln2: torch.Tensor
    w_gu: torch.Tensor  # (H, 2 I)
    w_down: torch.Tensor  # (I, H)


class FastLlama:
    def __init__(self, layers, embed, norm, lm_head, cos, sin, cfg, dtype):
        self.layers, self.embed, self.norm, self.lm_head = layers, embed, norm, lm_head
        self.cos, self.sin = cos, sin  # (P, hd) each
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
    def from_hf(cls, model, dtype: torch.dtype, max_positions: int = 4096) -> "FastLlama":
        m = base_model(model)
        cfg = m.config
        dev = m.lm_head.weight.device
        cast = lambda t: t.to(device=dev, dtype=dtype).contiguous()  # noqa: E731
        layers = []
        for blk in m.model.layers:
            att, mlp = blk.self_attn, blk.mlp
            qkv = torch.cat([effective_weight(att.q_proj), effective_weight(att.k_proj),
                             effective_weight(att.v_proj)], 0)
            biases = [_bias(att.q_proj), _bias(att.k_proj), _bias(att.v_proj)]
            b_qkv = cast(torch.cat(biases)) if biases[0] is not None else None
            gu = torch.cat([effective_weight(mlp.gate_proj), effective_weight(mlp.up_proj)], 0)
            layers.append(Layer(
                ln1=cast(blk.input_layernorm.weight), w_qkv=cast(qkv.t()), b_qkv=b_qkv,
                w_o=cast(effective_weight(att.o_proj).t()), ln2=cast(blk.post_attention_layernorm.weight),
                w_gu=cast(gu.t()), w_down=cast(effective_weight(mlp.down_proj).t())))
        embed = cast(m.model.embed_tokens.weight)
        lm_head = embed.t() if getattr(cfg, "tie_word_embeddings", False) else cast(effective_weight(m.lm_head).t())
        positions = min(max_positions, getattr(cfg, "max_position_embeddings", max_positions))
        pos = torch.arange(positions, device=dev)[None]
        dummy = torch.zeros(1, device=dev, dtype=torch.float32)
        cos, sin = m.model.rotary_emb(dummy, pos)
        return cls(layers, embed, cast(m.model.norm.weight), lm_head.contiguous(),
                   cos[0].to(dtype), sin[0].to(dtype), cfg, dtype)

    def new_cache(self, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (len(self.layers), batch, self.nkv, length, self.hd)
        dev = self.embed.device
        dt = self.cache_dtype
        return torch.zeros(shape, dtype=dt, device=dev), torch.zeros(shape, dtype=dt, device=dev)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rot * sin

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Grouped-query attention without expanding K/V: q (B, nh, T, hd), k/v (B, nkv, S, hd),
        bias (B, 1, T, S) additive. Plain batched matmuls: on CPU, SDPA's flash kernel spends
        ~1 ms per layer on a one-token decode, most of the step."""
        B, nh, T, hd = q.shape
        g = nh // self.nkv
        q = q.reshape(B, self.nkv, g * T, hd).to(k.dtype)  # a group's query heads share K/V
        scores = (q @ k.transpose(-1, -2)).view(B, self.nkv, g, T, -1) * (hd ** -0.5)
        probs = (scores + bias.unsqueeze(1)).float().softmax(-1).to(v.dtype)
        out = probs.view(B, self.nkv, g * T, -1) @ v
        return out.view(B, nh, T, hd).to(self.dtype)

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
        cos = self.cos[pos].unsqueeze(1)  # (B, 1, T, hd)
        sin = self.sin[pos].unsqueeze(1)
        end = start + T
        bias = torch.zeros(attn_mask.shape, dtype=self.cache_dtype, device=ids.device)
        bias.masked_fill_(~attn_mask, float("-inf"))  # (B, 1, T, end), shared by all layers
        for i, layer in enumerate(self.layers):
            h = F.rms_norm(x, (x.shape[-1],), layer.ln1, self.eps)
            qkv = h @ layer.w_qkv
            if layer.b_qkv is not None:
                qkv = qkv + layer.b_qkv
            q, k, v = qkv.split((nh * hd, nkv * hd, nkv * hd), dim=-1)
            q = self._rope(q.view(B, T, nh, hd).transpose(1, 2), cos, sin)
            kc[i, :, :, start:end] = self._rope(k.view(B, T, nkv, hd).transpose(1, 2), cos, sin)
            vc[i, :, :, start:end] = v.view(B, T, nkv, hd).transpose(1, 2)
            att = self._attend(q, kc[i, :, :, :end], vc[i, :, :, :end], bias)
            x = x + att.transpose(1, 2).reshape(B, T, nh * hd) @ layer.w_o
            h = F.rms_norm(x, (x.shape[-1],), layer.ln2, self.eps)
            gate, up = (h @ layer.w_gu).chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ layer.w_down
        last = F.rms_norm(x[:, -1], (x.shape[-1],), self.norm, self.eps)
        return (last @ self.lm_head).float()
