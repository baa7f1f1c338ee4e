"""Format rewards for the R1 template.

- ``format``: 1.0 for exactly one ``<think>...</think>`` followed by exactly one
  ``<answer>...</answer>`` and nothing else; 0.0 otherwise. Several answer blocks score 0: a
  known hack is to emit many answers and let a lenient checker find the right one.
- ``tag_count``: partial credit, 0.25 for each of the four tags present exactly once (as in
  open-r1's tag_count_reward). A dense signal that helps a tiny model find the format at all.
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
