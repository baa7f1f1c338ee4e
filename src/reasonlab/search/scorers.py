"""Reward-model scorers for search: a PRM (process reward model) and an ORM (outcome only).

Model: a causal LM backbone plus a linear value head read at the last token of each step
(Math-Shepherd, Wang et al. 2024; Lightman et al. 2023 read a step-end token the same way).
Input: the chat-rendered question followed by the solution, steps split on ``step_delimiter``;
each step is tokenized on its own so step ends are exact token positions (training and scoring
tokenize identically). Scores are sigmoids in [0, 1]; a solution's score aggregates its steps:
``last`` | ``min`` | ``product``. An ORM is the same model trained on outcome labels, read at
the last step only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from reasonlab.prompts import build, render_chat
from reasonlab.tensors import pad  # noqa: F401 (re-exported: the one padding helper)
from reasonlab.types import Problem

AGGREGATIONS = {"last": lambda s: s[-1], "min": min, "product": lambda s: math.prod(s)}


def split_steps(text: str, delimiter: str = "\n\n") -> list[str]:
    """Steps keep their delimiter, so joining them gives the text back."""
    parts = text.split(delimiter)
    steps = [p + delimiter for p in parts[:-1]] + [parts[-1]]
    return [s for s in steps if s.strip()] or [text]


class ValueModel(nn.Module):
    def __init__(self, lm, kind: str = "prm"):
        super().__init__()
        self.lm = lm
        self.kind = kind
        self.head = nn.Linear(lm.config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, attn: torch.Tensor, fast=None) -> torch.Tensor:
        """ids, attn (B, T), right-padded -> value logits (B, T). ``fast``: a ``FastLlama`` copy
        of the backbone (inference only, no gradient) whose hidden states the head reads instead."""
        if fast is not None:
            return self.head(fast.hidden_states(ids, attn)).squeeze(-1)
        backbone = self.lm.get_decoder() if hasattr(self.lm, "get_decoder") else self.lm.model
        hidden = backbone(input_ids=ids, attention_mask=attn).last_hidden_state
        return self.head(hidden.float()).squeeze(-1)

    def save(self, path: str | Path, tokenizer, meta: dict) -> None:
        from reasonlab.models import save

        path = Path(path)
        save(self.lm, tokenizer, path)
        torch.save(self.head.state_dict(), path / "value_head.pt")
        (path / "scorer.json").write_text(json.dumps({"kind": self.kind, **meta}, indent=2))


def encode_steps(tokenizer, problem: Problem, steps: list[str], prompt: str = "plain") -> tuple[list[int], list[int]]:
    """Token ids of question + steps, and the index of each step's last token."""
    ids = tokenizer(render_chat(tokenizer, build(problem, prompt)), add_special_tokens=False)["input_ids"]
    ends = []
    for step in steps:
        ids = ids + tokenizer(step, add_special_tokens=False)["input_ids"]
        ends.append(len(ids) - 1)
    return ids, ends


class RewardModelScorer:
    """Scores solutions with a trained ValueModel; ``score`` returns one number per solution.

    Step scores are cached per (problem, text): search strategies and the scale runner score the
    same candidates again at every n (best-of-4 reuses best-of-16's first four), and a forward
    pass over a whole solution is the expensive part. Solutions are batched by length, so
    padding stays small. Where the backbone's architecture has a fast forward (``arch.py``), the
    value head reads that forward's hidden states (a copy of the weights taken here, frozen like
    the score cache); otherwise transformers' forward runs.
    """

    def __init__(self, model: ValueModel, tokenizer, step_delimiter: str = "\n\n", prompt: str = "plain",
                 batch_size: int = 16):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.delimiter, self.prompt, self.batch_size = step_delimiter, prompt, batch_size
        self.cache: dict[tuple[str, str], list[float]] = {}
        self.bar = None  # a rich Progress (set by the scale runner): scoring shows its own task
        self.fast = _fast_copy(model.lm)

    @classmethod
    def load(cls, path: str | Path, dtype: str | None = None) -> "RewardModelScorer":
        """``dtype``: auto (bf16 where the CPU runs it faster, as for sampling) | bf16 | fp32."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from reasonlab.models import resolve_dtype

        path = Path(path)
        if not (path / "scorer.json").exists() and (path / "model" / "scorer.json").exists():
            path = path / "model"  # a `train prm` run directory: its final scorer
        if not (path / "scorer.json").exists():
            raise FileNotFoundError(f"{path}: no scorer.json — train one with `reasonlab train prm`")
        meta = json.loads((path / "scorer.json").read_text())
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype))
        model = ValueModel(lm, meta.get("kind", "prm"))
        model.head.load_state_dict(torch.load(path / "value_head.pt"))
        tok = AutoTokenizer.from_pretrained(path)
        return cls(model, tok, meta.get("step_delimiter", "\n\n"), meta.get("prompt", "plain"))

    @torch.inference_mode()
    def step_scores(self, problems: list[Problem], texts: list[str]) -> list[list[float]]:
        keys = [(p.id, t) for p, t in zip(problems, texts)]
        todo = {k: (p, t) for k, p, t in zip(keys, problems, texts) if k not in self.cache}
        encoded = {k: encode_steps(self.tokenizer, p, split_steps(t, self.delimiter), self.prompt)
                   for k, (p, t) in todo.items()}
        order = sorted(encoded, key=lambda k: len(encoded[k][0]))
        job = self.bar.add_task("scoring", total=len(order)) if self.bar is not None and order else None
        for i in range(0, len(order), self.batch_size):
            chunk = order[i:i + self.batch_size]
            ids, attn = pad([encoded[k][0] for k in chunk], self.tokenizer.pad_token_id or 0)
            values = torch.sigmoid(self.model(ids, attn, fast=self.fast))
            for j, k in enumerate(chunk):
                self.cache[k] = [float(values[j, e]) for e in encoded[k][1]]
            if job is not None:
                self.bar.advance(job, len(chunk))
        return [list(self.cache[k]) for k in keys]

    def score(self, problems: list[Problem], texts: list[str], aggregation: str = "last") -> list[float]:
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; valid: {', '.join(AGGREGATIONS)}")
        agg = AGGREGATIONS["last"] if self.model.kind == "orm" else AGGREGATIONS[aggregation]
        return [agg(s) for s in self.step_scores(problems, texts)]


def _fast_copy(lm):
    """The fast forward over ``lm`` in its own dtype, or None where its architecture has none."""
    from reasonlab.backends.fast_llama import FastLlama, fast_plan

    arch, _ = fast_plan(lm)
    return None if arch is None else FastLlama.from_hf(lm, next(lm.parameters()).dtype)
