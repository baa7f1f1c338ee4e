"""The training core every trainer shares: a new trainer is only its own ``update()``.

One home for what GRPO, SFT and PRM training have in common (nanochat's "one loop, small
scripts" and TRL's Trainer without its 3,000 lines):
- accelerate set-up (DDP/FSDP/DeepSpeed come from ``accelerate launch``; nothing home-made);
- the optimizer (AdamW over trainable parameters) and the schedule (warm-up, then constant,
  linear or cosine decay);
- the step loop with its progress bar, ``metrics.jsonl`` and the experiment trackers of
  ``report_to`` (``train/trackers.py``, through accelerate);
- the run directory: ``config.yaml`` (resolved), checked writable before any work starts;
- checkpoints (``train/checkpoint.py``): plain HF models with a baked chat template, atomic,
  with a manifest; exact resume after ``kill -9`` (weights, optimizer, schedule, RNG, data
  position, metrics tail), falling back past damaged checkpoints.

A subclass provides:
- ``update() -> dict``: one step's work (data, ``accumulate()`` over micro-batches,
  ``optimizer_step()``), returning its metrics;
- ``total_steps``; ``data_state()`` / ``load_data_state(d)`` for the data position;
- optionally ``save_model(dir)`` / ``load_model(dir)`` when the model is not a plain causal LM
  (the PRM's value head), and ``param_groups(model)`` for per-group learning rates.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import torch

from reasonlab import allocator, models
from reasonlab.config import ConfigError, dump_yaml, require, to_dict
from reasonlab.eval.progress import progress_bar
from reasonlab.io import append_jsonl, atomic_write_jsonl, check_writable_dir
from reasonlab.train import checkpoint as ckpt
from reasonlab.train import template, trackers


@dataclass
class OptimConfig:
    lr: float = 1e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: Literal["constant", "linear", "cosine"] = "constant"  # after warm-up
    min_lr_ratio: float = 0.0  # linear/cosine decay down to lr * min_lr_ratio
    max_grad_norm: float = 1.0  # 0 turns clipping off
    micro_batch: int = 16  # sequences per forward/backward
    betas: tuple[float, ...] = (0.9, 0.99)

    def check(self) -> None:
        require(self.lr > 0 and math.isfinite(self.lr), "lr", f"must be a positive number, got {self.lr}")
        require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", f"must be in [0, 1], got {self.min_lr_ratio}")
        require(self.max_grad_norm >= 0, "max_grad_norm", f"must be >= 0, got {self.max_grad_norm}")
        require(self.micro_batch >= 1, "micro_batch", f"must be >= 1, got {self.micro_batch}")
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
                f"must be two numbers in [0, 1), got {list(self.betas)}")


def lr_lambda(cfg: OptimConfig, total_steps: int):
    """Multiplier of the base lr after ``s`` trainer steps: linear warm-up to 1, then the decay.

    ``s`` counts trainer steps (``update()`` calls, ``total_steps`` of them), not optimizer
    updates: GRPO's ``mu`` updates on one batch share their step's lr, so ``warmup_steps`` and
    the decay are in GRPO steps whatever ``mu``, as in SFT and PRM (one update per step)."""
    warm = max(0, cfg.warmup_steps)

    def fn(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        span = max(1, total_steps - warm)
        frac = min(1.0, (s - warm) / span)
        shape = 1 - frac if cfg.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * frac))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * shape

    return fn


def check_common(cfg) -> None:
    """Checks shared by every trainer's config (they all carry these fields)."""
    require(cfg.save_every >= 0, "save_every", f"must be >= 0, got {cfg.save_every}")
    require(cfg.keep_last >= 1, "keep_last", f"must be >= 1, got {cfg.keep_last}")
    trackers.check(cfg.report_to)
    try:
        models.resolve_dtype(cfg.dtype)
    except models.ModelError as exc:
        raise ConfigError(f"dtype: {exc}") from None


