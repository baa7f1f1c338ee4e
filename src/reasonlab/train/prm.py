"""Training a process (or outcome) reward model from the model's own rollouts.

Labels (Math-Shepherd, Wang et al. 2024, "soft" estimation): sample solutions, split each into
steps; for the prefix ending at step i, sample k completions continuing it and label the step
with the fraction that reach the right answer. The final step's label is its own correctness.
ORM labels: the solution's correctness, at its last step only.
Training: binary cross-entropy (soft targets) of the value head at step ends; the backbone's
last ``train_layers`` layers and the head are trained, the rest frozen; the backbone runs through
``fused_forward`` where it describes the model (``value_logits``), else transformers' forward. The loop, checkpoints and
exact resume are the training core's (``train/core.py``); labelling resumes too: each chunk's
labels are appended to ``labels.jsonl`` as soon as they exist and are not sampled again.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reasonlab import prompts as prompt_formats
from reasonlab.config import require
from reasonlab.eval.progress import progress_bar
from reasonlab.io import append_jsonl, atomic_write_jsonl, read_jsonl_rows, truncate_torn_tail
from reasonlab.search.scorers import ValueModel, encode_steps, split_steps
from reasonlab.tensors import pad
from reasonlab.train import fused_forward
from reasonlab.train.core import OptimConfig, Trainer, check_common
from reasonlab.types import Problem, SamplingParams


@dataclass
class PRMConfig:
    kind: str = "prm"  # prm | orm
    problems: int = 64
    solutions: int = 4  # sampled solutions per problem
    rollouts: int = 4  # MC continuations per step prefix (prm only)
    max_new_tokens: int = 96
    temperature: float = 1.0
    prompt: str = "cot"
    step_delimiter: str = "\n\n"
    max_steps: int = 4  # label at most this many steps per solution
    epochs: int = 3
    lr: float = 5e-5
    head_lr: float = 1e-3
    batch_size: int = 8
    train_layers: int = 2
    seed: int = 0
    label_batch: int = 8  # problems labelled per sampler call (bigger batches, same labels' meaning)
    held_out: float = 0.2  # share of labelled problems kept out of training to measure ranking quality
    model: str = "smollm2-135m"
    dtype: str = "fp32"
    save_every: int = 50  # optimizer steps between checkpoints (the last step always saves)
    keep_last: int = 2
    report_to: str = "tensorboard"  # trackers, comma list | none (train/trackers.py)
    options: dict[str, Any] = field(default_factory=dict)  # unused by PRM; keeps the core's contract

    @property
    def optim(self) -> OptimConfig:
        """The core's optimizer settings (the backbone's lr; the head gets ``head_lr``)."""
        return OptimConfig(lr=self.lr, max_grad_norm=0.0)

    def check(self) -> None:
        require(self.kind in ("prm", "orm"), "kind", f"must be prm or orm, got {self.kind!r}")
        for key in ("problems", "solutions", "rollouts", "max_new_tokens", "max_steps", "epochs",
                    "batch_size", "label_batch"):
            require(getattr(self, key) >= 1, key, f"must be >= 1, got {getattr(self, key)}")
        require(self.lr > 0 and self.head_lr > 0, "lr", "lr and head_lr must be positive")
        require(0 <= self.held_out < 1, "held_out", f"must be in [0, 1), got {self.held_out}")
        require(self.train_layers >= 0, "train_layers", f"must be >= 0, got {self.train_layers}")
        require(self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}")
        from reasonlab.config import require_name
        from reasonlab.prompts import PROMPTS

        require_name(PROMPTS, self.prompt, "prompt")
        check_common(self)


def mc_labels(problems: list[Problem], backend, task, cfg: PRMConfig, progress: bool = True,
              out: Path | None = None) -> list[dict]:
    """[{problem, steps, labels}] with soft labels in [0, 1] (one per labelled step).

    Problems go through in chunks of ``label_batch``: one backend call samples every chunk
    problem's solutions, a second one all their step prefixes' continuations, so the sampler
    runs full batches instead of one problem's few rows at a time. With ``out`` (a JSONL path),
    each chunk's labels are appended as soon as they exist, and chunks already there are read
    back instead of sampled again (chunks are fixed by position, so seeds stay the same).
    """
    data, done = [], _read_labels(out, problems, cfg)
    with progress_bar(progress) as bar:
        job = bar.add_task(f"{cfg.kind} labels", total=len(problems))
        for start in range(0, len(problems), cfg.label_batch):
            chunk = problems[start: start + cfg.label_batch]
            if all(p.id in done for p in chunk):
                data += [row for p in chunk for row in done[p.id]]
                bar.advance(job, len(chunk))
                continue
            msgs = [prompt_formats.build(p, cfg.prompt) for p in chunk]
            prefills = [prompt_formats.response_prefix(m) for m in msgs]
            params = dict(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
            sols = backend.generate(msgs, SamplingParams(n=cfg.solutions, seed=cfg.seed + start, **params))
            rows, requests = [], []  # rows: (problem, steps, final, its requests' slice)
            for p, m, prefill, cands in zip(chunk, msgs, prefills, sols):
                base = m[:-1] if prefill else m
                for c in cands:
                    text = prefill + c.text
                    steps = split_steps(text, cfg.step_delimiter)[: cfg.max_steps]
                    final = float(bool(task.score(p, text).correct))
                    first = len(requests)
                    if cfg.kind == "prm" and len(steps) > 1:
                        requests += [(p, base, "".join(steps[: j + 1])) for j in range(len(steps) - 1)]
                    rows.append((p, steps, final, slice(first, len(requests))))
            outs = backend.generate([base + [{"role": "assistant", "content": pre}] for _, base, pre in requests],
                                    SamplingParams(n=cfg.rollouts, seed=cfg.seed + 7 * start + 1, **params)) \
                if requests else []
            scores = [sum(bool(task.score(p, pre + o.text).correct) for o in conts) / cfg.rollouts
                      for (p, _, pre), conts in zip(requests, outs)]
            fresh = []
            for p, steps, final, own in rows:
                labels = scores[own] + [final] if own.stop > own.start else [final] * len(steps)
                fresh.append({"problem": p, "steps": steps, "labels": labels})
            if out is not None:
                append_jsonl(out, [{"problem_id": d["problem"].id, "steps": d["steps"], "labels": d["labels"]}
                                   for d in fresh])
            data += fresh
            bar.advance(job, len(chunk))
    return data


def _read_labels(out: Path | None, problems: list[Problem], cfg: PRMConfig) -> dict[str, list[dict]]:
    """Labelled solutions already in ``out``, by problem id, for whole chunks only.

    A chunk is appended in one write, so a kill can tear only the last one: its rows are dropped
    from the file (rewritten atomically) and the chunk is labelled again with the same seeds."""
    if out is None or not Path(out).exists():
        return {}
    truncate_torn_tail(out)
    by_id = {p.id: p for p in problems}
    rows = [r for r in read_jsonl_rows(out) if r["problem_id"] in by_id]
    count: dict[str, int] = {}
    for r in rows:
        count[r["problem_id"]] = count.get(r["problem_id"], 0) + 1
    whole = set()
    for start in range(0, len(problems), cfg.label_batch):
        chunk = [p.id for p in problems[start: start + cfg.label_batch]]
        if all(count.get(pid) == cfg.solutions for pid in chunk):
            whole.update(chunk)
    kept = [r for r in rows if r["problem_id"] in whole]
    if len(kept) != len(rows) or len(rows) != len(read_jsonl_rows(out)):
        atomic_write_jsonl(out, kept)
    done: dict[str, list[dict]] = {}
    for r in kept:
        done.setdefault(r["problem_id"], []).append(
            {"problem": by_id[r["problem_id"]], "steps": r["steps"], "labels": r["labels"]})
    return done


class PRMTrainer(Trainer):
    """The value model's training on the core: one step is one batch of labelled solutions."""

    kind = "prm"

    def __init__(self, cfg: PRMConfig, out_dir, data: list[dict], model: ValueModel, tokenizer):
        super().__init__(cfg, out_dir, model, tokenizer, prompt_format=cfg.prompt)
        self.kind = f"train {cfg.kind}"
        layers = model.lm.get_decoder().layers
        for p in model.lm.parameters():
            p.requires_grad_(False)
        for layer in list(layers)[len(layers) - cfg.train_layers:] if cfg.train_layers else []:
            for p in layer.parameters():
                p.requires_grad_(True)
        self.encoded = []
        for d in data:
            ids, ends = encode_steps(self.tokenizer, d["problem"], d["steps"], cfg.prompt)
            keep = ends if cfg.kind == "prm" else ends[-1:]
            labels = d["labels"] if cfg.kind == "prm" else d["labels"][-1:]
            self.encoded.append((ids, keep, labels))
        if not self.encoded:
            raise ValueError("no labelled solutions to train on")
        self.per_epoch = math.ceil(len(self.encoded) / cfg.batch_size)
        self.setup_optimizer(model)

    @property
    def total_steps(self) -> int:
        return self.cfg.epochs * self.per_epoch

    def param_groups(self, model) -> list[dict]:
        groups = [{"params": list(model.head.parameters()), "lr": self.cfg.head_lr}]
        trainable = [p for p in model.lm.parameters() if p.requires_grad]
        return groups + ([{"params": trainable, "lr": self.cfg.lr}] if trainable else [])

    def update(self) -> dict[str, Any]:
        """The position is a function of the step: (epoch, batch) = divmod(step, per_epoch). Each
        process takes every world-th solution of the batch; the loss is the BCE summed over the
        labelled step ends / those of the whole batch, so any world size gives the same gradient."""
        acc = self.acc
        epoch, b = divmod(self.step, self.per_epoch)
        order = list(range(len(self.encoded)))
        random.Random(self.cfg.seed * 1_000_003 + epoch).shuffle(order)
        batch = [self.encoded[k] for k in order[b * self.cfg.batch_size:(b + 1) * self.cfg.batch_size]]
        mine = batch[acc.process_index::acc.num_processes]
        local = sum(len(x[1]) for x in mine)
        total = self.world_sum(labels=local)["labels"]
        bce = []

        def loss_of(_: int) -> torch.Tensor:
            ids, attn = pad([x[0] for x in mine], self.tokenizer.pad_token_id or 0)
            logits = value_logits(self.model, ids.to(acc.device), attn.to(acc.device))
            rows = torch.tensor([j for j, x in enumerate(mine) for _ in x[1]])
            cols = torch.tensor([k for x in mine for k in x[1]])
            target = torch.tensor([y for x in mine for y in x[2]], dtype=torch.float32, device=logits.device)
            s = torch.nn.functional.binary_cross_entropy_with_logits(logits[rows, cols], target, reduction="sum")
            bce.append(float(s.detach()))
            return s / max(total, 1)

        self.accumulate(1 if mine else 0, loss_of)
        self.optimizer_step()
        return {"epoch": epoch, "loss": sum(bce) / max(local, 1)}

    def save_model(self, path: Path) -> None:
        """A checkpoint is a whole scorer: HF backbone (plain transformers loads it) + value head."""
        self.inner_model().save(path, self.tokenizer, self.scorer_meta())

    def scorer_meta(self) -> dict[str, Any]:
        return {"step_delimiter": self.cfg.step_delimiter, "prompt": self.cfg.prompt,
                "base": self.cfg.model, "examples": len(self.encoded)}

    def load_model(self, path: Path, state: dict[str, Any]) -> None:
        from safetensors.torch import load_file

        value = self.inner_model()
        weights = {}
        for f in sorted(path.glob("*.safetensors")):
            weights.update(load_file(f))
        missing, unexpected = value.lm.load_state_dict(weights, strict=False)
        if unexpected or [m for m in missing if "lm_head" not in m]:
            raise RuntimeError(f"{path}: checkpoint does not match the model")
        value.head.load_state_dict(torch.load(path / "value_head.pt", weights_only=True))


