"""Format rewards for the R1 template.

- ``format``: 1.0 for exactly one ``<think>...</think>`` followed by exactly one
  ``<answer>...</answer>`` and nothing else, *with real thinking inside* (see below); 0.0
  otherwise. Several answer blocks score 0: a known hack is to emit many answers and let a
  lenient checker find the right one.
- ``tag_count``: partial credit, 0.25 for each of the four tags present exactly once (as in
  open-r1's tag_count_reward). Order-blind: on SmolLM2-135M it led GRPO into the trap
  ``<think><answer>x</answer></think>`` (all four tags, wrong order, format reward 0).
- ``format_partial``: ordered partial credit that climbs toward the exact format: 0.25 for one
  closed think block, +0.25 for one ``<answer>`` after it, +0.25 for its ``</answer>``, +0.25 for
  nothing after that. Every step toward the format pays; the trap above earns only 0.25.

Empty thinking pays nothing. In a ``make demo`` run every held-out answer of the final
checkpoint was ``<think>\\n</think>\\n<answer>N</answer>``: the format reward paid in full for
skipping the reasoning, the opposite of what R1-Zero shows. So the think block must hold at
least ``MIN_THINK_WORDS`` words (``eval.metrics.thinking_nonempty``; a word: a run of letters
or digits, or one CJK character); "<think>.</think>" and "<think>5</think>" fail, "<think>7+5=12</think>" (three numbers) passes.
Tags inside the block are not words: the R1-Zero demo, once empty thinking stopped paying, learned
``<think>\n<answer>23</answer>\n</think>`` (the answer *inside* the think block, three "words" with
the tag names), and ``tag_count`` paid for it.
All three rewards apply it: ``format`` (``eval.metrics.well_formed``, the one format check that
trace filters, recipes, eval and GRPO share) and ``format_partial`` pay 0 for an empty block, and
``tag_count`` does not count the think tags of an empty block.
"""

from __future__ import annotations

from reasonlab.eval.metrics import thinking_nonempty, well_formed
from reasonlab.rewards.base import REWARDS
from reasonlab.types import Sample

TAGS = ("<think>", "</think>", "<answer>", "</answer>")


@REWARDS.register("format")
def format_reward(samples: list[Sample], **_) -> list[float | None]:
    return [1.0 if well_formed(s.text) else 0.0 for s in samples]


@REWARDS.register("tag_count")
def tag_count(samples: list[Sample], **_) -> list[float | None]:
    out = []
    for s in samples:
        tags = TAGS if thinking_nonempty(s.text) else TAGS[2:]
        out.append(sum(0.25 for t in tags if s.text.count(t) == 1))
    return out


def partial_format_score(text: str) -> float:
    def once(tag: str) -> bool:
        return text.count(tag) == 1

    if not (once("<think>") and once("</think>")) or text.index("<think>") > text.index("</think>"):
        return 0.0
    if not thinking_nonempty(text):
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
