"""GRPO step time: TRL's GRPOTrainer vs ours, identical settings, same machine, same run.

Settings (both sides): SmolLM2-135M-Instruct from the same converted weights, arith prompts in
the r1 format, 4 prompts x 8 generations, <= 128 new tokens, beta 0, one update per batch,
lr 1e-6, accuracy reward. Each side uses its own default precision on this CPU (TRL: fp32, as
``GRPOConfig`` defaults off-GPU; ours: bf16 autocast with fp32 master weights where the CPU has
native bf16). ``--trl-bf16`` adds TRL with ``bf16=True`` (autocast on CPU) as a second peer, so
the ratio is not only against TRL's fp32 default. Runs alternate (TRL, [TRL bf16,] ours, ...); the
first step of every run is warm-up and not counted; the last lines are ``speedup: N.Nx`` (median
TRL step / median ours step), one per peer.

Needs the bench extra: ``pip install 'trl==1.16.0'``. Run: ``.venv/bin/python bench/grpo_vs_trl.py``.
Our step with vLLM as the rollout engine beside our sampler (``.venv-vllm`` has no TRL):
``.venv-vllm/bin/python bench/grpo_vs_trl.py --no-trl --backends hf,vllm``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from reasonlab.config import from_dict
from reasonlab.models import resolve
from reasonlab.prompts import build
from reasonlab.tasks.base import get_task
from reasonlab.train.grpo import GRPOTrainer
from reasonlab.train.grpo_config import GRPOConfig

PROMPTS, GENS, MAX_NEW, LR = 4, 8, 128, 1e-6


def trl_steps(steps: int, bf16: bool = False) -> list[float]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig as TRLConfig, GRPOTrainer as TRLTrainer

    task = get_task("arith")
    problems = task.load("train", PROMPTS * (steps + 1))
    data = Dataset.from_list([{"prompt": build(p, "r1_noprefill"), "answer": p.answer} for p in problems])

    def accuracy(completions, answer, **_):
        return [1.0 if task.score(type("P", (), {"answer": a})(), c[0]["content"]).correct else 0.0
                for c, a in zip(completions, answer)]

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    path = str(resolve("smollm2-135m"))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(path)
    args = TRLConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=PROMPTS * GENS,
                     num_generations=GENS, max_completion_length=MAX_NEW, beta=0.0, num_iterations=1,
                     learning_rate=LR, max_steps=steps, logging_steps=1, report_to=[], save_strategy="no",
                     use_cpu=True, bf16=bf16, temperature=1.0, shuffle_dataset=False)
    trainer = TRLTrainer(model=model, reward_funcs=accuracy, args=args, train_dataset=data,
                         processing_class=tok, callbacks=[Clock()])
    trainer.train()
    return times


def our_steps(steps: int, backend: str = "hf") -> list[float]:
    """``backend``: the rollout engine (``hf``: our sampler; ``vllm``: vLLM in this process, its
    weights reloaded after every step; run with ``.venv-vllm/bin/python``)."""
    cfg = from_dict(GRPOConfig, {
        "model": "smollm2-135m", "steps": steps, "save_every": 0, "report_to": "none",
        "backend": {"name": backend, "options": {"max_model_len": 1024, "max_num_seqs": PROMPTS * GENS}
                    if backend == "vllm" else {}},
        "task": {"name": "arith", "prompt": "r1_noprefill"}, "rewards": {"weights": {"accuracy": 1.0}},
        "sampling": {"prompts_per_step": PROMPTS, "group_size": GENS, "max_new_tokens": MAX_NEW},
        "algo": {"beta": 0.0, "mu": 1}, "optim": {"lr": LR, "micro_batch": 16}})
    trainer = GRPOTrainer(cfg, tempfile.mkdtemp())
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - t)
    if hasattr(trainer.sampler, "close"):
        trainer.sampler.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="steps per run; the first is warm-up")
    ap.add_argument("--trl-bf16", action="store_true", help="also time TRL with bf16 autocast")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for every side (0: torch's default)")
    ap.add_argument("--backends", default="hf", help="our rollout engines, comma-separated: hf, vllm")
    ap.add_argument("--no-trl", action="store_true", help="ours only (e.g. in .venv-vllm, which has no TRL)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peers = {} if args.no_trl else {"TRL fp32": lambda: trl_steps(args.steps)}
    if args.trl_bf16 and not args.no_trl:
        peers["TRL bf16"] = lambda: trl_steps(args.steps, bf16=True)
    ours = {f"ours {b}": (lambda b=b: our_steps(args.steps, b)) for b in args.backends.split(",")}
    times: dict[str, list[float]] = {name: [] for name in [*peers, *ours]}
    for r in range(args.rounds):
        line = []
        for name, fn in [*peers.items(), *ours.items()]:
            t = fn()[1:]
            times[name] += t
            line.append(f"{name} {', '.join(f'{x:.1f}' for x in t)}")
        print(f"round {r + 1} (s/step): " + "; ".join(line), flush=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    print("median step: " + ", ".join(f"{k} {v:.1f} s" for k, v in med.items()) +
          f" ({PROMPTS} prompts x {GENS} generations, <= {MAX_NEW} new tokens, torch threads {torch.get_num_threads()})")
    for mine in ours:
        for name in peers:
            print(f"{mine}: speedup vs {name}: {med[name] / med[mine]:.1f}x")
    if "ours hf" in ours and "ours vllm" in ours:
        print(f"ours vllm / ours hf step time: {med['ours vllm'] / med['ours hf']:.2f}")

if __name__ == "__main__":
    main()
