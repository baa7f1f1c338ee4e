"""Compute counted from the tokens a stage actually processed (``reasonlab compare``).

The formula (Kaplan et al. 2020, §2.1; Hoffmann et al. 2022, App. F for the attention term):

    FLOPs = 2·N·T_fwd + 6·N·T_train + 4·L·d·(X_fwd + 3·X_train)

- ``N``: the model's parameter count (tied embeddings once), ``L`` its layers, ``d`` its
  attention width (query heads x head dim);
- ``T_fwd``: tokens run forward only: generated, prefilled (a prompt once per generate call,
  shared by its n samples, as our samplers do) and scored without a gradient (GRPO's old and
  reference log-probs); ``T_train``: tokens run forward and backward (SFT rows as padded; GRPO's
  completions in the loss plus each kept group's prompt, once per policy pass);
- ``X``: the sum over those tokens of the positions each attends to (a row of ``L`` tokens run
  at once: L(L+1)/2; C tokens after a P-token prompt: C·P + C(C+1)/2); 4·d per attended position
  is QK^T plus the weighted sum of V, a multiply-add each; backward costs twice the forward.

Counts come from the files stages already write (SFT and GRPO ``metrics.jsonl``, whose counts are
every process's under ``accelerate launch`` (``Trainer.world_sum``), generate's
``raw.jsonl``, eval's ``samples.jsonl``; inference-time strategies are counted as they run by
``CountingGenerator``) and use
mean lengths per step where only totals are logged, so the attention term (a few % of the total
at 135M and a few hundred tokens) is approximate; the 2N/6N terms are exact token counts. Not
counted: rewards and verifiers (rule-based, no model), the LM head skipped on GRPO prompt
positions, embedding lookups.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

from reasonlab.io import read_jsonl_rows
from reasonlab.registry import Registry

# stage kind -> fn(stage folder) -> Tokens
COUNTERS: Registry[Callable[[Path], "Tokens"]] = Registry("compute counter")


@dataclass(frozen=True)
class Shape:
    """What the formula needs of a model."""

    params: int  # N
    layers: int  # L
    width: int  # d: query heads x head dim


@dataclass(frozen=True)
class Tokens:
    """Tokens a stage processed, and the attended positions summed over them."""

    forward: float = 0.0
    forward_ctx: float = 0.0
    train: float = 0.0
    train_ctx: float = 0.0

    def __add__(self, other: "Tokens") -> "Tokens":
        return Tokens(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def scaled(self, k: float) -> "Tokens":
        return Tokens(*(getattr(self, f.name) * k for f in fields(self)))


def flops(t: Tokens, s: Shape) -> float:
    """The formula of the module docstring."""
    return (2 * s.params * t.forward + 6 * s.params * t.train
            + 4 * s.layers * s.width * (t.forward_ctx + 3 * t.train_ctx))


def causal(length: float) -> float:
    """Positions attended, summed over a row of ``length`` tokens run at once."""
    return length * (length + 1) / 2


def continued(prompt: float, completion: float) -> float:
    """Positions attended, summed over ``completion`` tokens that follow a ``prompt``."""
    return completion * prompt + causal(completion)


def generation(prompts: float, prompt_len: float, samples: float, completion_len: float) -> Tokens:
    """``prompts`` prefills of ``prompt_len`` tokens, then ``samples`` completions of
    ``completion_len`` tokens each (means), forward only."""
    return Tokens(forward=prompts * prompt_len + samples * completion_len,
                  forward_ctx=prompts * causal(prompt_len) + samples * continued(prompt_len, completion_len))


def shape_of(model: str | Path) -> Shape:
    """N from the checkpoint's safetensors headers (no weights loaded; a tied head is stored
    once), L and d from its config.json. ``model``: any spec ``models.resolve`` takes."""
    from reasonlab.models import resolve

    path = Path(resolve(str(model)))
    cfg = json.loads((path / "config.json").read_text())
    cfg = cfg.get("text_config", cfg)
    params = 0
    for f in sorted(path.glob("*.safetensors")):
        with f.open("rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(size))
        params += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    return Shape(params=params, layers=cfg["num_hidden_layers"], width=heads * head_dim)


def stage_tokens(kind: str, folder: str | Path) -> Tokens:
    """Tokens of one finished stage of ``kind`` (a COUNTERS name)."""
    return COUNTERS.get(kind)(Path(folder))


@COUNTERS.register("sft")
def sft_tokens(folder: Path) -> Tokens:
    """Every step's rows as padded (``row_tokens``), forward and backward."""
    t = Tokens()
    for r in read_jsonl_rows(folder / "metrics.jsonl"):
        rows, total = r.get("rows") or 0, r.get("row_tokens") or 0
        if rows:
            t += Tokens(train=total, train_ctx=rows * causal(total / rows))
    return t


