"""The training forward: the policy's decoder written out over its live parameters, with autograd.

What it computes: for a ``*ForCausalLM`` that ``arch.describe`` describes (Llama 2/3.x, SmolLM2/3,
Mistral, Qwen2/2.5, Qwen3, Gemma 3 text), the same hidden states, logits and gradients as
transformers' forward, for three callers: GRPO's per-token log-probs (``policy``), SFT's summed
cross-entropy (``sft_loss``) and the PRM's final hidden states (``prm``). The forward reads only
``Arch`` (no ``if model_type ==``) and the model's parameters as they are, so gradients land on
the trainable ones, peft LoRA adapters included (``x W^T + s (drop(x) A^T) B^T``, unmerged: a
merged ``W + s B A`` would cost a full-size weight gradient for a frozen base).

Why: transformers' layers under autocast ran the GRPO update at 28% of the bf16 matmul peak
(BENCHMARKS.md "Where the update goes"): SDPA's CPU backward, autocast's casts, fp32 element-wise
work, padding. Here:

- padding never reaches a linear layer: the tokens of every sequence are packed into one (N, H)
  matrix, so each projection is one GEMM over real tokens; only attention gathers them into a
  padded (sequences, T) layout (``Layout``), index tensors built once per forward;
- q/k/v and gate/up are one GEMM each (their weights concatenated, a differentiable ``cat``),
  norms are ``F.rms_norm``, RoPE is three ops (``x cos + roll(x) sin``, the sign folded in);
  attention runs on the padded layout, through SDPA's flash kernel, except for bf16 on a CPU:
  explicit batched matmuls + softmax (each measured the faster there, ~150-token sequences);
- a shared prefix (GRPO's prompt, SFT's header) runs once; the rows that share it attend to its
  K/V gathered into their key slots, so the gradient flows back into the one prefix pass, exact;
- the LM head and the vocabulary log-softmax run only on the positions that predict a real token,
  in row chunks that stay in cache (``_HeadLogProb``): one (N, V) tensor, the probabilities in the
  compute dtype, serves the picked log-prob's backward, and the entropy comes from each chunk;
- in bf16 (machines with native bf16) each weight is cast once per forward, the residual stream
  and norms stay fp32, matmuls, RoPE and attention run bf16. In fp32 nothing is cast. (Only the
  BENCHMARKS.md times both.)

Falls back (one warning per model, then transformers' forward) for any model ``describe``
refuses, a DDP-wrapped model (calling the inner module would bypass DDP's gradient sync),
attention dropout in training, and peft layers other than plain LoRA on Linear layers (DoRA,
LoRA biases, adapted embeddings). Shapes: N packed tokens, H hidden, nh/nkv heads, hd head dim.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reasonlab.backends.arch import Arch, Unsupported, describe, rope_tables
from reasonlab.models import base_model

ENABLED = True  # False: transformers' forward wherever ``fused`` is left unset (benchmarks compare the two)
# attention through F.scaled_dot_product_attention (CPU flash kernel, forward and backward), or
# baddbmm + softmax + bmm. None picks: bmm for bf16 on a CPU (the flash backward took a quarter of
# the bf16 update on an AVX-512 EPYC; bmm made the update 0.92 of SDPA's time there), SDPA anywhere
# else (in fp32 bmm measured 1.1-1.2x slower for the update on a 2-core AVX2 EPYC; GPUs have their
# own flash kernels). True/False force one.
SDPA: bool | None = None


def _sdpa(t: torch.Tensor) -> bool:
    """Whether attention over tensors like ``t`` (the compute dtype, the device) runs SDPA."""
    if SDPA is not None:
        return SDPA
    return not (t.dtype == torch.bfloat16 and t.device.type == "cpu")


@dataclass(frozen=True)
class Plan:
    """What the forward needs to know about one model, read once from its config and ``Arch``."""

    arch: Arch
    nh: int
    nkv: int
    hd: int
    eps: float
    scale: float


_PLANS: "weakref.WeakKeyDictionary[object, Plan | None]" = weakref.WeakKeyDictionary()


def plan(model, fused: bool | None = None) -> Plan | None:
    """The model's ``Plan``, or None where transformers' forward must run (warned once per model).
    ``fused``: None decides by the model; False never fuses; True raises ``Unsupported`` instead."""
    if fused is False or (fused is None and not ENABLED):
        return None
    if model not in _PLANS:
        try:
            _PLANS[model] = _describe(model)
        except Unsupported as exc:
            _PLANS[model] = None
            if fused:
                raise
            warnings.warn(f"training forward: {exc}; using transformers' forward (slower)", stacklevel=3)
    if _PLANS[model] is None and fused:
        raise Unsupported("training forward: this model has no fused forward")
    return _PLANS[model]


def _describe(model) -> Plan:
    if hasattr(model, "module"):
        raise Unsupported("a DDP-wrapped model (the inner forward would skip DDP's gradient sync)")
    m = base_model(model)
    arch = describe(m)
    cfg = m.config
    if getattr(cfg, "attention_dropout", 0.0):
        raise Unsupported("attention dropout")
    for name, mod in m.named_modules():
        if hasattr(mod, "base_layer"):
            _check_lora(name, mod)
    nh = cfg.num_attention_heads
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // nh
    return Plan(arch, nh, cfg.num_key_value_heads, hd, cfg.rms_norm_eps,
                arch.attn_scale if arch.attn_scale is not None else hd ** -0.5)


def _check_lora(name: str, mod) -> None:
    if not isinstance(mod.base_layer, torch.nn.Linear) or not hasattr(mod, "lora_A"):
        raise Unsupported(f"{name}: peft layer {type(mod).__name__} on {type(mod.base_layer).__name__}")
    if any(getattr(mod, "use_dora", {}).values()) or any(getattr(mod, "lora_bias", {}).values()):
        raise Unsupported(f"{name}: DoRA / LoRA bias")


# ---------------------------------------------------------------------------------------------- weights

class Proj:
    """One or more Linear layers reading the same input, as one GEMM: (N, in) -> (N, sum out).

    Weights are concatenated and cast to the compute dtype once (here, per forward); a LoRA
    member adds ``s * drop(x) A^T`` through one block matrix of its B's (zeros for members
    without adapters), so adapters cost two thin GEMMs per projection."""

    def __init__(self, mods: list, dtype: torch.dtype):
        bases = [getattr(m, "base_layer", m) for m in mods]
        self.weight = _cat([b.weight for b in bases]).to(dtype)
        biases = [b.bias for b in bases]
        self.bias = None
        if any(b is not None for b in biases):
            self.bias = _cat([b if b is not None else w.weight.new_zeros(w.weight.shape[0])
                              for b, w in zip(biases, bases)]).to(dtype)
        self.lora = [(m, name) for m in mods for name in _active(m)]
        self.mods, self.dtype = mods, dtype

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        if not self.lora:
            return y
        rank = sum(m.lora_A[a].weight.shape[0] for m, a in self.lora)
        downs, rows, col = [], [], 0
        for m in self.mods:
            row = x.new_zeros(getattr(m, "base_layer", m).weight.shape[0], rank)
            for a in _active(m):
                drop, B = m.lora_dropout[a], m.lora_B[a].weight.to(self.dtype)
                xa = F.dropout(x, drop.p, drop.training) if getattr(drop, "p", 0.0) else x
                downs.append(F.linear(xa, m.lora_A[a].weight.to(self.dtype)) * m.scaling[a])
                row = row + F.pad(B, (col, rank - col - B.shape[1]))
                col += B.shape[1]
            rows.append(row)
        return torch.addmm(y, torch.cat(downs, -1), torch.cat(rows).t())


def _active(m) -> list[str]:
    if not hasattr(m, "lora_A") or getattr(m, "disable_adapters", False) or getattr(m, "merged", False):
        return []
    return [a for a in m.active_adapters if a in m.lora_A]


def _cat(ts: list[torch.Tensor]) -> torch.Tensor:
    return ts[0] if len(ts) == 1 else torch.cat(ts)


@dataclass
class LayerW:
    """One decoder layer's weights for this forward (norm weights with the family's offset)."""

    ln1: torch.Tensor
    qkv: Proj
    o: Proj
    ln2: torch.Tensor
    gate_up: Proj
    down: Proj
    q_norm: torch.Tensor | None
    k_norm: torch.Tensor | None
    post_attn: torch.Tensor | None
    post_mlp: torch.Tensor | None


def _layer(layer, arch: Arch, dtype: torch.dtype) -> LayerW:
    """Gemma's ``post_attention_layernorm`` is a sandwich norm on the attention output; Llama's is
    the pre-MLP norm (same name, another place)."""
    att, mlp, off = layer.self_attn, layer.mlp, arch.norm_offset

    def norm(mod, to=torch.float32):  # the residual stream's norms run fp32, q/k's in the compute dtype
        return (mod.weight.float() + off).to(to)

    sandwich = arch.sandwich_norm
    return LayerW(
        ln1=norm(layer.input_layernorm), qkv=Proj([att.q_proj, att.k_proj, att.v_proj], dtype),
        o=Proj([att.o_proj], dtype),
        ln2=norm(layer.pre_feedforward_layernorm if sandwich else layer.post_attention_layernorm),
        gate_up=Proj([mlp.gate_proj, mlp.up_proj], dtype), down=Proj([mlp.down_proj], dtype),
        q_norm=norm(att.q_norm, dtype) if arch.qk_norm else None,
        k_norm=norm(att.k_norm, dtype) if arch.qk_norm else None,
        post_attn=norm(layer.post_attention_layernorm) if sandwich else None,
        post_mlp=norm(layer.post_feedforward_layernorm) if sandwich else None)


# ---------------------------------------------------------------------------------------------- layout

@dataclass
class Layout:
    """Every token of one forward, padding removed: the prefixes' tokens, then the rows'.

    Attention reads them in a padded layout of M = U * P + B * C slots: prefix u's token t at
    slot ``u * P + t``, row b's token t at ``U * P + b * C + t`` (``slot[n]``: token n's slot;
    the others hold zeros). ``starts[j]``: packed index of sequence j's first token (prefixes
    first). ``allowed``: the prefix group's (U, P, P) causal mask and the rows' (B, C, P + C):
    all of their owner's prefix, then causal; sliding windows are applied on ``slot_pos``."""

    starts: list[int]
    ids: torch.Tensor  # (N,)
    pos: torch.Tensor  # (N,) RoPE positions
    slot: torch.Tensor  # (N,)
    slot_pos: torch.Tensor  # (M,) the position of each slot's token (a padding slot: its column)
    U: int
    P: int
    B: int
    C: int
    owner: torch.Tensor | None  # (B,) prefix of each row
    allowed: list[torch.Tensor]  # [prefix group (U, P, P)] + [rows (B, C, P + C)]


