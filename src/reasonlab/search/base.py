"""Inference-time scaling strategies share one signature:

    fn(problems: list[Problem], backend: Generator, scorer: Scorer | None, cfg: SearchConfig) -> list[Result]

They reach the model only through the ``Generator`` protocol (hf, vllm or openai backends) and
report every token they generated, discarded candidates included, so accuracy is always shown
against its cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonlab.registry import Registry

STRATEGIES: Registry = Registry("search strategy")


@dataclass
class SearchConfig:
    strategy: str = "vote"
    n: int = 8  # samples (vote, best_of_n) or total beams (beam, dvts)
    prompt: str = "cot"
    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    aggregation: str = "last"  # PRM step scores -> one score: last | min | product
    beam_width: int = 4  # beam/dvts: candidates expanded per kept beam
    max_steps: int = 8  # beam/dvts: reasoning steps
    step_delimiter: str = "\n\n"
    step_tokens: int = 64  # beam/dvts: max tokens per step
    think_budget: int = 128  # budget: thinking tokens before the answer is forced
    min_think: int = 0  # budget: append "Wait" while the thinking is shorter than this
    max_waits: int = 2


@dataclass
class Result:
    problem_id: str
    answer: str | None
    text: str
    tokens: int  # all tokens generated for this problem
    candidates: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def get_strategy(name: str):
    import reasonlab.search  # noqa: F401  (fills the registry)

    return STRATEGIES.get(name)
