"""GRPO rollouts with DAPO dynamic sampling: groups drawn, rounds and tokens/s per step.

Samples ``--steps`` rollouts (``train/rollout.collect``, no policy update: the weights stay the
embedded model's, so every mode sees the same policy) with the demo's sampling shape: 8 prompts x
8 completions of arith in the R1 format, <= 96 new tokens, T = 1, dynamic sampling with at most 3
rounds, rewards of the R1-Zero recipe (accuracy, format, format_partial, tag_count; ``--rewards
demo`` for the demo's accuracy, format, language). Modes alternate step by step in one run (same
machine state for all): ``rounds`` is ``oversample_max: 1`` (each round draws only the groups
still missing: what dynamic sampling did before over-provisioning), ``estimate`` the default
(one over-provisioned draw sized by the running keep rate, decoded in one loop: the hf
backend's ``max_batch`` is 128 rows), ``estimate_b64`` the same with ``max_batch`` 64 (a draw of
more than 8 x 8 rows decoded in two loops, one after the other). Every mode starts from the
same data position and seeds. The last lines are per mode: groups drawn per step, rounds per step,
rollout tok/s (all tokens sampled / generate time) and seconds of generation per step.

    .venv/bin/python bench/grpo_rollout.py [--steps 4] [--modes rounds,estimate,estimate_b64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from reasonlab.config import from_dict
from reasonlab.prompts import build
from reasonlab.train.grpo import GRPOTrainer
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.train.rollout import collect
from reasonlab.types import SamplingParams

REWARDS = {"r1_zero": {"accuracy": 1.0, "format": 1.0, "format_partial": 0.5, "tag_count": 0.5},
           "demo": {"accuracy": 1.0, "format": 1.0, "language": 0.5}}
# mode -> (sampling overrides, hf backend options)
MODES = {"rounds": ({"oversample_max": 1.0}, {}), "estimate": ({}, {}),
         "estimate_b64": ({}, {"max_batch": 64})}


def trainer_for(mode: str, rewards: str, max_new: int, tmp: str) -> GRPOTrainer:
    sampling = {"prompts_per_step": 8, "group_size": 8, "max_new_tokens": max_new, "temperature": 1.0,
                "dynamic_sampling": True, "max_sampling_rounds": 3}
    overrides, backend = MODES[mode]
    sampling.update(overrides)
    cfg = from_dict(GRPOConfig, {
        "model": "smollm2-135m", "steps": 1, "save_every": 0, "report_to": "none",
        "task": {"name": "arith", "options": {"max_number": 20}, "prompt": "r1"},
        "rewards": {"weights": REWARDS[rewards]}, "sampling": sampling,
        "backend": {"name": "hf", "options": backend}})
    return GRPOTrainer(cfg, f"{tmp}/{mode}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--modes", default="rounds,estimate")
    ap.add_argument("--rewards", choices=sorted(REWARDS), default="r1_zero")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    args = ap.parse_args()
    modes = args.modes.split(",")
    tmp = tempfile.mkdtemp()
    trainers = {m: trainer_for(m, args.rewards, args.max_new_tokens, tmp) for m in modes}
    rates = {m: getattr(t, "keep_rate", None) for m, t in trainers.items()}
    rows: dict[str, list] = {m: [] for m in modes}
    for t in trainers.values():  # warm-up (first-call costs), not counted
        t.sampler.generate([build(t.stream.problems[0], "r1")], SamplingParams(n=8, max_new_tokens=8, seed=0))
    for step in range(args.steps):
        for m in modes:
            t = trainers[m]
            extra = {} if rates[m] is None else {"keep_rate": rates[m]}
            roll = collect(t.sampler, t.task, t.stream, t.cfg, step, **extra)
            rates[m] = getattr(roll, "keep_rate", None)
            r = (roll.groups_sampled, getattr(roll, "rounds", None), roll.tokens, roll.gen_s,
                 len(roll.samples) // t.cfg.sampling.group_size)
            rows[m].append(r)
            print(f"{m:9s} step {step}: drew {r[0]:2d} groups in {r[1]} round(s), kept {r[4]}, "
                  f"{r[2]} tokens in {r[3]:.1f} s = {r[2] / r[3]:.1f} tok/s", flush=True)
    for m in modes:
        drawn, rounds, toks, secs, kept = zip(*rows[m])
        print(f"{m}: groups drawn/step {statistics.mean(drawn):.1f} (range {min(drawn)}-{max(drawn)}), "
              f"rounds/step {statistics.mean(r or 0 for r in rounds):.2f}, kept/step {statistics.mean(kept):.1f}, "
              f"rollout {sum(toks) / sum(secs):.1f} tok/s, gen {statistics.mean(secs):.1f} s/step")


if __name__ == "__main__":
    main()
