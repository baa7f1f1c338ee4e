"""Generation speed on a GPU: our ``hf`` backend vs plain ``transformers.generate``, same card.

Why a separate script from ``bench/generate.py``: the GPU machine has no internet and takes at
most 64 MiB of files, so the embedded weights cannot travel. Models are built here from configs
with RANDOM weights instead — speed does not depend on weight values, because both sides ignore
EOS and produce exactly ``--new-tokens`` tokens per row (ours: ``ignore_eos=True``; theirs:
``min_new_tokens``). Only the tokenizer travels (``--tokenizer DIR``: the embedded SmolLM2
tokenizer files). Shapes: ``smollm2-135m`` (SmolLM2-135M's Llama config) and ``qwen2.5-0.5b``
(Qwen2.5-0.5B's Qwen2 config, but with SmolLM2's 49152-token vocabulary so the tokenizer fits).

Like for like: both sides get the same rendered prompts (arith questions in the ``r1`` format
through the chat template), bf16 weights, the same sampling (temperature 1, no top-k/top-p),
and the whole batch in one chunk (our ``max_batch`` is set to the largest batch). Ours is timed
through its public ``generate`` (templating, tokenizing and detokenizing included); theirs from
tokenized inputs — so any bias is against ours. Each side is warmed up per shape; each row is the
median of ``--repeats`` alternating runs, with ``torch.cuda.synchronize()`` around every timing.
Only this module, ``reasonlab.prompts`` and ``reasonlab.types`` are imported (not
``reasonlab.tasks``, whose package import pulls in the math verifier), so the GPU machine needs
only torch and transformers. CI never runs this.

Run: ``PYTHONPATH=src python3 bench/generate_gpu.py --device cuda --tokenizer DIR --out table.md``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import torch
import transformers

from reasonlab.backends.hf import HFGenerator
from reasonlab.prompts import build, render_chat
from reasonlab.types import Problem, SamplingParams

# Special token ids of the SmolLM2 tokenizer (<|endoftext|>, <|im_start|>, <|im_end|>).
SPECIALS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=2)


def smollm2_135m():
    """SmolLM2-135M's shape (its config.json)."""
    return transformers.LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=8192,
        rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 100000.0}, tie_word_embeddings=True, **SPECIALS)


def qwen25_05b():
    """Qwen2.5-0.5B's shape (q/k/v biases are built in to Qwen2), vocab cut to SmolLM2's 49152."""
    return transformers.Qwen2Config(
        vocab_size=49152, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, tie_word_embeddings=True,
        use_sliding_window=False, **SPECIALS)


SHAPES = {"smollm2-135m": (smollm2_135m, transformers.LlamaForCausalLM),
          "qwen2.5-0.5b": (qwen25_05b, transformers.Qwen2ForCausalLM)}


def build_model(shape: str, device: str, dtype: torch.dtype):
    """A randomly initialised model of ``shape``, built directly on ``device``, in ``dtype``."""
    make_cfg, cls = SHAPES[shape]
    cfg = make_cfg()
    torch.manual_seed(0)
    with torch.device(device):
        model = cls(cfg)
    return model.to(dtype).eval()


def arith_prompts(n: int) -> list:
    """``n`` "What is a + b?" questions in the r1 format (the arith task's shape, built here so
    ``reasonlab.tasks`` need not be imported)."""
    rng = random.Random(0)
    out = []
    for i in range(n):
        a, b, op = rng.randint(0, 20), rng.randint(0, 20), rng.choice("+-")
        out.append(build(Problem(id=f"arith/{i}", question=f"What is {a} {op} {b}?", answer=""), "r1"))
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def ours(gen: HFGenerator, prompts, new_tokens: int, device: str) -> float:
    sync(device)
    t = time.perf_counter()
    out = gen.generate(prompts, SamplingParams(n=1, temperature=1.0, max_new_tokens=new_tokens, seed=0))
    sync(device)
    dt = time.perf_counter() - t
    produced = sum(c.num_tokens for row in out for c in row)
    assert produced == len(prompts) * new_tokens, produced
    return produced / dt