def layout(prefixes: list[list[int]], rows: list[list[int]], row_pos: list[int],
           owner: list[int] | None) -> Layout:
    """Prefixes (positions 0..len-1) attend causally to themselves; row b (positions
    ``row_pos[b]``..) attends to all of prefix ``owner[b]`` (None: no prefixes) then causally to itself."""
    seqs = prefixes + rows
    starts = [0]
    for seq in seqs:
        starts.append(starts[-1] + len(seq))
    ids = torch.tensor([t for seq in seqs for t in seq], dtype=torch.long)
    firsts = [0] * len(prefixes) + list(row_pos)
    pos = torch.cat([torch.arange(f, f + len(seq)) for seq, f in zip(seqs, firsts)] or [torch.zeros(0, dtype=torch.long)])
    U, B = len(prefixes), len(rows)
    P = max(map(len, prefixes)) if prefixes else 0
    C = max(1, max(map(len, rows), default=1))
    width = [P] * U + [C] * B
    base = [u * P for u in range(U)] + [U * P + b * C for b in range(B)]
    slot = torch.cat([torch.arange(o, o + len(seq)) for seq, o in zip(seqs, base)] or [torch.zeros(0, dtype=torch.long)])
    slot_pos = torch.cat([torch.arange(f, f + w) for f, w in zip(firsts, width)] or [torch.zeros(0, dtype=torch.long)])
    allowed = [torch.ones(P, P, dtype=torch.bool).tril()[None].expand(U, P, P)] if U else []
    own = torch.ones(C, C, dtype=torch.bool).tril()[None].expand(B, C, C)
    if owner is not None:
        plen = torch.tensor([len(prefixes[o]) for o in owner])
        pre = (torch.arange(P)[None] < plen[:, None])[:, None].expand(B, C, P)
        own = torch.cat([pre, own], -1)
    allowed.append(own)
    return Layout(starts[:-1], ids, pos, slot, slot_pos, U, P, B, C,
                  None if owner is None else torch.tensor(owner), allowed)


