"""Generation speed: our ``hf`` backend vs plain ``transformers.generate`` (and vLLM's engine,
where it is installed) on SmolLM2-135M.

Both sides get the same prompts (arith questions through the chat template) and produce exactly
``--new-tokens`` tokens per row (EOS ignored on our side, ``min_new_tokens`` on theirs), so
tokens/s compare like for like. The peer runs in fp32 (its usual CPU setting, as in the brief);
ours in the default sampling dtype (bf16 on CPUs with native bf16). One row per batch size,
ending in the ratio. Run: ``nice -n 10 .venv/bin/python bench/generate.py``; on a machine shared
with other jobs add ``--threads 1`` (OpenMP barriers stall when cores are oversubscribed).
Run it with ``.venv-vllm/bin/python`` (``make install-vllm``) for the vLLM column: the CPU build,
eager mode, fp32 on machines without native bf16 (the dtype ours samples in otherwise), same
prompts and the same number of new tokens, T = 1, a request seed per prompt.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from reasonlab.backends.hf import HFGenerator
from reasonlab.models import load
from reasonlab.prompts import build
from reasonlab.tasks.base import get_task
from reasonlab.types import SamplingParams


def ours(gen, prompts, new_tokens: int) -> float:
    t = time.perf_counter()
    out = gen.generate(prompts, SamplingParams(n=1, temperature=1.0, max_new_tokens=new_tokens, seed=0))
    dt = time.perf_counter() - t
    produced = sum(c.num_tokens for row in out for c in row)
    assert produced == len(prompts) * new_tokens, produced
    return produced / dt


def vllm_engine(dtype: torch.dtype, max_batch: int):
    try:
        import vllm  # noqa: F401
    except ImportError:
        return None
    from reasonlab.backends.factory import make_backend

    return make_backend("vllm", "smollm2-135m", dtype=dtype, ignore_eos=True, max_model_len=1024,
                        max_num_seqs=max_batch)


def theirs(model, tokenizer, prompts, new_tokens: int) -> float:
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    t = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=True, temperature=1.0, max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, pad_token_id=tokenizer.pad_token_id)
    dt = time.perf_counter() - t
    return (out.shape[1] - enc.input_ids.shape[1]) * len(prompts) / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="8,32,64")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both sides (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on an oversubscribed machine, 1 avoids OpenMP barrier stalls
    fp32, tok = load("smollm2-135m", dtype="fp32")
    gen = HFGenerator(fp32, tok, ignore_eos=True)  # samples in the default dtype from the fp32 weights
    problems = get_task("arith").load("test", max(int(b) for b in args.batches.split(",")))
    print(f"torch threads: {torch.get_num_threads()}, our dtype: {gen.dtype}, peer: fp32, "
          f"{args.new_tokens} new tokens per row")
    engine = vllm_engine(gen.dtype, max(int(b) for b in args.batches.split(",")))
    print(f"{'batch':>5} {'ours tok/s':>11} {'transformers tok/s':>19} {'ratio':>6}"
          + (f" {'vLLM tok/s':>11} {'ours/vLLM':>9}" if engine else ""))
    ours(gen, [build(problems[0], "r1")] * 2, 4)  # warm-up
    if engine:
        ours(engine, [build(problems[0], "r1")] * 2, 4)
    for b in map(int, args.batches.split(",")):
        prompts = [build(p, "r1") for p in problems[:b]]
        a, t, v = [], [], []
        for _ in range(args.repeats):  # alternate, so drift in machine load hits every side
            a.append(ours(gen, prompts, args.new_tokens))
            t.append(theirs(fp32, tok, prompts, args.new_tokens))
            if engine:
                v.append(ours(engine, prompts, args.new_tokens))
        ra, rt = statistics.median(a), statistics.median(t)
        row = f"{b:>5} {ra:>11.1f} {rt:>19.1f} {ra / rt:>5.1f}x"
        if engine:
            rv = statistics.median(v)
            row += f" {rv:>11.1f} {ra / rv:>8.2f}x"
        print(row, flush=True)


if __name__ == "__main__":
    main()
