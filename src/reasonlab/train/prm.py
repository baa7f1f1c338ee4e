"""Training a process (or outcome) reward model from the model's own rollouts.

Labels (Math-Shepherd, Wang et al. 2024, "soft" estimation): sample solutions, split each into
steps; for the prefix ending at step i, sample k completions continuing it and label the step
with the fraction that reach the right answer. The final step's label is its own correctness.
ORM labels: the solution's correctness, at its last step only.
Training: binary cross-entropy (soft targets) of the value head at step ends; the backbone's
last ``train_layers`` layers and the head are trained, the rest frozen.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from reasonlab import prompts as prompt_formats
from reasonlab.eval.progress import progress_bar
from reasonlab.search.scorers import ValueModel, encode_steps, pad, split_steps
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


def mc_labels(problems: list[Problem], backend, task, cfg: PRMConfig, progress: bool = True) -> list[dict]:
    """[{problem, steps, labels}] with soft labels in [0, 1] (one per labelled step).

    Problems go through in chunks of ``label_batch``: one backend call samples every chunk
    problem's solutions, a second one all their step prefixes' continuations, so the sampler
    runs full batches instead of one problem's few rows at a time.
    """
    data = []
    with progress_bar(progress) as bar:
        job = bar.add_task(f"{cfg.kind} labels", total=len(problems))
        for start in range(0, len(problems), cfg.label_batch):
            chunk = problems[start: start + cfg.label_batch]
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
            for p, steps, final, own in rows:
                labels = scores[own] + [final] if own.stop > own.start else [final] * len(steps)
                data.append({"problem": p, "steps": steps, "labels": labels})
            bar.advance(job, len(chunk))
    return data


def train_value_model(model: ValueModel, tokenizer, data: list[dict], cfg: PRMConfig, out: Path,
                      progress: bool = True) -> list[dict]:
    torch.manual_seed(cfg.seed)
    layers = model.lm.get_decoder().layers
    for p in model.lm.parameters():
        p.requires_grad_(False)
    for layer in list(layers)[len(layers) - cfg.train_layers:] if cfg.train_layers else []:
        for p in layer.parameters():
            p.requires_grad_(True)
    groups = [{"params": list(model.head.parameters()), "lr": cfg.head_lr}]
    trainable = [p for p in model.lm.parameters() if p.requires_grad]
    if trainable:
        groups.append({"params": trainable, "lr": cfg.lr})
    opt = torch.optim.AdamW(groups)
    encoded = []
    for d in data:
        ids, ends = encode_steps(tokenizer, d["problem"], d["steps"], cfg.prompt)
        keep = ends if cfg.kind == "prm" else ends[-1:]
        labels = d["labels"] if cfg.kind == "prm" else d["labels"][-1:]
        encoded.append((ids, keep, labels))
    rng = random.Random(cfg.seed)
    history = []
    model.train()
    with progress_bar(progress) as bar, (out / "metrics.jsonl").open("w") as log:
        job = bar.add_task(f"train {cfg.kind}", total=cfg.epochs * ((len(encoded) + cfg.batch_size - 1) // cfg.batch_size))
        step = 0
        for epoch in range(cfg.epochs):
            rng.shuffle(encoded)
            for i in range(0, len(encoded), cfg.batch_size):
                batch = encoded[i:i + cfg.batch_size]
                ids, attn = pad([b[0] for b in batch], tokenizer.pad_token_id or 0)
                logits = model(ids, attn)
                rows = torch.tensor([j for j, b in enumerate(batch) for _ in b[1]])
                cols = torch.tensor([k for b in batch for k in b[1]])
                target = torch.tensor([y for b in batch for y in b[2]], dtype=torch.float32)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[rows, cols], target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                row = {"step": step, "epoch": epoch, "loss": round(loss.item(), 5)}
                history.append(row)
                log.write(json.dumps(row) + "\n")
                bar.advance(job)
    model.eval()
    return history
