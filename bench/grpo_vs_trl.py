"""GRPO step time: TRL's GRPOTrainer vs ours, identical settings, same machine, same run.

Settings (both sides): SmolLM2-135M-Instruct from the same converted weights, arith prompts in
the r1 format, 4 prompts x 8 generations, <= 128 new tokens, beta 0, one update per batch,
lr 1e-6, accuracy reward. Each side uses its own default precision on this CPU (TRL: fp32, as
``GRPOConfig`` defaults off-GPU; ours: bf16 autocast with fp32 master weights where the CPU has
native bf16). Runs alternate (TRL, ours, TRL, ours, ...); the first step of every run is warm-up
and not counted; the last line is ``speedup: N.Nx`` (median TRL step / median ours step).

Needs the bench extra: ``pip install 'trl==1.16.0'``. Run: ``.venv/bin/python bench/grpo_vs_trl.py``.
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


def trl_steps(steps: int) -> list[float]:
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
                     use_cpu=True, bf16=False, temperature=1.0, shuffle_dataset=False)
    trainer = TRLTrainer(model=model, reward_funcs=accuracy, args=args, train_dataset=data,
                         processing_class=tok, callbacks=[Clock()])
    trainer.train()
    return times


def our_steps(steps: int) -> list[float]:
    cfg = from_dict(GRPOConfig, {
        "model": "smollm2-135m", "steps": steps, "save_every": 0, "tensorboard": False,
        "task": {"name": "arith", "prompt": "r1_noprefill"}, "rewards": {"weights": {"accuracy": 1.0}},
        "sampling": {"prompts_per_step": PROMPTS, "group_size": GENS, "max_new_tokens": MAX_NEW},
        "algo": {"beta": 0.0, "mu": 1}, "optim": {"lr": LR, "micro_batch": 16}})
    trainer = GRPOTrainer(cfg, tempfile.mkdtemp())
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="steps per run; the first is warm-up")
    args = ap.parse_args()
    trl, ours = [], []
    for r in range(args.rounds):
        t = trl_steps(args.steps)[1:]
        o = our_steps(args.steps)[1:]
        trl += t
        ours += o
        print(f"round {r + 1}: TRL {', '.join(f'{x:.1f}' for x in t)} s/step; "
              f"ours {', '.join(f'{x:.1f}' for x in o)} s/step", flush=True)
    mt, mo = statistics.median(trl), statistics.median(ours)
    print(f"median step: TRL {mt:.1f} s, ours {mo:.1f} s ({PROMPTS} prompts x {GENS} generations, "
          f"<= {MAX_NEW} new tokens, torch threads {torch.get_num_threads()})")
    print(f"speedup: {mt / mo:.1f}x")


if __name__ == "__main__":
    main()