def _biases(lay: Layout, windows: set, p: Plan, dtype, dev) -> dict:
    """{window: [additive mask per group]}, each (G * nkv, g * T, S) (baddbmm's layout) or
    (G, 1, T, S) for SDPA: built once per forward, shared by the layers with that window."""
    qpos, keys = [], []
    if lay.U:
        pre = lay.slot_pos[:lay.U * lay.P].view(lay.U, lay.P)
        qpos.append(pre)
        keys.append(pre)
    rows = lay.slot_pos[lay.U * lay.P:].view(lay.B, lay.C)
    qpos.append(rows)
    keys.append(rows if lay.owner is None else torch.cat([pre.index_select(0, lay.owner), rows], 1))
    out = {}
    for w in windows:
        out[w] = []
        for ok, q, k in zip(lay.allowed, qpos, keys):
            if w is not None:
                ok = ok & (k[:, None, :] > q[:, :, None] - w)
            bias = torch.zeros(ok.shape, dtype=dtype).masked_fill_(~ok, float("-inf")).to(dev)
            out[w].append(_expand(bias, p))
    return out


def _expand(bias: torch.Tensor, p: Plan) -> torch.Tensor:
    """(G, T, S) -> (G * nkv, g * T, S): one mask per (sequence, kv head), the group's query
    heads stacked along T (the layout ``_attend`` multiplies in); (G, 1, T, S) for SDPA."""
    if _sdpa(bias):
        return bias[:, None]
    G, T, S = bias.shape
    g = p.nh // p.nkv
    return bias[:, None, None].expand(G, p.nkv, g, T, S).reshape(G * p.nkv, g * T, S)


