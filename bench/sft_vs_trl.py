"""SFT step time: TRL's SFTTrainer vs ours, same model, data, sequence length, batch and loss tokens.

Settings (both sides): SmolLM2-135M-Instruct from the same converted weights (fp32 master
weights), 64 synthetic arith conversations in the R1 format (the r1 system prompt + question ->
``<think>\\n…\\n</think>\\n<answer>N</answer>``), taken in file order (TRL:
``train_sampling_strategy="sequential"``), 8 conversations per step, no packing (each row padded
to the longest in its batch), max length 256 (nothing is cut), AdamW (torch, lr 1e-5, no weight
decay), gradient clipping at 1.0, loss on the assistant turn only.

Assistant-only loss: SmolLM2's chat template has no ``{% generation %}`` markers, so TRL cannot
use ``assistant_only_loss=True`` with it; TRL gets the same rows as conversational
prompt/completion data and its completion-only loss (the default for that shape), which is the
assistant turn here. TRL's completion also keeps the ``\\n`` its template writes after
``<|im_end|>`` (one more token per conversation than ours; the printed counts show it).

Ours = ``load_sft_data`` + ``collate`` + ``sft_loss`` + AdamW step, timed from collate to
``zero_grad``; TRL = one ``Trainer`` step (``on_step_begin`` .. ``on_step_end``). Every row starts
with the same chat header and R1 system prompt (about half its tokens); ``collate(share_prefix=True)``
runs that prefix once per batch and lets the rows attend to its K/V — same loss, exact gradient
(tests/unit/test_sft_loss.py), fewer FLOPs. TRL has no such option; we print ours with and without.
Runs: TRL fp32 (its CPU default), TRL bf16 autocast (``bf16=True``), ours bf16 without the shared
prefix, ours fp32 and bf16 with it (bf16 autocast, fp32 master weights, is our default on a CPU
with native bf16). The first step of each run is warm-up and not counted; with ``--rounds`` the configurations
alternate (forward, then reverse order). The last line is
``speedup: N.Nx`` = median TRL step at its default (fp32) / median step of ours at our default.

Needs the bench extra: ``pip install 'trl==1.16.0'``. Run: ``nice -n 10 .venv/bin/python bench/sft_vs_trl.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from reasonlab.models import cpu_prefers_bf16, load, resolve
from reasonlab.prompts import build
from reasonlab.tasks.base import get_task
from reasonlab.train.sft_data import collate, load_sft_data
from reasonlab.train.sft_loss import sft_loss

N_ROWS, BATCH, MAX_LEN, LR = 64, 8, 256, 1e-5


def r1_rows(n: int) -> list[dict]:
    """Prompt/completion rows: the r1 prompt and a worked R1-format answer."""
    rows = []
    for p in get_task("arith").load("train", n):
        a, op, b = p.question.removeprefix("What is ").rstrip("?").split()
        verb, inverse = ("Adding", "-") if op == "+" else ("Subtracting", "+")
        thought = (f"The question asks for {a} {op} {b}. Start from {a}. {verb} {b} gives {p.answer}. "
                   f"Check: {p.answer} {inverse} {b} = {a}, so the result is {p.answer}.")
        rows.append({"prompt": build(p, "r1_noprefill"),
                     "completion": [{"role": "assistant",
                                     "content": f"<think>\n{thought}\n</think>\n<answer>{p.answer}</answer>"}]})
    return rows


def trl_steps(rows: list[dict], steps: int, bf16: bool) -> tuple[list[float], list[tuple[int, int]]]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    times, seen = [], []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    class Counting(SFTTrainer):
        def compute_loss(self, model, inputs, *a, **k):
            seen.append((int(inputs["attention_mask"].sum()), int((inputs["labels"][:, 1:] != -100).sum())))
            return super().compute_loss(model, inputs, *a, **k)

    path = str(resolve("smollm2-135m"))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(path)
    args = SFTConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=BATCH, max_length=MAX_LEN,
                     completion_only_loss=True, packing=False, learning_rate=LR, weight_decay=0.0,
                     optim="adamw_torch", max_grad_norm=1.0, lr_scheduler_type="constant",
                     max_steps=steps, logging_steps=1000, report_to=[], save_strategy="no",
                     use_cpu=True, bf16=bf16, train_sampling_strategy="sequential",
                     dataloader_num_workers=0)
    trainer = Counting(model=model, args=args, train_dataset=Dataset.from_list(rows),
                       processing_class=tok, callbacks=[Clock()])
    trainer.train()
    return times, seen


def our_steps(data: Path, steps: int, autocast: torch.dtype | None, share: bool
              ) -> tuple[list[float], list[tuple[int, int]]]:
    model, tok = load("smollm2-135m", dtype="fp32")
    model.train()
    examples, _ = load_sft_data(data, tok, MAX_LEN)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0, fused=True)  # as the trainer
    times, seen = [], []
    for s in range(steps):
        rows = [[e] for e in examples[s * BATCH:(s + 1) * BATCH]]
        t = time.perf_counter()
        batch = collate(rows, tok.pad_token_id, share_prefix=share)
        loss, n = sft_loss(model, batch, autocast)
        (loss / n).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
        seen.append((sum(len(r[0]) for r in rows), n))
    return times, seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4, help="steps per run; the first is warm-up")
    ap.add_argument("--rounds", type=int, default=1, help="each round runs every configuration once, "
                    "odd rounds in reverse order, so a change in machine load hits both sides")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both sides (0: torch's "
                    "default); 1 gives steadier figures on a machine others are loading")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps * BATCH > N_ROWS:
        ap.error(f"--steps is at most {N_ROWS // BATCH}: {N_ROWS} rows, {BATCH} per step")
    rows = r1_rows(N_ROWS)
    data = Path(tempfile.mkdtemp()) / "r1_arith.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = {"TRL fp32": lambda: trl_steps(rows, args.steps, bf16=False),
            "TRL bf16 autocast": lambda: trl_steps(rows, args.steps, bf16=True),
            "ours bf16 autocast": lambda: our_steps(data, args.steps, torch.bfloat16, share=False),
            "ours fp32, shared prefix": lambda: our_steps(data, args.steps, None, share=True),
            "ours bf16 autocast, shared prefix": lambda: our_steps(data, args.steps, torch.bfloat16, share=True)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.rounds):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            t, seen = runs[name]()
            times[name] += t[1:]
            toks = sum(n for n, _ in seen[1:]) / len(seen[1:])
            tgts = sum(n for _, n in seen[1:]) / len(seen[1:])
            print(f"round {r + 1}, {name}: {', '.join(f'{x:.2f}' for x in t[1:])} s/step; "
                  f"{toks:.0f} tokens, {tgts:.0f} loss tokens per step", flush=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    print("median step: " + "; ".join(f"{name} {m:.2f} s" for name, m in med.items()))
    ours = "ours bf16 autocast, shared prefix" if cpu_prefers_bf16() else "ours fp32, shared prefix"
    print(f"ours fp32 vs TRL fp32: {med['TRL fp32'] / med['ours fp32, shared prefix']:.1f}x; "
          f"ours bf16 vs TRL bf16: {med['TRL bf16 autocast'] / med['ours bf16 autocast, shared prefix']:.1f}x "
          f"({med['TRL bf16 autocast'] / med['ours bf16 autocast']:.1f}x without the shared prefix); "
          f"torch threads {torch.get_num_threads()}, batch {BATCH}, max length {MAX_LEN}")
    print(f"speedup: {med['TRL fp32'] / med[ours]:.1f}x")


if __name__ == "__main__":
    main()