@COUNTERS.register("grpo")
def grpo_tokens(folder: Path) -> Tokens:
    """Per step: sampling (each sampled prompt prefilled once, then its G completions), ``mu``
    forward-backward passes over the kept groups (their prompts once, the loss's completions),
    and a forward for old log-probs (mu > 1) and for the reference model (beta > 0). Token counts
    are the trainer's (``gen_tokens``, ``prompt_tokens``: each drawn prompt once), prompt lengths
    as the step's mean."""
    import yaml

    config = yaml.safe_load((folder / "config.yaml").read_text())  # the trainer's resolved config
    G, algo = config["sampling"]["group_size"], config.get("algo", {})
    mu, extra = algo.get("mu", 1), (algo.get("mu", 1) > 1) + (algo.get("beta", 0) > 0)
    t = Tokens()
    for r in read_jsonl_rows(folder / "metrics.jsonl"):
        groups, kept = r.get("groups_sampled") or 0, r.get("groups_kept") or 0
        p = (r.get("prompt_tokens") or 0) / groups if groups else 0.0
        if groups:
            t += generation(groups, p, groups * G, (r.get("gen_tokens") or 0) / (groups * G))
        seqs, loss_tokens = r.get("loss_seqs") or 0, r.get("loss_tokens") or 0
        if seqs:
            c = loss_tokens / seqs
            once = Tokens(train=kept * p + loss_tokens, train_ctx=kept * causal(p) + seqs * continued(p, c))
            t += once.scaled(mu) + Tokens(forward=once.train * extra, forward_ctx=once.train_ctx * extra)
    return t


@COUNTERS.register("generate")
def generate_tokens(folder: Path) -> Tokens:
    """``generate``'s raw samples: each problem's prompt prefilled once, then its samples."""
    return _per_problem(read_jsonl_rows(folder / "raw.jsonl"))


@COUNTERS.register("eval")
def eval_tokens(folder: Path) -> Tokens:
    """An evaluation's samples: each problem's prompt prefilled once, then its samples."""
    return _per_problem(read_jsonl_rows(folder / "samples.jsonl"))


@COUNTERS.register("worked")
def no_model(folder: Path) -> Tokens:
    """Stages that run no model (the task's worked solutions, data mixing)."""
    return Tokens()


def _per_problem(rows: list[dict[str, Any]]) -> Tokens:
    by_problem: dict[str, list[dict]] = {}
    for r in rows:
        by_problem.setdefault(r["problem_id"], []).append(r)
    t = Tokens()
    for samples in by_problem.values():
        p = next((r.get("prompt_tokens") for r in samples if r.get("prompt_tokens")), 0) or 0
        t += Tokens(forward=p, forward_ctx=causal(p))
        for r in samples:
            t += Tokens(forward=r["tokens"], forward_ctx=continued(p, r["tokens"]))
    return t


def problems_in(folder: Path) -> int:
    """Problems an eval stage answered (its samples.jsonl)."""
    return len({r["problem_id"] for r in read_jsonl_rows(Path(folder) / "samples.jsonl")})


class CountingGenerator:
    """A Generator wrapper that adds up what it is asked to do, from each completion's
    ``prompt_token_ids`` and ``token_ids`` (exact per call; a prompt prefilled once per call,
    shared by its n samples): ``prefill`` and ``generated`` since the last ``reset()``."""

    def __init__(self, backend):
        self.backend = backend
        self.name = getattr(backend, "name", "counted")
        self.tokenizer = getattr(backend, "tokenizer", None)
        self.max_batch = getattr(backend, "max_batch", 64)
        self.reset()

    def reset(self) -> None:
        self.prefill, self.generated = Tokens(), Tokens()

    @property
    def tokens(self) -> Tokens:
        return self.prefill + self.generated

    def generate(self, prompts, params):
        outs = self.backend.generate(prompts, params)
        for cs in outs:
            p = len(cs[0].prompt_token_ids) if cs else 0
            self.prefill += Tokens(forward=p, forward_ctx=causal(p))
            for c in cs:
                self.generated += Tokens(forward=c.num_tokens, forward_ctx=continued(p, c.num_tokens))
        return outs

    def sync_weights(self) -> None:
        self.backend.sync_weights()


def as_dict(t: Tokens) -> dict[str, float]:
    return {k: round(v, 1) for k, v in asdict(t).items()}
