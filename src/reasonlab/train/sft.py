"""Supervised fine-tuning on reasoning traces, on the training core.

The data side (rows -> masked examples, epoch order, packing, collate) is ``sft_data.py``; the
loss is ``sft_loss.py``; the loop, checkpoints and exact resume are ``core.py``. This file is
only the step: take the step's rows of the current epoch's plan, split them into micro-batches,
accumulate ``sum of token losses / target tokens of the whole step`` (so every target token
weighs the same whichever micro-batch or process it landed in), one optimizer step.

Position in the data is a pure function of the step: every epoch's plan is computed up front
from ``(seed, epoch)``, so a resumed run (``kill -9`` anywhere, mid-epoch or at an epoch's end)
continues with exactly the batch an uninterrupted run would have taken.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from reasonlab.config import require
from reasonlab.io import MAX_LINE_BYTES, atomic_write_json
from reasonlab.models import LoraConfig
from reasonlab.train import template
from reasonlab.train.core import OptimConfig, Trainer, check_common
from reasonlab.train.sft_formats import ReadSpec
from reasonlab.train.sft_data import collate, epoch_order, load_sft_data, n_targets, plan_batches
from reasonlab.train.sft_loss import sft_loss


@dataclass
class SFTConfig:
    model: str = "smollm2-135m"
    data: str = ""  # JSONL / JSON / parquet file, datasets folder, or a folder of them (``--data``)
    format: str = "auto"  # SFT data format (sft_formats.SFT_FORMATS), detected per record when auto
    fields: dict[str, str] = field(default_factory=dict)  # logical field -> column, e.g. question: problem
    openr1_generations: str = "first"  # first | verified | all (the openr1 format's generations)
    epochs: int = 1
    max_steps: int = 0  # > 0: stop after this many optimizer steps
    seed: int = 0
    dtype: str = "auto"  # autocast dtype; master weights fp32
    max_len: int = 1024  # tokens per example (longer ones are dropped and counted)
    truncate: bool = False  # cut long examples from the left instead of dropping them
    pack: bool = True  # several examples per row, attention and positions reset per example
    batch_size: int = 8  # rows per optimizer step (packed rows when pack is true)
    on_bad_rows: Literal["fail", "skip"] = "fail"
    prompt: str = "auto"  # prompt format baked into the checkpoint's chat template: auto | none | a format
    # chat template trained with and saved into the checkpoint (train/template.py):
    #   own: the model's own; rows it does not render verbatim (Qwen3 rewrites <think>) are refused
    #   verbatim: ChatML from the tokenizer's <|im_start|>/<|im_end|>, every turn's content as given
    #   auto: own when it renders a multi-turn reasoning probe verbatim, else verbatim (logged)
    chat_template: str = "auto"
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=5e-5, warmup_steps=5, schedule="cosine", min_lr_ratio=0.1, micro_batch=4, betas=(0.9, 0.95)))
    lora: LoraConfig | None = None
    save_every: int = 50
    keep_last: int = 2
    report_to: str = "tensorboard"  # trackers, comma list | none (train/trackers.py)

    def check(self) -> None:
        require(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        require(self.max_steps >= 0, "max_steps", f"must be >= 0, got {self.max_steps}")
        require(self.max_len >= 8, "max_len", f"must be >= 8, got {self.max_len}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        self.read_spec().check()
        require(self.chat_template in template.CHAT_TEMPLATES, "chat_template",
                f"expected one of {', '.join(template.CHAT_TEMPLATES)}, got {self.chat_template!r}")
        if self.prompt not in ("auto", "none"):
            from reasonlab.config import require_name
            from reasonlab.prompts import PROMPTS

            require_name(PROMPTS, self.prompt, "prompt")
        check_common(self)


    def read_spec(self) -> ReadSpec:
        return ReadSpec(self.format, dict(self.fields), self.openr1_generations)


class SFTTrainer(Trainer):
    kind = "sft"

    def __init__(self, cfg: SFTConfig, out_dir, model=None, tokenizer=None):
        if not cfg.data:
            from reasonlab.errors import DataError

            raise DataError("no training data: pass --data FILE_OR_DIR (or data: in the config)")
        if tokenizer is None and model is None:
            from reasonlab.models import load_tokenizer

            tokenizer = load_tokenizer(cfg.model)  # fail on bad data before loading weights
        data_tokenizer = tokenizer
        if tokenizer is not None:
            self.chat_template = template.select(tokenizer, cfg.chat_template)  # sets it in place
            self.examples, self.stats = load_sft_data(cfg.data, tokenizer, cfg.max_len,
                                                      on_bad_rows=cfg.on_bad_rows, truncate=cfg.truncate,
                                                      spec=cfg.read_spec())
        super().__init__(cfg, out_dir, model, tokenizer, prompt_format=_prompt_format(cfg))
        if data_tokenizer is not None:  # the core may have loaded its own copy: train and save the same
            self.tokenizer.chat_template = data_tokenizer.chat_template
        else:  # model given without tokenizer: the core loaded one
            self.chat_template = template.select(self.tokenizer, cfg.chat_template)
            self.examples, self.stats = load_sft_data(cfg.data, self.tokenizer, cfg.max_len,
                                                      on_bad_rows=cfg.on_bad_rows, truncate=cfg.truncate,
                                                      spec=cfg.read_spec())
        lengths = [len(e) for e in self.examples]
        self.plans = [plan_batches(lengths, epoch_order(len(lengths), cfg.seed, e), cfg.batch_size,
                                   cfg.max_len, cfg.pack) for e in range(cfg.epochs)]
        self.starts = [0]
        for plan in self.plans:
            self.starts.append(self.starts[-1] + len(plan))
        self.setup_optimizer(self.base_model)
        if self.acc.is_main_process:
            atomic_write_json(self.out / "data_stats.json", {**self.stats.metrics(),
                              "chat_template": self.chat_template,
                              "bad_row_samples": self.stats.bad_row_samples,
                              "too_long_samples": self.stats.too_long_samples})

    @property
    def total_steps(self) -> int:
        total = self.starts[-1]
        return min(total, self.cfg.max_steps) if self.cfg.max_steps else total

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch index in that epoch's plan) of optimizer step ``step`` (0-based)."""
        epoch = bisect.bisect_right(self.starts, step) - 1
        return epoch, step - self.starts[epoch]

    def data_state(self) -> dict[str, Any]:
        epoch, batch = self.position(self.step) if self.step < self.starts[-1] else (self.cfg.epochs, 0)
        return {"epoch": epoch, "batch": batch}  # informative: the step alone fixes the position

    def update(self) -> dict[str, Any]:
        acc, cfg = self.acc, self.cfg
        epoch, b = self.position(self.step)
        rows = self.plans[epoch][b][acc.process_index::acc.num_processes]
        micro = [rows[i:i + cfg.optim.micro_batch] for i in range(0, len(rows), cfg.optim.micro_batch)]
        # unpacked rows share their header and system prompt: run it once per micro-batch
        batches = [collate([[self.examples[k] for k in row] for row in mb], self.tokenizer.pad_token_id,
                           share_prefix=not cfg.pack) for mb in micro]
        local = sum(n_targets(x) for x in batches)
        seen = self.world_sum(targets=local, row_tokens=sum(int(x["input_ids"].numel()) for x in batches),
                              rows=len(rows))  # every process's, one gather
        total = seen.pop("targets")
        loss_sums = []

        def loss_of(j: int) -> torch.Tensor:
            s, _ = sft_loss(self.model, batches[j], self.dtype)
            loss_sums.append(float(s.detach()))
            return s / max(total, 1)

        self.accumulate(len(batches), loss_of)
        grad_norm = self.optimizer_step()
        return {"epoch": epoch, "loss": sum(loss_sums) / max(local, 1), "target_tokens": total,
                **seen, "grad_norm": grad_norm,
                "dropped_too_long": self.stats.too_long, "bad_rows_skipped": self.stats.bad_rows}


def _prompt_format(cfg: SFTConfig) -> str | None:
    """The format to bake: given, or detected from the data (R1 system prompt + ``<think>``)."""
    if cfg.prompt == "none":
        return None
    if cfg.prompt != "auto":
        return cfg.prompt
    from reasonlab import prompts
    from reasonlab.tables import data_sources, iter_rows
    from reasonlab.train.sft_formats import conversations

    spec = cfg.read_spec()
    for source in data_sources(cfg.data):
        for src, record, error in iter_rows(source, MAX_LINE_BYTES):
            if error is not None:
                continue
            try:
                convs = conversations(src, record, spec)[1]
            except Exception:  # noqa: BLE001 - bad rows are reported by load_sft_data
                continue
            if not convs:
                continue
            msgs = convs[0].messages
            system = msgs[0]["content"] if msgs[0]["role"] == "system" else None
            assistant = next((m["content"] for m in msgs if m["role"] == "assistant"), "")
            r1 = system == prompts.R1_SYSTEM and assistant.startswith(prompts.THINK_PREFILL.strip())
            return "r1" if r1 else None
    return None
