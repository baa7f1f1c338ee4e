"""Decode throughput against batch size and context length, ours vs transformers, with a roofline.

What is timed: decode steps only (one new token per row per step, greedy argmax included), on a
KV cache pre-filled to the context length with random keys/values — prefill is excluded, so the
context axis shows what attention over a long cache costs. Ours: ``FastLlama.forward`` in the
sampling dtype (bf16 on CPUs with native bf16). Theirs: the model's own forward with a
``DynamicCache`` in fp32 (their usual CPU setting, as in ``bench/generate.py``); that is
``generate``'s inner step without its logits processors, so it flatters them slightly.

The roofline for a step of B rows at context c is the larger of compute time
(B x FLOPs per token / measured matmul peak) and memory time (weights + K/V read once / measured
copy bandwidth); tokens/s = B / that. Peaks are measured here (``torch.mm`` 2048^3 in bf16 and
fp32; a large tensor copy), so the lines are what this machine's matmuls can do, not a spec sheet.

Each point is a few steps (``--steps``, best of ``--repeats``): bounded, minutes in all. Run
nice'd on a shared machine: ``nice -n 10 .venv/bin/python bench/generate_curves.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from reasonlab.backends.fast_llama import FastLlama
from reasonlab.models import cache_kwarg
from reasonlab.models import load, resolve_dtype


def peaks() -> dict[str, float]:
    """Measured matmul FLOP/s (bf16, fp32) and copy bandwidth (bytes/s) on this machine."""
    out = {}
    n = 2048
    for name, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
        torch.mm(a, b)
        best = min(_timed(lambda: torch.mm(a, b)) for _ in range(3))
        out[f"flops_{name}"] = 2 * n ** 3 / best
    src = torch.randn(64 * 2 ** 20 // 4)  # 64 MiB: far beyond the caches
    dst = torch.empty_like(src)
    best = min(_timed(lambda: dst.copy_(src)) for _ in range(5))
    out["bytes_per_s"] = 2 * src.numel() * 4 / best  # read + write
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def roofline(cfg, B: int, ctx: int, flops: float, bw: float, wbytes: int, kvbytes: int) -> float:
    """Upper bound on decode tokens/s for B rows at context ``ctx`` (see module docstring)."""
    H, L, V = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
    hd = H // cfg.num_attention_heads
    params = L * (H * hd * (cfg.num_attention_heads * 2 + cfg.num_key_value_heads * 2)
                  + 3 * H * cfg.intermediate_size) + V * H  # layers + lm head (embedding lookup is free)
    attn_flops = 4 * L * ctx * cfg.num_attention_heads * hd
    compute = B * (2 * params + attn_flops) / flops
    memory = (params * wbytes + B * 2 * L * ctx * cfg.num_key_value_heads * hd * kvbytes) / bw
    return B / max(compute, memory)


def ours_step_rate(fast: FastLlama, B: int, ctx: int, steps: int, repeats: int) -> float:
    width = ctx + steps + 2
    cache = fast.new_cache(B, width)
    for t in cache:
        t.normal_()
    tok = torch.randint(3, 1000, (B,))

    def run():
        nonlocal tok
        for s in range(steps):
            col = ctx + s
            pos = torch.full((B, 1), col)
            # as decode.py does: the mask spans the whole cache (dense reads), unwritten columns off
            keys = (torch.arange(width) <= col).expand(B, width)
            tok = fast.forward(tok[:, None], pos, cache, col, keys[:, None, None]).argmax(-1)

    run()  # warm-up
    return B * steps / min(_timed(run) for _ in range(repeats))


def theirs_step_rate(model, B: int, ctx: int, steps: int, repeats: int) -> float:
    from transformers import DynamicCache

    cfg = model.config
    hd = cfg.hidden_size // cfg.num_attention_heads
    key = cache_kwarg(model)

    def fresh():
        cache = DynamicCache(config=cfg)
        shape = (B, cfg.num_key_value_heads, ctx, hd)
        for i in range(cfg.num_hidden_layers):
            cache.update(torch.randn(shape), torch.randn(shape), i)
        return cache

    @torch.inference_mode()
    def run(cache):
        tok = torch.randint(3, 1000, (B, 1))
        for s in range(steps):
            attn = torch.ones(B, ctx + s + 1, dtype=torch.long)
            out = model(input_ids=tok, attention_mask=attn, position_ids=torch.full((B, 1), ctx + s),
                        use_cache=True, **{key: cache})
            tok = out.logits[:, -1].argmax(-1, keepdim=True)

    run(fresh())  # warm-up
    best = float("inf")
    for _ in range(repeats):
        cache = fresh()
        best = min(best, _timed(lambda: run(cache)))
    return B * steps / best


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, xlabel in ((axes[0], "batch", "batch size (rows)"), (axes[1], "context", "context length (tokens)")):
        rows = results[key]
        x = [r["x"] for r in rows]
        ax.plot(x, [r["ours"] for r in rows], "o-", label="ours (bf16)")
        ax.plot(x, [r["theirs"] for r in rows], "s-", label="transformers forward (fp32)")
        ax.plot(x, [r["roof_bf16"] for r in rows], "k--", lw=1, label="roofline, bf16 matmul peak")
        ax.plot(x, [r["roof_fp32"] for r in rows], "k:", lw=1, label="roofline, fp32 matmul peak")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("decode tokens/s")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title(f"context {results['batch'][0]['ctx']}")
    axes[1].set_title(f"batch {results['context'][0]['B']}")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"SmolLM2-135M decode throughput, {results['threads']} torch thread(s) — {results['machine']}",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,2,4,8,16,32,64,128")
    ap.add_argument("--contexts", default="256,512,1024,2048,4096")
    ap.add_argument("--batch-ctx", type=int, default=256, help="context for the batch sweep")
    ap.add_argument("--ctx-batch", type=int, default=8, help="batch for the context sweep")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--machine", default="machine A (AMD EPYC, AVX-512 + native bf16, 2 cores)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", default="docs/img/generate_roofline.png")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on an oversubscribed machine, 1 avoids OpenMP barrier stalls
    model, _ = load("smollm2-135m", dtype="fp32")
    dtype = resolve_dtype(None, "cpu")
    fast = FastLlama.from_hf(model, dtype)
    pk = peaks()
    wb = torch.tensor([], dtype=dtype).element_size()
    kvb = torch.tensor([], dtype=fast.cache_dtype).element_size()
    print(json.dumps({k: f"{v:.3g}" for k, v in pk.items()}), f"our dtype {dtype}", flush=True)
    results = {"machine": args.machine, "threads": torch.get_num_threads(), "peaks": pk, "batch": [], "context": []}
    sweeps = (("batch", [(int(b), args.batch_ctx) for b in args.batches.split(",")]),
              ("context", [(args.ctx_batch, int(c)) for c in args.contexts.split(",")]))
    for name, points in sweeps:
        print(f"{name:>7} {'B':>4} {'ctx':>5} {'ours':>8} {'theirs':>8} {'ratio':>6} {'roof bf16':>9}")
        for B, ctx in points:
            a = ours_step_rate(fast, B, ctx, args.steps, args.repeats)
            t = theirs_step_rate(model, B, ctx, args.steps, args.repeats)
            rb = roofline(model.config, B, ctx, pk["flops_bf16"], pk["bytes_per_s"], wb, kvb)
            rf = roofline(model.config, B, ctx, pk["flops_fp32"], pk["bytes_per_s"], 4, 4)
            results[name].append({"x": B if name == "batch" else ctx, "B": B, "ctx": ctx, "ours": a, "theirs": t,
                                  "roof_bf16": rb, "roof_fp32": rf})
            print(f"{name:>7} {B:>4} {ctx:>5} {a:>8.1f} {t:>8.1f} {a / t:>5.1f}x {rb:>9.0f}", flush=True)
    out = Path(args.out)
    plot(results, out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
