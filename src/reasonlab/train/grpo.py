"""GRPO trainer (Shao et al. 2024) with the Dr. GRPO and DAPO fixes, on accelerate.

One step: sample G completions for each of ``prompts_per_step`` prompts with the project's own
sampler (the ``hf`` backend by default, or vLLM's engine in this process, ``backend: {name: vllm}``,
which, like ``hf``, loads the weights ``models.full_weights`` publishes after every step; built
through the backend registry),
score with rule-based rewards, compute group advantages (``algos.advantages``), then ``mu``
policy updates with the registered policy loss (``algos.losses``), each token's loss weighted
by the importance-sampling correction (``algos.correction``), gradient-accumulated over
micro-batches whose normaliser is the whole batch's (``Trainer.accumulate``). The loop,
checkpoints and resume are the training core's (``train/core.py``); this file is only the step.
Under ``accelerate launch`` each process samples ``prompts_per_step`` prompts of its own and
accelerate reduces gradients (DDP, DeepSpeed ZeRO-1/2; FSDP and ZeRO-3 are refused,
``refuse_sharded``); nothing here is a home-made distributed layer.

Departures from TRL's GRPOTrainer: completions are sampled by our sampler from a bf16 copy
of the weights refreshed after every optimizer step (exactly on-policy up to bf16 rounding);
with ``mu == 1`` no extra forward computes old log-probs (old = detached current, ratio 1).
Every step logs ``sampler_logprob_diff`` (and its max): the mean |log pi_sampler - log
pi_trainer| over the loss's tokens, before the update, from the backend's ``Completion.logprobs``
(None when it has none): near 0 for ``hf`` in fp32, the off-policy gap TIS corrects for vLLM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from reasonlab import models
from reasonlab.algos import AGGREGATIONS, IS_CORRECTIONS, KL_ESTIMATORS, POLICY_LOSSES
from reasonlab.algos.losses import BatchNorm
from reasonlab.backends.factory import make_backend
from reasonlab.config import ConfigError
from reasonlab.eval.metrics import pass_at_k, r1_format_ok, well_formed
from reasonlab.io import append_jsonl
from reasonlab.tasks.base import get_task
from reasonlab.traces.select import keep_in_band
from reasonlab.train.core import Trainer
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.train.policy import plan_micro_batches, shared_prefix_logprobs
from reasonlab.train.rollout import ProblemStream, Rollout, collect, rank_counts
from reasonlab.train.signals import reflection_rate
from reasonlab.tensors import pad


def refuse_sharded(distributed_type, deepspeed_plugin, backend: str) -> None:
    """One line instead of sampling garbage: under FSDP or ZeRO-3 each process holds a shard of
    every weight, and the publisher every sampler loads from (``models.full_weights``, which
    does not gather shards yet) would hand over the shards as if they were the model."""
    from accelerate.utils import DistributedType

    sharded = distributed_type == DistributedType.FSDP or (
        distributed_type == DistributedType.DEEPSPEED and getattr(deepspeed_plugin, "zero_stage", 0) == 3)
    if sharded:
        raise ConfigError(f"FSDP / ZeRO-3 sharded training is not supported with the {backend} sampler yet "
                          f"(it would sample from weight shards); use DDP (`accelerate launch --multi_gpu`) "
                          f"or ZeRO-1/2")


@dataclass
class MicroBatch:
    prompts: list[tuple[int, ...]]
    completions: list[tuple[int, ...]]
    advantages: torch.Tensor  # (B,)
    sampler_logp: torch.Tensor | None  # (B, C) Completion.logprobs; None unless every row has them


class GRPOTrainer(Trainer):
    kind = "grpo"

    def __init__(self, cfg: GRPOConfig, out_dir, model=None, tokenizer=None):
        super().__init__(cfg, out_dir, model, tokenizer, prompt_format=cfg.task.prompt)
        refuse_sharded(self.acc.distributed_type, self.acc.deepspeed_plugin, cfg.backend.name)
        model = self.base_model
        self.ref = None
        if cfg.algo.beta > 0:  # frozen copy of the initial policy, only when the KL term is on
            import copy

            self.ref = copy.deepcopy(model).to(self.dtype).eval().requires_grad_(False)
        self.setup_optimizer(model)
        self.sampler = make_backend(cfg.backend.name, cfg.model, live_model=models.unwrap(self.model),
                                    weights=lambda: models.full_weights(self.model),
                                    tokenizer=self.tokenizer, dtype=self.dtype, **cfg.backend.options)
        self.sampler.sync_weights()  # an engine that loaded cfg.model from disk starts from our weights
        self.task = get_task(cfg.task.name, **cfg.task.options)
        problems = self.task.load(cfg.task.split)
        if cfg.difficulty.problems is not None:
            problems = keep_in_band(problems, cfg.difficulty.problems, cfg.difficulty.band)
            self.acc.print(f"difficulty: {len(problems)} prompts with a pass rate in "
                           f"{list(cfg.difficulty.band)} ({cfg.difficulty.problems})")
        self.stream = ProblemStream(problems, cfg.seed)
        self.keep_rate = cfg.sampling.keep_rate_prior  # dynamic sampling's running estimate (rollout.py)
        self.policy_loss = POLICY_LOSSES.get(cfg.algo.loss)
        self.agg = AGGREGATIONS.get(cfg.algo.loss_agg)
        self.kl_fn = KL_ESTIMATORS.get(cfg.algo.kl)
        self.correction = IS_CORRECTIONS.get(cfg.correction_name())

    def data_state(self) -> dict[str, Any]:
        return {"pos": self.stream.pos, "keep_rate": self.keep_rate}

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.stream.pos = state["pos"]
        self.keep_rate = state.get("keep_rate", self.cfg.sampling.keep_rate_prior)  # older checkpoints: prior

    def on_resumed(self) -> None:
        self.sampler.sync_weights()

    def describe(self, m: dict[str, Any]) -> str:
        return f"grpo reward {_fmt(m.get('reward'))} acc {_fmt(m.get('accuracy'))}"

    def update(self) -> dict[str, Any]:
        """One GRPO step: sample and score a batch, then ``mu`` policy updates on it."""
        roll = collect(self.sampler, self.task, self.stream, self.cfg, self.step,
                       self.acc.process_index, self.acc.num_processes, self.keep_rate, rank_counts(self.acc))
        self.keep_rate = roll.keep_rate
        t1 = time.perf_counter()
        stats = self.policy_update(roll)
        self.sampler.sync_weights()
        metrics = self._metrics(roll, stats, t1)
        self._log_samples(roll)
        return metrics

    def policy_update(self, roll: Rollout) -> dict[str, float]:
        cfg, mu = self.cfg, self.cfg.algo.mu
        idx = [i for i, keep in enumerate(roll.in_loss) if keep]
        # micro-batches that share prompts and/or have similar lengths (cheapest of both)
        plan = plan_micro_batches([roll.samples[i].completion.prompt_token_ids for i in idx],
                                  [roll.samples[i].completion.num_tokens for i in idx], cfg.optim.micro_batch)
        batches = [self._batch(roll, [idx[j] for j in c]) for c in plan]
        tokens = sum(roll.samples[i].completion.num_tokens for i in idx)
        totals = self.world_sum(loss_tokens=tokens, loss_seqs=len(idx))  # every process's
        norm = BatchNorm(tokens=float(totals["loss_tokens"]), sequences=float(totals["loss_seqs"]),
                         max_len=cfg.sampling.max_new_tokens)
        old = [None] * len(batches)
        if mu > 1:  # importance ratios need the pre-update log-probs
            with torch.no_grad():
                old = [self._logprobs(self.model, b)[0] for b in batches]
        ref = [None] * len(batches)
        if self.ref is not None:
            with torch.no_grad():
                ref = [self._logprobs(self.ref, b)[0] for b in batches]
        sums = dict.fromkeys(("loss", "clip", "kl", "entropy", "tokens", "gap", "gap_tokens", "gap_max"), 0.0)
        for k in range(mu):
            self.accumulate(len(batches), lambda j: self._loss(batches[j], old[j], ref[j], norm, sums, k == 0))
            grad_norm = self.optimizer_step(advance_schedule=k == mu - 1)
        t, gap_t = max(sums["tokens"], 1.0), sums["gap_tokens"]  # t: tokens of all mu passes
        return {"loss": sums["loss"] / mu, "clip_frac": sums["clip"] / t,
                "entropy": sums["entropy"] / t, "kl": sums["kl"] / t,
                "sampler_logprob_diff": sums["gap"] / gap_t if gap_t else float("nan"),
                "sampler_logprob_diff_max": sums["gap_max"] if gap_t else float("nan"),
                "grad_norm": grad_norm, **totals}

    def _loss(self, b: MicroBatch, old_lp, ref_lp, norm: BatchNorm, sums: dict[str, float], first: bool):
        """One micro-batch's share of the loss; adds its statistics to ``sums``. On the first of
        the ``mu`` passes (weights not yet updated) it also measures the sampler/trainer gap,
        |log pi_sampler - log pi_trainer| per token, at no extra forward."""
        a = self.cfg.algo
        logp, ent, mask = self._logprobs(self.model, b, with_entropy=True)
        old_lp = logp.detach() if old_lp is None else old_lp
        sampler_lp = None if b.sampler_logp is None else b.sampler_logp.to(logp.device)
        tok_loss, clipped = self.policy_loss(logp, old_lp, b.advantages.to(logp.device), mask,
                                             a.clip_low, a.clip_high)
        tok_loss = tok_loss * self.correction(old_lp, sampler_lp, a.tis_cap)
        if ref_lp is not None:
            kl = self.kl_fn(logp, ref_lp)
            tok_loss = tok_loss + a.beta * kl
            sums["kl"] += float((kl.detach() * mask).sum())
        loss = self.agg(tok_loss, mask, norm)
        sums["loss"] += float(loss.detach())
        sums["clip"] += float((clipped * mask).sum())
        sums["entropy"] += float((ent * mask).sum())
        sums["tokens"] += float(mask.sum())
        if first and sampler_lp is not None:
            gap = (sampler_lp - logp.detach()).abs() * mask
            sums["gap"] += float(gap.sum())
            sums["gap_tokens"] += float(mask.sum())
            sums["gap_max"] = max(sums["gap_max"], float(gap.max()))
        return loss

    def _batch(self, roll: Rollout, chunk: list[int]) -> MicroBatch:
        comps = [roll.samples[i].completion for i in chunk]
        lps = [c.logprobs for c in comps]
        sampler = None
        if all(lp is not None for lp in lps):
            # the extra row keeps C >= 1, as in policy.shared_prefix_logprobs
            sampler = pad([list(lp) for lp in lps] + [[0.0]], 0, value_dtype=torch.float32)[0][:-1]
        return MicroBatch([c.prompt_token_ids for c in comps], [c.token_ids for c in comps],
                          torch.tensor([roll.advantages[i] for i in chunk], dtype=torch.float32), sampler)

    def _logprobs(self, model, b: MicroBatch, with_entropy: bool = False):
        """Scored at the sampling temperature (``train/policy.py`` says why)."""
        return shared_prefix_logprobs(model, b.prompts, b.completions, self.tokenizer.pad_token_id,
                                      self.dtype, with_entropy, self.cfg.sampling.temperature)

    # ---- metrics -----------------------------------------------------------------------
    def _metrics(self, roll: Rollout, stats: dict[str, float], t1: float) -> dict[str, Any]:
        texts = [s.text for s in roll.samples]
        lens = [s.completion.num_tokens for s in roll.samples]
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
        m: dict[str, Any] = {"reward": None}
        m["reward"] = mean(roll.rewards)
        for name, vals in roll.components.items():
            vals = [v for v in vals if v is not None]
            m[f"reward/{name}"] = mean(vals)
        acc_vals = [v for v in roll.components.get("accuracy", []) if v is not None]
        m["accuracy"] = mean(acc_vals) if acc_vals else float("nan")
        m.update(train_pass_at_k(roll.group_correct, self.cfg.sampling.group_size))
        m["format_rate"] = mean([float(r1_format_ok(t)) for t in texts])  # the tag layout alone
        m["nonempty_think_rate"] = mean([float(well_formed(t)) for t in texts])  # what `format` pays
        m["response_length"] = mean(lens)
        m["reflection_rate"] = reflection_rate(texts)
        m["truncated_rate"] = mean([float(s.completion.finish_reason == "length") for s in roll.samples])
        m["groups_informative"], m["sampling_rounds"] = roll.groups_informative, roll.rounds
        m.update(stats)
        m["gen_s"], m["train_s"] = roll.gen_s, time.perf_counter() - t1
        m["gen_tokens_per_s"] = roll.tokens / roll.gen_s if roll.gen_s else 0.0  # this process's
        m.update(self.world_sum(groups_sampled=roll.groups_sampled,  # every process's, for eval/compute.py
                                groups_kept=len(roll.samples) // self.cfg.sampling.group_size,
                                gen_tokens=roll.tokens, prompt_tokens=roll.prompt_tokens))
        return m

    def _log_samples(self, roll: Rollout) -> None:
        if self.acc.is_main_process and self.cfg.log_samples:
            append_jsonl(self.out / "samples.jsonl", [
                {"step": self.step + 1, "problem_id": s.problem.id, "completion": s.text, "reward": r}
                for s, r in list(zip(roll.samples, roll.rewards))[: self.cfg.log_samples]])


def train_pass_at_k(groups: list[tuple[int, int]], G: int) -> dict[str, float]:
    """Unbiased pass@1 and pass@G of this step's samples over *every* drawn group (``accuracy``
    covers only the groups dynamic sampling kept): RL with a verifiable reward should lift pass@1
    toward pass@G, the share of prompts it has some right answer for."""
    scored = [(n, c) for n, c in groups if n > 0]
    if not scored:
        return {}
    ks = sorted({1, G})
    return {f"train_pass@{k}": sum(pass_at_k(n, c, min(k, n)) for n, c in scored) / len(scored) for k in ks}


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"

