"""GRPO trainer (Shao et al. 2024) with the Dr. GRPO and DAPO fixes, on accelerate.

One step: sample G completions for each of ``prompts_per_step`` prompts with the project's own
sampler (``HFGenerator``, bf16, shared prefill), score with rule-based rewards, compute group
advantages (``algos.advantages``), then ``mu`` policy updates with the clipped loss
(``algos.losses``), gradient-accumulated over micro-batches whose normaliser is the whole
batch's. Under ``accelerate launch`` each process samples its share of the prompts and
accelerate reduces gradients (DDP/FSDP/DeepSpeed); nothing here is a home-made distributed layer.

Departures from TRL's GRPOTrainer: completions are sampled by our sampler from a bf16 copy
of the weights refreshed after every optimizer step (exactly on-policy up to bf16 rounding);
with ``mu == 1`` no extra forward computes old log-probs (old = detached current, ratio 1).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from reasonlab import models
from reasonlab.algos import AGGREGATIONS, KL_ESTIMATORS, clipped_policy_loss
from reasonlab.algos.losses import BatchNorm
from reasonlab.backends.hf import HFGenerator
from reasonlab.config import dump_yaml, to_dict
from reasonlab.eval.metrics import r1_format_ok
from reasonlab.eval.progress import progress_bar
from reasonlab.tasks.base import get_task
from reasonlab.train import checkpoint as ckpt
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.train.policy import plan_micro_batches, shared_prefix_logprobs
from reasonlab.train.rollout import ProblemStream, Rollout, collect
from reasonlab.train.signals import reflection_rate


class GRPOTrainer:
    def __init__(self, cfg: GRPOConfig, out_dir: str | Path, model=None, tokenizer=None):
        from accelerate import Accelerator

        self.cfg, self.out = cfg, Path(out_dir)
        self.acc = Accelerator(cpu=not torch.cuda.is_available())
        torch.manual_seed(cfg.seed)
        self.dtype = models.resolve_dtype(cfg.dtype, self.acc.device.type)
        if model is None:
            model, tokenizer = models.load(cfg.model, dtype="fp32", device=str(self.acc.device))
        self.tokenizer = models.prepare_tokenizer(tokenizer)
        self.ref = None
        if cfg.algo.beta > 0:  # frozen copy of the initial policy, only when the KL term is on
            import copy

            self.ref = copy.deepcopy(model).to(self.dtype).eval().requires_grad_(False)
        if cfg.lora is not None:
            model = models.attach_lora(model, cfg.lora)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                betas=tuple(cfg.optim.betas))
        warm = max(1, cfg.optim.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
        self.model, self.opt, self.sched = self.acc.prepare(model, opt, sched)
        self.sampler = HFGenerator(models.unwrap(self.model), self.tokenizer, dtype=self.dtype)
        self.task = get_task(cfg.task.name, **cfg.task.options)
        self.stream = ProblemStream(self.task.load(cfg.task.split), cfg.seed)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.tb = None

    # ---- persistence -------------------------------------------------------------------
    def resume_if_possible(self) -> bool:
        last = ckpt.latest_checkpoint(self.out / "checkpoints")
        if last is None:
            return False
        state = ckpt.load_state(last)
        inner = models.unwrap(self.model)
        if "trainable" in state:  # LoRA: adapter weights
            inner.load_state_dict(state["trainable"], strict=False)
        else:
            from safetensors.torch import load_file

            weights = {}
            for f in sorted(last.glob("*.safetensors")):
                weights.update(load_file(f))
            missing, unexpected = inner.load_state_dict(weights, strict=False)
            if unexpected or [m for m in missing if "lm_head" not in m]:
                raise RuntimeError(f"{last}: checkpoint does not match the model "
                                   f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        self.step, self.stream.pos = state["step"], state["data_pos"]
        self.history = state.get("history", [])
        self._rewrite_metrics()  # drop lines logged after this checkpoint (a killed run's tail)
        self.sampler.sync_weights()
        return True

    def save(self) -> None:
        if not self.acc.is_main_process:
            return
        inner = models.unwrap(self.model)
        state = {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                 "rng": ckpt.rng_state(), "step": self.step, "data_pos": self.stream.pos,
                 "history": self.history, "config": to_dict(self.cfg)}
        if self.cfg.lora is not None:
            state["trainable"] = {k: v for k, v in inner.state_dict().items() if "lora_" in k}
        ckpt.save_checkpoint(self.out / "checkpoints", self.step, inner, self.tokenizer, state,
                             self.cfg.keep_last)

    def _rewrite_metrics(self) -> None:
        if self.acc.is_main_process:
            path = self.out / "metrics.jsonl"
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(h) + "\n" for h in self.history))
            tmp.replace(path)

    # ---- training ----------------------------------------------------------------------
    def train(self, progress: bool = True) -> list[dict[str, Any]]:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        if self.acc.is_main_process:
            dump_yaml(cfg, self.out / "config.yaml")
            self._open_tensorboard()
        with progress_bar(progress and self.acc.is_main_process) as bar:
            job = bar.add_task("grpo", total=cfg.steps, completed=self.step)
            while self.step < cfg.steps:
                metrics = self.train_step()
                bar.advance(job)
                bar.update(job, description=f"grpo reward {_fmt(metrics['reward'])} acc {_fmt(metrics['accuracy'])}")
                if cfg.save_every and (self.step % cfg.save_every == 0 or self.step == cfg.steps):
                    self.save()
        if self.tb is not None:
            self.tb.close()
        return self.history

    def train_step(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        roll = collect(self.sampler, self.task, self.stream, self.cfg, self.step,
                       self.acc.process_index, self.acc.num_processes)
        t1 = time.perf_counter()
        stats = self.update(roll)
        self.sampler.sync_weights()
        self.step += 1
        metrics = self._metrics(roll, stats, t0, t1)
        self.history.append(metrics)
        self._log(metrics, roll)
        return metrics

    def update(self, roll: Rollout) -> dict[str, float]:
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
                ctx = acc.no_sync(self.model) if not last else _null()
                with ctx:
                    if j < len(batches):
                        logp, ent, mask = self._logprobs(self.model, batches[j], with_entropy=True)
                        adv = batches[j][2]
                        old_lp = old[j] if old[j] is not None else logp.detach()
                        tok_loss, clipped = clipped_policy_loss(logp, old_lp, adv.to(acc.device),
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
            grad_norm = acc.clip_grad_norm_(self.model.parameters(), cfg.optim.max_grad_norm) \
                if cfg.optim.max_grad_norm > 0 else torch.tensor(0.0)
            self.opt.step()
            self.sched.step()
            self.opt.zero_grad(set_to_none=True)
        t = max(sums["tokens"], 1.0)
        return {"loss": sums["loss"] / cfg.algo.mu, "clip_frac": sums["clip"] / t / cfg.algo.mu,
                "entropy": sums["entropy"] / t / cfg.algo.mu, "kl": sums["kl"] / t / cfg.algo.mu,
                "grad_norm": float(grad_norm), "loss_tokens": int(tokens), "loss_seqs": len(idx)}

    def _batch(self, roll: Rollout, chunk: list[int]):
        samples = [roll.samples[i] for i in chunk]
        return ([s.completion.prompt_token_ids for s in samples], [s.completion.token_ids for s in samples],
                torch.tensor([roll.advantages[i] for i in chunk], dtype=torch.float32))

    def _logprobs(self, model, batch, with_entropy: bool = False):
        prompts, completions, _ = batch
        return shared_prefix_logprobs(model, prompts, completions, self.tokenizer.pad_token_id,
                                      self.dtype, with_entropy)

    # ---- metrics -----------------------------------------------------------------------
    def _metrics(self, roll: Rollout, stats: dict[str, float], t0: float, t1: float) -> dict[str, Any]:
        texts = [s.text for s in roll.samples]
        lens = [s.completion.num_tokens for s in roll.samples]
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
        m: dict[str, Any] = {"step": self.step}
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
        m["lr"] = self.sched.get_last_lr()[0]
        now = time.perf_counter()
        m["gen_s"], m["train_s"], m["step_s"] = roll.gen_s, now - t1, now - t0
        m["gen_tokens_per_s"] = roll.tokens / roll.gen_s if roll.gen_s else 0.0
        return {k: (round(v, 5) if isinstance(v, float) and math.isfinite(v) else
                    (None if isinstance(v, float) else v)) for k, v in m.items()}

    def _open_tensorboard(self) -> None:
        if not self.cfg.tensorboard:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.tb = SummaryWriter(str(self.out / "tb"))

    def _log(self, metrics: dict[str, Any], roll: Rollout) -> None:
        if not self.acc.is_main_process:
            return
        with (self.out / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(metrics) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(k, v, metrics["step"])
        with (self.out / "samples.jsonl").open("a") as f:
            for s, r in list(zip(roll.samples, roll.rewards))[: self.cfg.log_samples]:
                f.write(json.dumps({"step": metrics["step"], "problem_id": s.problem.id,
                                    "completion": s.text, "reward": r}) + "\n")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
