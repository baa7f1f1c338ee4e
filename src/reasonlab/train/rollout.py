"""One step's experience: sample G completions per prompt, score, compute group advantages.

Includes DAPO's dynamic sampling and overlong handling (``mask``: truncated completions leave the
loss; ``soft``: DAPO eq. 13 length penalty in the last ``overlong_buffer`` tokens).

Dynamic sampling: groups whose rewards are all equal carry no gradient under group-relative
advantages; they are dropped. Rather than drawing, round after round, only the groups still
missing (each round a smaller batch with its own prefill), ``collect`` over-provisions: round 1 draws enough
groups for ``prompts_per_step`` informative ones at the running keep rate (``groups_to_draw``:
the fewest that suffice 4 times in 5 by the binomial tail, at most ``oversample_max`` times the
groups needed), in one ``generate`` call; a further round, sized the same way, runs only when that
fell short, up to ``max_sampling_rounds``. The keep rate is an exponential average over steps
(``blend``, from ``keep_rate_prior``), returned in ``Rollout.keep_rate`` for the trainer to pass
to the next step and to checkpoint with the data position, so a resumed run draws exactly what an
uninterrupted one does. Informative groups beyond ``prompts_per_step`` are dropped, keeping the
first ones in draw order (the stream's shuffled order), so which ones stay is not biased by their
rewards or lengths.

Several ranks: each takes the same positions (``stream.take(n * world)[rank::world]``) and the
round sizes and the keep rate come from every rank's informative counts (``gather``, e.g.
``rank_counts(accelerator)``), so all ranks draw, and advance the data position, alike.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from reasonlab import prompts as prompt_formats
from reasonlab.algos import ADVANTAGES
from reasonlab.rewards import combine
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.types import Problem, Sample, SamplingParams

KEEP_RATE_WEIGHT = 0.5  # weight of the newest step in the running keep rate
SUFFICE = 0.8  # a round is sized to hold the informative groups still needed with this chance


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
    groups_sampled: int = 0  # groups drawn on this rank, all rounds
    groups_informative: int = 0  # of those, kept before the cut to prompts_per_step (all without dynamic sampling)
    rounds: int = 0  # generate calls
    keep_rate: float = 0.0  # the running keep rate after this step (dynamic sampling), for the next
    gen_s: float = 0.0
    tokens: int = 0  # completion tokens sampled, all rounds
    prompt_tokens: int = 0  # prompt tokens prefilled (each drawn prompt once), all rounds
    group_correct: list[tuple[int, int]] = field(default_factory=list)  # (scored, correct) per drawn group


def soft_overlong(length: int, max_len: int, buffer: int) -> float:
    """DAPO eq. 13: 0 up to max_len - buffer, then linear down to -1 at max_len."""
    start = max_len - buffer
    if length <= start:
        return 0.0
    return max(-1.0, (start - length) / max(1, buffer))


def groups_to_draw(need: int, rate: float, cap: float) -> int:
    """Groups to draw for ``need`` informative ones when each is informative with probability
    ``rate``: the fewest n, between ``need`` and ``ceil(cap * need)``, whose draw holds ``need``
    informative groups with probability >= ``SUFFICE`` (binomial tail)."""
    top = max(need, math.ceil(cap * need - 1e-9))
    return next((n for n in range(need, top) if _at_least(need, n, rate) >= SUFFICE), top)


def _at_least(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) >= k)."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def blend(prev: float, informative: int, drawn: int) -> float:
    """The running keep rate after a step that found ``informative`` of ``drawn`` groups."""
    if drawn <= 0:
        return prev
    return (1 - KEEP_RATE_WEIGHT) * prev + KEEP_RATE_WEIGHT * informative / drawn


def rank_counts(acc) -> Callable[[int], list[int]]:
    """``collect``'s ``gather`` under accelerate: every process's count, in rank order."""
    return lambda n: [int(x) for x in acc.gather(torch.tensor([n], device=acc.device)).tolist()]


def collect(generator, task, stream: ProblemStream, cfg: GRPOConfig, step: int,
            rank: int = 0, world: int = 1, keep_rate: float | None = None,
            gather: Callable[[int], list[int]] | None = None) -> Rollout:
    """Sample, score and keep one step's groups (the module docstring describes the rounds).

    ``keep_rate``: the previous step's ``Rollout.keep_rate`` (None: ``sampling.keep_rate_prior``);
    ``gather(n)``: every rank's ``n`` (default: this rank's alone, for one process)."""
    s = cfg.sampling
    gather = gather or (lambda n: [n])
    prior = s.keep_rate_prior if keep_rate is None else keep_rate
    out = Rollout(keep_rate=prior)
    counts = [0]  # informative groups so far, per rank
    for rnd in range(s.max_sampling_rounds if s.dynamic_sampling else 1):
        short = s.prompts_per_step - min(counts)  # the rank that lacks most sets the round for all
        if short <= 0:
            break
        n = groups_to_draw(short, out.keep_rate, s.oversample_max) if s.dynamic_sampling else short
        problems = stream.take(n * world)[rank::world]  # same data position on every rank
        out.groups_informative += _sample_round(generator, task, problems, cfg, step, rnd, rank, out)
        if s.dynamic_sampling:
            counts = gather(out.groups_informative)
            out.keep_rate = blend(prior, sum(counts), out.groups_sampled * world)
    if s.dynamic_sampling:  # keep at most prompts_per_step groups, the first ones drawn
        keep = s.prompts_per_step * s.group_size
        out.samples, out.rewards, out.advantages, out.in_loss = (
            out.samples[:keep], out.rewards[:keep], out.advantages[:keep], out.in_loss[:keep])
        out.components = {k: v[:keep] for k, v in out.components.items()}
    return out


def _sample_round(generator, task, problems: list[Problem], cfg: GRPOConfig, step: int, rnd: int,
                  rank: int, out: Rollout) -> int:
    """One ``generate`` call for ``problems``, scored into ``out``; returns the informative groups."""
    s = cfg.sampling
    prompts = [prompt_formats.build(p, cfg.task.prompt) for p in problems]
    params = SamplingParams(n=s.group_size, temperature=s.temperature, top_p=s.top_p,
                            max_new_tokens=s.max_new_tokens,
                            seed=(cfg.seed * 7919 + step) * 1000 + rnd * 64 + rank)
    t = time.perf_counter()
    outputs = generator.generate(prompts, params)
    out.gen_s += time.perf_counter() - t
    samples = [Sample(p, pr, c) for p, pr, cs in zip(problems, prompts, outputs) for c in cs]
    out.tokens += sum(x.completion.num_tokens for x in samples)
    out.prompt_tokens += sum(len(cs[0].prompt_token_ids) for cs in outputs if cs)
    totals, comps = combine(samples, cfg.rewards.weights, cfg.rewards.options, task=task)
    out.groups_sampled += len(problems)
    out.rounds += 1
    return _add_groups(out, samples, totals, comps, cfg)


def _add_groups(out: Rollout, samples, totals, comps, cfg: GRPOConfig) -> int:
    """Add the groups to ``out`` (flat ones only to the ``_dropped`` components under dynamic
    sampling); returns how many were added."""
    s, G = cfg.sampling, cfg.sampling.group_size
    added = 0
    adv_fn = ADVANTAGES.get(cfg.algo.advantage)
    for g in range(len(samples) // G):
        idx = range(g * G, (g + 1) * G)
        group = [samples[i] for i in idx]
        if "accuracy" in comps:  # every drawn group, kept or not: the train pass@k
            acc = [comps["accuracy"][i] for i in idx if comps["accuracy"][i] is not None]
            out.group_correct.append((len(acc), sum(a >= 1.0 for a in acc)))
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
        added += 1
    return added