def theirs(model, tokenizer, prompts, new_tokens: int, device: str) -> float:
    texts = [render_chat(tokenizer, p) for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    sync(device)
    t = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             pad_token_id=tokenizer.pad_token_id)
    sync(device)
    dt = time.perf_counter() - t
    produced = (out.shape[1] - enc["input_ids"].shape[1]) * len(prompts)
    assert produced == len(prompts) * new_tokens, produced
    return produced / dt


def agreement(gen: HFGenerator, model, tokenizer, prompt, device: str, n: int = 16) -> str:
    """How many of ``n`` greedy tokens both sides agree on (common prefix), for one prompt: a
    check that ours computes the same model on this device. Information, not a gate: with random
    weights, bf16 rounding can flip near-tied argmaxes."""
    a = gen.generate([prompt], SamplingParams(n=1, temperature=0.0, max_new_tokens=n))[0][0].token_ids
    enc = tokenizer([render_chat(tokenizer, prompt)], return_tensors="pt", add_special_tokens=False).to(device)
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=False, max_new_tokens=n, min_new_tokens=n,
                             pad_token_id=tokenizer.pad_token_id)
    b = out[0, enc["input_ids"].shape[1]:].tolist()
    same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"{same}/{n} tokens"


def device_line(device: str) -> str:
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    return f"device: {name}; torch {torch.__version__}; transformers {transformers.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tokenizer", required=True, help="a directory with the SmolLM2 tokenizer files")
    ap.add_argument("--shapes", default="smollm2-135m,qwen2.5-0.5b")
    ap.add_argument("--batches", default="1,8,32,128")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", help="also write the markdown table here (rewritten after every row)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    shapes = args.shapes.split(",")
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        ap.error(f"unknown shape(s) {', '.join(unknown)}; valid: {', '.join(SHAPES)}")
    batches = [int(b) for b in args.batches.split(",")]
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    tok = transformers.AutoTokenizer.from_pretrained(args.tokenizer)
    prompts = arith_prompts(max(batches))
    lengths = [len(tok(render_chat(tok, p), add_special_tokens=False)["input_ids"]) for p in prompts]

    lines = [device_line(args.device),
             f"{args.dtype} weights on both sides, RANDOM weights (EOS ignored on both sides), "
             f"{args.new_tokens} new tokens per row, prompts {min(lengths)}-{max(lengths)} tokens "
             f"(arith, r1 format), median of {args.repeats} alternating runs; "
             "qwen2.5-0.5b uses vocab 49152 (SmolLM2's tokenizer), not Qwen's 151936",
             "", "| shape | batch | ours tok/s | transformers tok/s | ratio |",
             "|---|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    notes = [""]
    for shape in shapes:
        model = build_model(shape, args.device, dtype)
        gen = HFGenerator(model, tok, dtype=dtype, max_batch=max(batches), ignore_eos=True)
        assert gen.use_fast, f"{shape}: our fast path was not chosen"
        notes.append(f"{shape}: transformers attention {model.config._attn_implementation}; "
                     f"greedy agreement {agreement(gen, model, tok, prompts[0], args.device)}")
        warm = prompts[:2]
        ours(gen, warm, 8, args.device)  # builds the fast weights, warms kernels
        theirs(model, tok, warm, 8, args.device)
        for b in batches:
            a, t = [], []
            for _ in range(args.repeats):  # alternate, so drift hits both sides
                a.append(ours(gen, prompts[:b], args.new_tokens, args.device))
                t.append(theirs(model, tok, prompts[:b], args.new_tokens, args.device))
            ra, rt = statistics.median(a), statistics.median(t)
            lines.append(f"| {shape} | {b} | {ra:.1f} | {rt:.1f} | {ra / rt:.2f}x |")
            print(lines[-1], flush=True)
            if args.out:
                Path(args.out).write_text("\n".join(lines + notes) + "\n")
        del gen, model
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    print("\n".join(notes), flush=True)


if __name__ == "__main__":
    main()
