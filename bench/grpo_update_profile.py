"""Where the GRPO update's time goes, against the machine's own bf16 matmul peak.

One rollout batch is sampled with the demo's settings (8 prompts x 8 completions, arith, R1
prompt); then the update over it (forward + backward of every micro-batch, the optimizer step)
is timed ``--repeats`` times and profiled once. Useful FLOPs are counted as 6 x (matmul
parameters) per token actually run through the model (each micro-batch's distinct prompts once,
as the shared-prefix forward runs them, plus every completion token), attention left out; the
peak is a bf16 ``mm`` of the same width measured in this run. Prints the achieved share of peak
and the profiler's top operators, so "the rest" has names (autocast casts, the log-softmax over
the 49K vocabulary, the optimizer).

``--forward``: ``fused`` (default: ``train/fused_forward.py`` wherever it describes the model),
``hf`` (transformers' forward), or ``both``: the two timed in turns in one run, so a shared
machine's load hits both alike, and the ratio printed; the profile is of the fused forward.

    .venv/bin/python bench/grpo_update_profile.py [--repeats 3] [--threads 0] [--forward both]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from reasonlab.config import from_dict
from reasonlab.train import fused_forward
from reasonlab.train.grpo import GRPOTrainer
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.train.policy import plan_micro_batches
from reasonlab.train.rollout import collect


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def tokens_run(trainer: GRPOTrainer, roll) -> int:
    """Tokens the update's forward passes process: distinct prompts per micro-batch + completions."""
    idx = [i for i, keep in enumerate(roll.in_loss) if keep]
    prompts = [roll.samples[i].completion.prompt_token_ids for i in idx]
    plan = plan_micro_batches(prompts, [roll.samples[i].completion.num_tokens for i in idx],
                              trainer.cfg.optim.micro_batch)
    total = 0
    for chunk in plan:
        total += sum(len(p) for p in {prompts[j] for j in chunk})
        total += sum(roll.samples[idx[j]].completion.num_tokens for j in chunk)
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--rows", type=int, default=25, help="profiler rows to print")
    ap.add_argument("--forward", choices=["fused", "hf", "both"], default="fused")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = from_dict(GRPOConfig, {
        "model": "smollm2-135m", "steps": 1, "save_every": 0, "report_to": "none",
        "task": {"name": "arith", "options": {"max_number": 20}, "prompt": "r1"},
        "rewards": {"weights": {"accuracy": 1.0, "format": 1.0}},
        "sampling": {"prompts_per_step": 8, "group_size": 8, "max_new_tokens": 96, "dynamic_sampling": False},
        "algo": {"beta": 0.0, "mu": 1}, "optim": {"lr": 1e-9, "micro_batch": 16}})
    trainer = GRPOTrainer(cfg, tempfile.mkdtemp())
    roll = collect(trainer.sampler, trainer.task, trainer.stream, cfg, 0)
    roll.in_loss = [True] * len(roll.samples)  # time the full batch, flat groups included
    n_tok = tokens_run(trainer, roll)
    params = sum(p.numel() for n, p in trainer.model.named_parameters() if "embed" not in n or
                 trainer.model.config.tie_word_embeddings)  # the LM head is a matmul; a lookup is not
    flops = 6 * params * n_tok
    kinds = ["hf", "fused"] if args.forward == "both" else [args.forward]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for k in kinds:
        fused_forward.ENABLED = k == "fused"
        trainer.policy_update(roll)  # warm-up
    for _ in range(args.repeats):
        for k in kinds:  # in turns: a shared machine's load hits both alike
            fused_forward.ENABLED = k == "fused"
            t = time.perf_counter()
            trainer.policy_update(roll)
            times[k].append(time.perf_counter() - t)
    peak = matmul_peak(trainer.dtype)
    print(f"torch threads {torch.get_num_threads()}, autocast {trainer.dtype}; {len(roll.samples)} completions, "
          f"{sum(s.completion.num_tokens for s in roll.samples)} completion tokens, {n_tok} tokens through the model")
    for k in kinds:
        upd = statistics.median(times[k])
        print(f"update ({k} forward): median {upd:.2f} s of {', '.join(f'{x:.2f}' for x in times[k])}; useful "
              f"{flops / upd / 1e9:.0f} GFLOP/s; {trainer.dtype} mm peak {peak / 1e9:.0f} GFLOP/s -> "
              f"{flops / upd / peak:.0%} of peak")
    if len(kinds) == 2:
        print(f"fused / hf: {statistics.median(times['fused']) / statistics.median(times['hf']):.2f} of the time")
    fused_forward.ENABLED = kinds[-1] == "fused"
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.policy_update(roll)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