def value_logits(model: ValueModel, ids: torch.Tensor, attn: torch.Tensor, fused: bool | None = None
                 ) -> torch.Tensor:
    """``model(ids, attn)`` (right-padded (B, T) -> value logits (B, T)), the backbone through
    ``fused_forward`` where it can: same values and gradients, 0 at padded positions."""
    p = None if hasattr(model, "module") else fused_forward.plan(model.lm, fused)
    if p is None:
        return model(ids, attn)
    lens = attn.sum(-1).tolist()
    rows = [ids[b, :n].tolist() for b, n in enumerate(lens)]
    lay = fused_forward.layout([], rows, [0] * len(rows), None)
    hidden = fused_forward.final_hidden(model.lm, p, lay, torch.arange(len(lay.ids)),
                                        next(model.lm.parameters()).dtype)
    out = torch.zeros(ids.shape + (hidden.shape[-1],), device=hidden.device)
    out = out.index_put((*attn.bool().nonzero(as_tuple=True),), hidden)
    return model.head(out).squeeze(-1)


def train_value_model(model: ValueModel, tokenizer, data: list[dict], cfg: PRMConfig, out: Path,
                      progress: bool = True, resume: bool = True) -> list[dict]:
    """Train ``model`` on labelled solutions in run dir ``out`` (resuming from its checkpoints)."""
    trainer = PRMTrainer(cfg, out, data, model, tokenizer)
    if resume:
        trainer.resume_if_possible()
    history = trainer.train(progress=progress)
    model.eval()
    return history