class _ToSlots(torch.autograd.Function):
    """Packed (N, D) -> padded (M, D), zeros in the padding; the backward is a gather, not a
    scatter-add (every token has exactly one slot)."""

    @staticmethod
    def forward(ctx, x, slot, M):
        ctx.save_for_backward(slot)
        return x.new_zeros(M, x.shape[1]).index_copy_(0, slot, x)

    @staticmethod
    def backward(ctx, grad):
        (slot,) = ctx.saved_tensors
        return grad.index_select(0, slot), None, None


class _FromSlots(torch.autograd.Function):
    """Padded (M, D) -> packed (N, D); the backward puts each token's gradient back in its slot."""

    @staticmethod
    def forward(ctx, y, slot):
        ctx.save_for_backward(slot)
        ctx.M = y.shape[0]
        return y.index_select(0, slot)

    @staticmethod
    def backward(ctx, grad):
        (slot,) = ctx.saved_tensors
        return grad.new_zeros(ctx.M, grad.shape[1]).index_copy_(0, slot, grad), None


# ---------------------------------------------------------------------------------------------- forward

def final_hidden(model, p: Plan, lay: Layout, keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Final-normed hidden states of packed tokens ``keep`` (K,), fp32 (K, H)."""
    m = base_model(model)
    dev = m.lm_head.weight.device
    arch = p.arch
    layers = [_layer(layer, arch, dtype) for layer in m.model.layers]
    ids, pos = lay.ids.to(dev), lay.pos.to(dev)
    emb = m.model.embed_tokens
    x = F.embedding(ids, emb.weight).float()
    if arch.embed_scale != 1.0:
        x = x * torch.tensor(arch.embed_scale, dtype=emb.weight.dtype).item()
    tables = rope_tables(m, arch, int(pos.max()) + 1)
    ropes = {k: _rope_table(cos, sin, pos, dtype) for k, (cos, sin) in tables.items()}
    ctx = _Attn(lay, lay.slot.to(dev), None if lay.owner is None else lay.owner.to(dev),
                _biases(lay, set(arch.windows), p, dtype, dev))
    for i, w in enumerate(layers):
        x = _block(x, w, p, i, ropes, ctx, dtype)
    h = x.index_select(0, keep.to(dev))
    return F.rms_norm(h, (h.shape[-1],), _offset(m.model.norm.weight, arch), p.eps).float()


@dataclass
class _Attn:
    """What every layer's attention shares in one forward."""

    lay: Layout
    slot: torch.Tensor
    owner: torch.Tensor | None
    biases: dict


def _offset(w: torch.Tensor, arch: Arch) -> torch.Tensor:
    return w.float() + arch.norm_offset


def _rope_table(cos, sin, pos, dtype):
    """(N, 1, hd) cos and sin for each packed token; sin carries rotate-half's sign."""
    half = sin.shape[-1] // 2
    signed = torch.cat((-sin[:, :half], sin[:, half:]), -1)
    return cos[pos].to(dtype)[:, None], signed[pos].to(dtype)[:, None]


def _norm(x, w, eps, dtype):
    return F.rms_norm(x, (x.shape[-1],), w, eps).to(dtype)


def _block(x, w: LayerW, p: Plan, i: int, ropes, ctx: _Attn, dtype):
    """One decoder layer on the packed residual stream x (N, H) fp32."""
    nh, nkv, hd = p.nh, p.nkv, p.hd
    qkv = w.qkv(_norm(x, w.ln1, p.eps, dtype))
    qk = qkv[:, :(nh + nkv) * hd].view(-1, nh + nkv, hd)
    if w.q_norm is not None:
        qk = torch.cat((F.rms_norm(qk[:, :nh], (hd,), w.q_norm, p.eps),
                        F.rms_norm(qk[:, nh:], (hd,), w.k_norm, p.eps)), 1)
    key = p.arch.rope[i]
    if key is not None:
        cos, sin = ropes[key]
        qk = torch.addcmul(qk * cos, qk.roll(hd // 2, -1), sin)
    att = _attention(qk.flatten(1), qkv[:, (nh + nkv) * hd:], p, ctx, ctx.biases[p.arch.windows[i]])
    out = w.o(att)
    x = x + (out if w.post_attn is None else F.rms_norm(out.float(), (x.shape[-1],), w.post_attn, p.eps))
    gu = w.gate_up(_norm(x, w.ln2, p.eps, dtype))
    gate, up = gu.chunk(2, -1)
    act = F.silu(gate) if p.arch.act == "silu" else F.gelu(gate, approximate="tanh")
    out = w.down(act * up)
    return x + (out if w.post_mlp is None else F.rms_norm(out.float(), (x.shape[-1],), w.post_mlp, p.eps))


def _attention(qk, v, p: Plan, ctx: _Attn, biases):
    """qk (N, (nh + nkv) hd) rotated, v (N, nkv hd) -> (N, nh hd). Tokens go to their padded slots;
    a row's keys are its owner prefix's slots (one gather of whole (P, D) blocks, so the
    backward adds blocks, no element-wise scatter) then its own."""
    lay, nh, nkv, hd = ctx.lay, p.nh, p.nkv, p.hd
    M = lay.U * lay.P + lay.B * lay.C
    qk, v = _ToSlots.apply(qk, ctx.slot, M), _ToSlots.apply(v, ctx.slot, M)
    cut = lay.U * lay.P
    q, k = qk[:, :nh * hd], qk[:, nh * hd:]
    groups = []
    if lay.U:
        kp, vp = k[:cut].view(lay.U, lay.P, -1), v[:cut].view(lay.U, lay.P, -1)
        groups.append((q[:cut].view(lay.U, lay.P, -1), kp, vp))
    kr, vr = k[cut:].view(lay.B, lay.C, -1), v[cut:].view(lay.B, lay.C, -1)
    if ctx.owner is not None:
        kr = torch.cat([kp.index_select(0, ctx.owner), kr], 1)
        vr = torch.cat([vp.index_select(0, ctx.owner), vr], 1)
    groups.append((q[cut:].view(lay.B, lay.C, -1), kr, vr))
    outs = [_attend(qg, kg, vg, bias, p) for (qg, kg, vg), bias in zip(groups, biases)]
    return _FromSlots.apply(torch.cat(outs) if len(outs) > 1 else outs[0], ctx.slot)


def _attend(q, k, v, bias, p: Plan) -> torch.Tensor:
    """Grouped-query attention of one group: q (G, T, nh hd), k, v (G, S, nkv hd) -> (G T, nh hd).
    Each (sequence, kv head) is one matmul over its g query heads stacked along T, K/V not
    repeated; ``baddbmm`` adds scale and mask in the same op. The softmax reads and writes the
    compute dtype (torch's CPU kernel accumulates in fp32 inside; casting the scores to fp32 and
    back cost four copies of a (G nkv, g T, S) tensor, forward and backward). Where
    ``_sdpa``, torch's CPU flash kernel instead (GQA without repeating K/V too)."""
    G, T, _ = q.shape
    S, nh, nkv, hd = k.shape[1], p.nh, p.nkv, p.hd
    g = nh // nkv
    if _sdpa(q):
        o = F.scaled_dot_product_attention(q.view(G, T, nh, hd).transpose(1, 2), k.view(G, S, nkv, hd).transpose(1, 2),
                                           v.view(G, S, nkv, hd).transpose(1, 2), attn_mask=bias,
                                           scale=p.scale, enable_gqa=True)
        return o.transpose(1, 2).reshape(G * T, nh * hd)
    qg = q.view(G, T, nkv, g, hd).permute(0, 2, 3, 1, 4).reshape(G * nkv, g * T, hd)
    kt = k.view(G, S, nkv, hd).permute(0, 2, 3, 1).reshape(G * nkv, hd, S)
    scores = torch.baddbmm(bias, qg, kt, alpha=p.scale)
    probs = scores.softmax(-1)
    o = torch.bmm(probs, v.view(G, S, nkv, hd).permute(0, 2, 1, 3).reshape(G * nkv, S, hd))
    return o.view(G, nkv, g, T, hd).permute(0, 3, 1, 2, 4).reshape(G * T, nh * hd)


def logits(model, p: Plan, hidden: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(K, H) final hidden -> (K, V) fp32 logits (softcapped where the family does)."""
    m = base_model(model)
    z = Proj([m.lm_head], dtype)(hidden.to(dtype)).float()
    cap = p.arch.final_softcap
    return z if cap is None else torch.tanh(z / cap) * cap


def head_logprobs(model, p: Plan, hidden: torch.Tensor, tok: torch.Tensor, dtype: torch.dtype,
                  temperature: float = 1.0, with_entropy: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log p(tok) (K,), entropy (K,) or None) from final hidden states (K, H): the LM head and the
    vocabulary softmax in one step, ``_HeadLogProb`` (row chunks, no fp32 (K, V) tensor). An LM
    head with LoRA adapters or a bias, and a softcapped head (Gemma), go through ``logits`` +
    ``token_logprobs`` instead (same values and gradients, more memory traffic)."""
    head = base_model(model).lm_head
    if p.arch.final_softcap is not None or hasattr(head, "base_layer") or head.bias is not None:
        return token_logprobs(logits(model, p, hidden, dtype), tok, temperature, with_entropy)
    picked, ent = _HeadLogProb.apply(hidden.to(dtype), head.weight.to(dtype), tok, temperature, with_entropy)
    return picked, (ent if with_entropy else None)


def _softmax_picked(z: torch.Tensor, tok: torch.Tensor, want_entropy: bool):
    """(softmax(z), log softmax(z)[tok], entropy or None) of fp32 logits z (K, V), tok (K,):
    one (K, V) tensor written (the probabilities), the entropy from it and z."""
    zmax = z.amax(-1, keepdim=True)
    probs = torch.sub(z, zmax).exp_()
    total = probs.sum(-1, keepdim=True)
    probs.div_(total)
    lse = (zmax + total.log()).squeeze(-1)
    picked = z.gather(-1, tok[:, None]).squeeze(-1) - lse
    ent = lse - torch.bmm(probs[:, None], z[:, :, None]).view(-1) if want_entropy else None
    return probs, picked, ent


class _HeadLogProb(torch.autograd.Function):
    """log softmax(h W^T / T)[tok] and, with no gradient, the entropy, chunk by chunk over rows.

    Each chunk's logits are small enough (``CHUNK_ELEMENTS``) to stay in cache while they are
    cast to fp32, exponentiated, summed and normalised; only the probabilities are kept, in the
    compute dtype (the gradient they make is cast to it before its matmuls anyway), plus the
    picked token's probability in fp32 so that 1 - p keeps its precision for confident tokens.
    The (K, V) fp32 logits of ``logits`` + ``token_logprobs`` (and their casts, shifts, products:
    each a pass over hundreds of MB, freshly allocated) never exist. The backward turns the kept
    probabilities into the logits' gradient in place, so it runs once (no ``retain_graph``)."""

    @staticmethod
    def forward(ctx, h, w, tok, temperature, want_entropy):
        K, V = h.shape[0], w.shape[0]
        probs = h.new_empty(K, V)
        picked, ptok = h.new_empty(K, dtype=torch.float32), h.new_empty(K, dtype=torch.float32)
        ent = h.new_empty(K if want_entropy else 0, dtype=torch.float32)
        rows = max(1, CHUNK_ELEMENTS // V)
        for a in range(0, K, rows):
            z = torch.mm(h[a:a + rows], w.t()).float()
            if temperature != 1.0:
                z.div_(temperature)
            t = tok[a:a + rows]
            e, picked[a:a + rows], chunk_ent = _softmax_picked(z, t, want_entropy)
            ptok[a:a + rows] = e.gather(-1, t[:, None]).squeeze(-1)
            if want_entropy:
                ent[a:a + rows] = chunk_ent
            probs[a:a + rows] = e
        ctx.save_for_backward(h, w, tok, probs, ptok)
        ctx.temperature, ctx.spent = temperature, False
        ctx.mark_non_differentiable(ent)
        return picked, ent

    @staticmethod
    def backward(ctx, grad, _):
        if ctx.spent:
            raise RuntimeError("_HeadLogProb: backward ran twice (its probabilities are consumed in place)")
        ctx.spent = True
        h, w, tok, probs, ptok = ctx.saved_tensors
        g = grad.float() / ctx.temperature  # d logp / dz = (onehot - p) / T
        gz = probs.mul_(-g.to(probs.dtype)[:, None])
        gz.scatter_(-1, tok[:, None], (g * (1 - ptok)).to(gz.dtype)[:, None])
        gh = gz @ w if ctx.needs_input_grad[0] else None
        gw = gz.t() @ h if ctx.needs_input_grad[1] else None
        return gh, gw, None, None, None


# logits per chunk of ``_HeadLogProb``: 4M fp32 values (16 MB), under glibc's 32 MB mmap
# threshold, so a chunk's buffers are reused from the heap rather than page-faulted in afresh
CHUNK_ELEMENTS = 1 << 22


class _PickedLogProb(torch.autograd.Function):
    """log softmax(z)[tok] (K,) and, with no gradient, the entropy (K,), from one (K, V) tensor:
    the probabilities, kept for the backward (d logp / dz = onehot - probs)."""

    @staticmethod
    def forward(ctx, z, tok, want_entropy):
        probs, picked, ent = _softmax_picked(z, tok, want_entropy)
        ctx.save_for_backward(probs, tok)
        ent = ent if want_entropy else picked.new_zeros(0)
        ctx.mark_non_differentiable(ent)
        return picked, ent

    @staticmethod
    def backward(ctx, grad, _):
        probs, tok = ctx.saved_tensors
        gz = probs * -grad[:, None]
        gz.scatter_add_(-1, tok[:, None], grad[:, None])
        return gz, None, None


def token_logprobs(z: torch.Tensor, tok: torch.Tensor, temperature: float = 1.0,
                   with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log p(tok) (K,), entropy (K,) or None) under softmax(z / temperature), z (K, V) fp32."""
    picked, ent = _PickedLogProb.apply(z if temperature == 1.0 else z / temperature, tok, with_entropy)
    return picked, (ent.detach() if with_entropy else None)
