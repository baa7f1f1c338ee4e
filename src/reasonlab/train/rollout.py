"""One step's experience: sample G completions per prompt, score, compute group advantages.

Includes DAPO's dynamic sampling (groups whose rewards are all equal carry no gradient under
group-relative advantages; drop them and sample more prompts, up to ``max_sampling_rounds``)
and overlong handling (``mask``: truncated completions leave the loss; ``soft``: DAPO eq. 13
length penalty in the last ``overlong_buffer`` tokens).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import torch

from reasonlab import prompts as prompt_formats
from reasonlab.algos import ADVANTAGES
from reasonlab.rewards import combine
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.types import Problem, Sample, SamplingParams


class ProblemStream:
    """Endless, seeded, epoch-shuffled problems; ``pos`` is the resumable data position."""

    def __init__(self, problems: list[Problem], seed: int, pos: int = 0):
        if not problems:
            raise ValueError("the training split has no problems")
        self.problems, self.seed, self.pos = problems, seed, pos

    def take(self, k: int) -> list[Problem]:
        out = []
        for _ in range(k):
            epoch, i = divmod(self.pos, len(self.problems))
            order = list(range(len(self.problems)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            out.append(self.problems[order[i]])
            self.pos += 1
        return out


@dataclass
class Rollout:
    samples: list[Sample] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    advantages: list[float] = field(default_factory=list)
    in_loss: list[bool] = field(default_factory=list)
    components: dict[str, list] = field(default_factory=dict)
    groups_sampled: int = 0
    gen_s: float = 0.0
    tokens: int = 0


def soft_overlong(length: int, max_len: int, buffer: int) -> float:
    """DAPO eq. 13: 0 up to max_len - buffer, then linear down to -1 at max_len."""
    start = max_len - buffer
    if length <= start:
        return 0.0
    return max(-1.0, (start - length) / max(1, buffer))


def collect(generator, task, stream: ProblemStream, cfg: GRPOConfig, step: int,
            rank: int = 0, world: int = 1) -> Rollout:
    s = cfg.sampling
    out = Rollout()
    weights = cfg.rewards.weights
    rounds = s.max_sampling_rounds if s.dynamic_sampling else 1
    for rnd in range(rounds):
        need = s.prompts_per_step - out.groups_sampled if not s.dynamic_sampling else \
            s.prompts_per_step - len(out.samples) // s.group_size
        if need <= 0:
            break
        problems = stream.take(need * world)[rank::world]  # same data position on every rank
        prompts = [prompt_formats.build(p, cfg.task.prompt) for p in problems]
        params = SamplingParams(n=s.group_size, temperature=s.temperature, top_p=s.top_p,
                                max_new_tokens=s.max_new_tokens,
                                seed=(cfg.seed * 7919 + step) * 1000 + rnd * 64 + rank)
        t = time.perf_counter()
        outputs = generator.generate(prompts, params)
        out.gen_s += time.perf_counter() - t
        samples = [Sample(p, pr, c) for p, pr, cs in zip(problems, prompts, outputs) for c in cs]
        out.tokens += sum(x.completion.num_tokens for x in samples)
        totals, comps = combine(samples, weights, cfg.rewards.options, task=task)
        out.groups_sampled += len(problems)
        _add_groups(out, samples, totals, comps, cfg)
    if s.dynamic_sampling:  # keep at most prompts_per_step groups
        keep = s.prompts_per_step * s.group_size
        out.samples, out.rewards, out.advantages, out.in_loss = (
            out.samples[:keep], out.rewards[:keep], out.advantages[:keep], out.in_loss[:keep])
        out.components = {k: v[:keep] for k, v in out.components.items()}
    return out


def _add_groups(out: Rollout, samples, totals, comps, cfg: GRPOConfig) -> None:
    s, G = cfg.sampling, cfg.sampling.group_size
    adv_fn = ADVANTAGES.get(cfg.algo.advantage)
    for g in range(len(samples) // G):
        idx = range(g * G, (g + 1) * G)
        group = [samples[i] for i in idx]
        raw = [totals[i] for i in idx]
        valid = [r is not None for r in raw]
        if s.overlong == "mask":
            valid = [v and x.completion.finish_reason != "length" for v, x in zip(valid, group)]
        rewards = [0.0 if r is None else r for r in raw]
        if s.overlong == "soft":
            rewards = [r + s.overlong_penalty * soft_overlong(x.completion.num_tokens, s.max_new_tokens,
                                                              s.overlong_buffer)
                       for r, x in zip(rewards, group)]
        kept = [r for r, v in zip(rewards, valid) if v]
        if s.dynamic_sampling and (len(kept) < 2 or max(kept) == min(kept)):
            for name, vals in comps.items():  # still log what was sampled
                out.components.setdefault(name + "_dropped", []).extend(vals[i] for i in idx)
            continue
        fill = sum(kept) / len(kept) if kept else 0.0  # invalid samples: neutral, and masked
        t = torch.tensor([[r if v else fill for r, v in zip(rewards, valid)]], dtype=torch.float64)
        adv = adv_fn(t)[0].tolist()
        out.samples.extend(group)
        out.rewards.extend(rewards)
        out.advantages.extend(a if v else 0.0 for a, v in zip(adv, valid))
        out.in_loss.extend(valid)
        for name, vals in comps.items():
            out.components.setdefault(name, []).extend(vals[i] for i in idx)