class Trainer:
    """Base class; see the module docstring for what a subclass provides."""

    kind = "train"

    def __init__(self, cfg, out_dir: str | Path, model=None, tokenizer=None, prompt_format: str | None = None):
        from accelerate import Accelerator

        allocator.keep_freed_memory()  # large training tensors, no page faults per micro-batch
        self.cfg, self.out = cfg, Path(out_dir)
        # the schedule steps once per trainer step; by default accelerate would step it once per
        # process (it assumes a dataloader whose length shrank with the world size)
        self.acc = Accelerator(cpu=not torch.cuda.is_available(), step_scheduler_with_optimizer=False,
                               log_with=trackers.build(cfg.report_to, self.out) or None,
                               project_dir=str(self.out))
        if self.acc.is_main_process:
            check_writable_dir(self.out)
        torch.manual_seed(cfg.seed)
        self.dtype = models.resolve_dtype(cfg.dtype, self.acc.device.type)
        if model is None:
            model, tokenizer = models.load(cfg.model, dtype="fp32", device=str(self.acc.device))
        self.tokenizer = models.prepare_tokenizer(tokenizer)
        self.prompt_format = prompt_format
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.base_model = model  # before LoRA and accelerate wrap it (GRPO's reference copy)

    def setup_optimizer(self, model) -> None:
        """LoRA (when configured), AdamW over trainable parameters, the schedule, accelerate."""
        cfg = self.cfg
        if getattr(cfg, "lora", None) is not None:
            model = models.attach_lora(model, cfg.lora)
        model.train()
        # fused: one kernel per parameter instead of ~8 passes (0.08 s vs 0.4-0.7 s a step for
        # 135M parameters on a 2-core CPU); transformers' Trainer defaults to it too
        opt = torch.optim.AdamW(self.param_groups(model), lr=cfg.optim.lr,
                                weight_decay=cfg.optim.weight_decay, betas=tuple(cfg.optim.betas),
                                fused=self.acc.device.type in ("cpu", "cuda") or None)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.optim, self.total_steps))
        self.model, self.opt, self.sched = self.acc.prepare(model, opt, sched)

    # ---- what a subclass provides ----------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.cfg.steps

    def update(self) -> dict[str, Any]:
        raise NotImplementedError

    def data_state(self) -> dict[str, Any]:
        return {}

    def load_data_state(self, state: dict[str, Any]) -> None:
        pass

    def param_groups(self, model) -> list[dict]:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]

    def inner_model(self):
        return models.unwrap(self.model)

    def save_model(self, path: Path) -> None:
        """Plain HF model (LoRA merged) whose chat template reproduces the run's prompt format."""
        original = self.tokenizer.chat_template
        try:
            template.apply(self.tokenizer, self.prompt_format)
            models.save(self.inner_model(), self.tokenizer, path)
        finally:
            self.tokenizer.chat_template = original

    def load_model(self, path: Path, state: dict[str, Any]) -> None:
        inner = self.inner_model()
        if "trainable" in state:  # LoRA: the adapter weights
            inner.load_state_dict(state["trainable"], strict=False)
            return
        from safetensors.torch import load_file

        weights = {}
        for f in sorted(path.glob("*.safetensors")):
            weights.update(load_file(f))
        missing, unexpected = inner.load_state_dict(weights, strict=False)
        if unexpected or [m for m in missing if "lm_head" not in m]:
            raise RuntimeError(f"{path}: checkpoint does not match the model "
                               f"(missing {missing[:3]}, unexpected {unexpected[:3]})")

    def on_resumed(self) -> None:
        """Called after a checkpoint is loaded (GRPO refreshes its sampler's weights)."""

    def world_sum(self, **counts: float) -> dict[str, float]:
        """``counts`` summed over every process (one gather; every process must call it): what
        a step processed in all, for the compute counter (``eval/compute.py``) and the logs,
        which rank 0 writes."""
        acc = self.acc
        local = torch.tensor([float(v) for v in counts.values()], dtype=torch.float64, device=acc.device)
        total = acc.gather(local[None]).view(-1, len(counts)).sum(0).tolist()
        return {k: (int(v) if isinstance(counts[k], int) else v) for k, v in zip(counts, total)}

    # ---- the loop --------------------------------------------------------------------------
    def accumulate(self, n_local: int, loss_fn: Callable[[int], torch.Tensor]) -> None:
        """Backward ``loss_fn(j)`` for this process's micro-batches ``j < n_local``; gradients add up.

        ``loss_fn(j)`` is micro-batch j's share of the step's loss, normalised by the WHOLE step
        (every micro-batch on every process), so the summed gradient is the one big batch's; it
        is multiplied by the world size because DDP averages gradients over processes.
        Gradients sync only in the last backward (``no_sync`` before it). A process with fewer
        micro-batches than the busiest one backpropagates a zero loss over every trainable
        parameter for each one it lacks: every process joins every sync, or DDP would hang.
        """
        acc = self.acc
        n = int(acc.gather(torch.tensor([n_local], device=acc.device)).max())
        for j in range(n):
            with acc.no_sync(self.model) if j < n - 1 else nullcontext():
                loss = loss_fn(j) if j < n_local else \
                    sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
                acc.backward(loss * acc.num_processes)

    def optimizer_step(self, advance_schedule: bool = True) -> float:
        """Clip, step, zero, and (unless told not to) advance the schedule one trainer step;
        returns the gradient norm before clipping. GRPO with ``mu`` > 1 advances it on its last
        update only (``lr_lambda`` counts trainer steps)."""
        max_norm = self.cfg.optim.max_grad_norm
        grad_norm = self.acc.clip_grad_norm_(self.model.parameters(), max_norm) if max_norm > 0 else None
        self.opt.step()
        if advance_schedule:
            self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return float(grad_norm) if grad_norm is not None else 0.0

    def train_step(self) -> dict[str, Any]:
        """One optimizer step of the subclass's ``update()``, logged."""
        t0 = time.perf_counter()
        metrics = self.update()
        self.step += 1
        metrics = _clean({"step": self.step, **metrics, "lr": self.sched.get_last_lr()[0],
                          "step_s": time.perf_counter() - t0})
        self.history.append(metrics)
        self.log(metrics)
        return metrics

    def train(self, progress: bool = True) -> list[dict[str, Any]]:
        if self.acc.is_main_process:
            dump_yaml(self.cfg, self.out / "config.yaml")
        if self.acc.log_with:  # the resolved config, once per run
            self.acc.init_trackers(trackers.PROJECT, config=trackers.flat_config(to_dict(self.cfg)))
        with progress_bar(progress and self.acc.is_main_process) as bar:
            job = bar.add_task(self.kind, total=self.total_steps, completed=self.step)
            while self.step < self.total_steps:
                metrics = self.train_step()
                bar.advance(job)
                bar.update(job, description=self.describe(metrics))
                every = self.cfg.save_every
                if every and (self.step % every == 0 or self.step == self.total_steps):
                    self.save()
        if self.acc.log_with:
            self.acc.end_training()
        return self.history

    def describe(self, metrics: dict[str, Any]) -> str:
        loss = metrics.get("loss")
        return f"{self.kind} loss {loss:.3f}" if isinstance(loss, (int, float)) else self.kind

    def log(self, metrics: dict[str, Any]) -> None:
        if not self.acc.is_main_process:
            return
        append_jsonl(self.out / "metrics.jsonl", [metrics])
        if self.acc.log_with:
            self.acc.log(trackers.numeric(metrics), step=metrics["step"])

    # ---- checkpoints -----------------------------------------------------------------------
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def save(self) -> Path | None:
        self.acc.wait_for_everyone()
        if not self.acc.is_main_process:
            return None
        state = {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                 "rng": ckpt.rng_state(), "step": self.step, "data": self.data_state(),
                 "history": self.history, "config": to_dict(self.cfg)}
        if getattr(self.cfg, "lora", None) is not None:
            state["trainable"] = {k: v for k, v in self.inner_model().state_dict().items() if "lora_" in k}
        return ckpt.save_checkpoint(self.checkpoint_dir(), self.step, self.save_model, state, self.cfg.keep_last)

    def resume_if_possible(self, warn=print) -> bool:
        """Load the newest intact checkpoint; damaged newer ones are set aside with a warning."""
        last, skipped = ckpt.latest_intact(self.checkpoint_dir())
        for path, why in skipped:
            if self.acc.is_main_process:
                aside = ckpt.set_aside(path)
                warn(f"checkpoint {path} is damaged ({why}); moved to {aside.name} and "
                     f"resuming from {last.name if last else 'the start'}")
        self.acc.wait_for_everyone()
        if last is None:
            return False
        state = ckpt.load_state(last)
        self.load_model(last, state)
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        self.step = state["step"]
        self.load_data_state(state.get("data", {}))
        self.history = state.get("history", [])
        if self.acc.is_main_process:  # drop metric lines logged after this checkpoint (a killed run's tail)
            atomic_write_jsonl(self.out / "metrics.jsonl", self.history)
        self.on_resumed()
        return True


def _clean(m: dict[str, Any]) -> dict[str, Any]:
    """Round floats for the log; NaN/inf become None (JSON has no NaN)."""
    return {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else
                (None if isinstance(v, float) else v)) for k, v in m.items()}
