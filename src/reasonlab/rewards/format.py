"""Format rewards for the R1 template.

- ``format``: 1.0 for exactly one ``<think>...</think>`` followed by exactly one
  ``<answer>...</answer>`` and nothing else; 0.0 otherwise. Several answer blocks score 0: a
  known hack is to emit many answers and let a lenient checker find the right one.
- ``tag_count``: partial credit, 0.25 for each of the four tags present exactly once (as in
  open-r1's tag_count_reward). Order-blind: on SmolLM2-135M it led GRPO into the trap
  ``<think><answer>x</answer></think>`` (all four tags, wrong order, format reward 0).
- ``format_partial``: ordered partial credit that climbs toward the exact format: 0.25 for one
  closed think block, +0.25 for one ``<answer>`` after it, +0.25 for its ``</answer>``, +0.25 for
  nothing after that. Every step toward the format pays; the trap above earns only 0.25.
"""

from __future__ import annotations

from reasonlab.eval.metrics import r1_format_ok
from reasonlab.rewards.base import REWARDS
from reasonlab.types import Sample

TAGS = ("<think>", "</think>", "<answer>", "</answer>")


@REWARDS.register("format")
def format_reward(samples: list[Sample], **_) -> list[float | None]:
    return [1.0 if r1_format_ok(s.text) else 0.0 for s in samples]


@REWARDS.register("tag_count")
def tag_count(samples: list[Sample], **_) -> list[float | None]:
    return [sum(0.25 for t in TAGS if s.text.count(t) == 1) for s in samples]


def partial_format_score(text: str) -> float:
    def once(tag: str) -> bool:
        return text.count(tag) == 1

    if not (once("<think>") and once("</think>")) or text.index("<think>") > text.index("</think>"):
        return 0.0
    score, end_think = 0.25, text.index("</think>")
    if not once("<answer>") or text.index("<answer>") < end_think:
        return score
    score += 0.25
    if not once("</answer>") or text.index("</answer>") < text.index("<answer>"):
        return score
    score += 0.25
    if not text[text.index("</answer>") + len("</answer>"):].strip():
        score += 0.25
    return score


@REWARDS.register("format_partial")
def format_partial(samples: list[Sample], **_) -> list[float | None]:
    return [partial_format_score(s.text) for s in samples]
