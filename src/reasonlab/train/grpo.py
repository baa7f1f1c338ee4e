"""GRPO trainer (Shao et al. 2024) with the Dr. GRPO and DAPO fixes, on accelerate.

One step: sample G completions for each of ``prompts_per_step`` prompts with the project's own
sampler (the ``hf`` backend by default, ``vllm`` on a GPU; built through the backend registry), score with rule-based rewards, compute group
advantages (``algos.advantages``), then ``mu`` policy updates with the clipped loss
(``algos.losses``), gradient-accumulated over micro-batches whose normaliser is the whole
batch's. The loop, checkpoints and resume are the training core's (``train/core.py``); this
file is only the step. Under ``accelerate launch`` each process samples its share of the prompts and
accelerate reduces gradients (DDP/FSDP/DeepSpeed); nothing here is a home-made distributed layer.

Departures from TRL's GRPOTrainer: completions are sampled by our sampler from a bf16 copy
of the weights refreshed after every optimizer step (exactly on-policy up to bf16 rounding);
with ``mu == 1`` no extra forward computes old log-probs (old = detached current, ratio 1).
"""

from __future__ import annotations

from contextlib import nullcontext
import time
from typing import Any

import torch

from reasonlab import models
from reasonlab.algos import AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES
from reasonlab.algos.losses import BatchNorm
from reasonlab.backends.factory import make_backend
from reasonlab.eval.metrics import r1_format_ok
from reasonlab.io import append_jsonl
from reasonlab.tasks.base import get_task
from reasonlab.train.core import Trainer
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.train.policy import plan_micro_batches, shared_prefix_logprobs
from reasonlab.train.rollout import ProblemStream, Rollout, collect
from reasonlab.train.signals import reflection_rate


class GRPOTrainer(Trainer):
    kind = "grpo"

    def __init__(self, cfg: GRPOConfig, out_dir, model=None, tokenizer=None):
        super().__init__(cfg, out_dir, model, tokenizer, prompt_format=cfg.task.prompt)
        model = self.base_model
        self.ref = None
        if cfg.algo.beta > 0:  # frozen copy of the initial policy, only when the KL term is on
            import copy

            self.ref = copy.deepcopy(model).to(self.dtype).eval().requires_grad_(False)
        self.setup_optimizer(model)
        self.sampler = make_backend(cfg.backend.name, cfg.model, live_model=models.unwrap(self.model),
                                    tokenizer=self.tokenizer, dtype=self.dtype, **cfg.backend.options)
        self.task = get_task(cfg.task.name, **cfg.task.options)
        self.stream = ProblemStream(self.task.load(cfg.task.split), cfg.seed)

    def data_state(self) -> dict[str, Any]:
        return {"pos": self.stream.pos}

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.stream.pos = state["pos"]

    def on_resumed(self) -> None:
        self.sampler.sync_weights()

    def describe(self, m: dict[str, Any]) -> str:
        return f"grpo reward {_fmt(m.get('reward'))} acc {_fmt(m.get('accuracy'))}"

    def update(self) -> dict[str, Any]:
        """One GRPO step: sample and score a batch, then ``mu`` policy updates on it."""
        roll = collect(self.sampler, self.task, self.stream, self.cfg, self.step,
                       self.acc.process_index, self.acc.num_processes)
        t1 = time.perf_counter()
        stats = self.policy_update(roll)
        self.sampler.sync_weights()
        metrics = self._metrics(roll, stats, t1)
        self._log_samples(roll)
        return metrics

    def policy_update(self, roll: Rollout) -> dict[str, float]:
        cfg, acc = self.cfg, self.acc
        idx = [i for i, keep in enumerate(roll.in_loss) if keep]
        # micro-batches that share prompts and/or have similar lengths (cheapest of both)
        plan = plan_micro_batches([roll.samples[i].completion.prompt_token_ids for i in idx],
                                  [roll.samples[i].completion.num_tokens for i in idx], cfg.optim.micro_batch)
        chunks = [[idx[j] for j in c] for c in plan]
        n_chunks = int(acc.gather(torch.tensor([len(chunks)], device=acc.device)).max())
        tokens = sum(roll.samples[i].completion.num_tokens for i in idx)
        totals = acc.gather(torch.tensor([float(tokens), float(len(idx))], device=acc.device)).view(-1, 2).sum(0)
        norm = BatchNorm(tokens=float(totals[0]), sequences=float(totals[1]), max_len=cfg.sampling.max_new_tokens)
        agg = AGGREGATIONS.get(cfg.algo.loss_agg)
        policy_loss = POLICY_LOSSES.get(cfg.algo.loss)
        kl_fn = KL_ESTIMATORS.get(cfg.algo.kl)
        batches = [self._batch(roll, c) for c in chunks]
        old = [None] * len(batches)
        if cfg.algo.mu > 1:  # importance ratios need the pre-update log-probs
            with torch.no_grad():
                old = [self._logprobs(self.model, b)[0] for b in batches]
        ref = [None] * len(batches)
        if self.ref is not None:
            with torch.no_grad():
                ref = [self._logprobs(self.ref, b)[0] for b in batches]
        sums = {"loss": 0.0, "clip": 0.0, "kl": 0.0, "entropy": 0.0, "tokens": 0.0}
        for _ in range(cfg.algo.mu):
            for j in range(n_chunks):
                last = j == n_chunks - 1
                ctx = acc.no_sync(self.model) if not last else nullcontext()
                with ctx:
                    if j < len(batches):
                        logp, ent, mask = self._logprobs(self.model, batches[j], with_entropy=True)
                        adv = batches[j][2]
                        old_lp = old[j] if old[j] is not None else logp.detach()
                        tok_loss, clipped = policy_loss(logp, old_lp, adv.to(acc.device),
                                                                cfg.algo.clip_low, cfg.algo.clip_high)
                        if ref[j] is not None:
                            kl = kl_fn(logp, ref[j])
                            tok_loss = tok_loss + cfg.algo.beta * kl
                            sums["kl"] += float((kl.detach() * mask).sum())
                        loss = agg(tok_loss, mask, norm) * acc.num_processes
                        sums["loss"] += float(loss.detach()) / acc.num_processes
                        sums["clip"] += float((clipped * mask).sum())
                        sums["entropy"] += float((ent * mask).sum())
                        sums["tokens"] += float(mask.sum())
                    else:  # this process has fewer micro-batches: join the gradient sync
                        loss = sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
                    acc.backward(loss)
            grad_norm = self.optimizer_step()
        t = max(sums["tokens"], 1.0)
        return {"loss": sums["loss"] / cfg.algo.mu, "clip_frac": sums["clip"] / t / cfg.algo.mu,
                "entropy": sums["entropy"] / t / cfg.algo.mu, "kl": sums["kl"] / t / cfg.algo.mu,
                "grad_norm": grad_norm, "loss_tokens": int(tokens), "loss_seqs": len(idx)}

    def _batch(self, roll: Rollout, chunk: list[int]):
        samples = [roll.samples[i] for i in chunk]
        return ([s.completion.prompt_token_ids for s in samples], [s.completion.token_ids for s in samples],
                torch.tensor([roll.advantages[i] for i in chunk], dtype=torch.float32))

    def _logprobs(self, model, batch, with_entropy: bool = False):
        prompts, completions, _ = batch
        return shared_prefix_logprobs(model, prompts, completions, self.tokenizer.pad_token_id,
                                      self.dtype, with_entropy)

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
        m["format_rate"] = mean([float(r1_format_ok(t)) for t in texts])
        m["response_length"] = mean(lens)
        m["reflection_rate"] = reflection_rate(texts)
        m["truncated_rate"] = mean([float(s.completion.finish_reason == "length") for s in roll.samples])
        m["groups_sampled"] = roll.groups_sampled
        m["groups_kept"] = len(roll.samples) // self.cfg.sampling.group_size
        m.update(stats)
        m["gen_s"], m["train_s"] = roll.gen_s, time.perf_counter() - t1
        m["gen_tokens_per_s"] = roll.tokens / roll.gen_s if roll.gen_s else 0.0
        return m

    def _log_samples(self, roll: Rollout) -> None:
        if self.acc.is_main_process and self.cfg.log_samples:
            append_jsonl(self.out / "samples.jsonl", [
                {"step": self.step + 1, "problem_id": s.problem.id, "completion": s.text, "reward": r}
                for s, r in list(zip(roll.samples, roll.rewards))[: self.cfg.log_samples]])


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"

