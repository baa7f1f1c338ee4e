"""R1's quality filters on verified traces (DeepSeek-AI 2025, §2.3.3: "we have filtered out
chain-of-thought with mixed languages, long paragraphs, and code blocks"), plus our format check.

Each filter is a switch in ``FilterConfig`` and each rejection is counted (``pipeline.py``).
Thresholds are ours; the paper gives none:
- ``format``: the response is exactly one think block with real thinking then one answer block
  (``eval.metrics.well_formed``, what the format reward pays): SFT on empty thinking teaches a
  model to skip reasoning.
- ``language``: the language reward (share of target-language words in the chain of thought,
  ``rewards.language``) below ``min_language_share``; a CoT with no words is kept.
- ``code_blocks``: a fenced code block (```) inside the chain of thought of a non-code task.
- ``long_paragraphs``: a paragraph (text between blank lines) of the chain of thought longer
  than ``max_paragraph_chars``: the wall-of-text degeneration of long samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reasonlab.eval.metrics import well_formed
from reasonlab.rewards.language import language_share

_FENCE = re.compile(r"^\s*```", re.MULTILINE)
_PARAGRAPHS = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class FilterConfig:
    format: bool = True
    language: bool = True
    lang: str = "en"
    min_language_share: float = 0.95
    code_blocks: bool = True
    long_paragraphs: bool = True
    max_paragraph_chars: int = 3000
    dedup: bool = True
    near_dup: bool = True
    near_dup_threshold: float = 0.8
    near_dup_ngram: int = 3
    decontam: bool = True
    decontam_ngram: int = 8


def has_code_block(cot: str) -> bool:
    return bool(_FENCE.search(cot))


def longest_paragraph(cot: str) -> int:
    return max((len(p.strip()) for p in _PARAGRAPHS.split(cot)), default=0)


def quality_reason(response: str, cot: str, cfg: FilterConfig, code_task: bool) -> str | None:
    """The first quality filter ``response`` fails (its name), or None when it passes all."""
    if cfg.format and not well_formed(response):
        return "format"
    if cfg.language:
        share = language_share(f"<think>{cot}</think>", cfg.lang)
        if share is not None and share < cfg.min_language_share:
            return "language"
    if cfg.code_blocks and not code_task and has_code_block(cot):
        return "code_blocks"
    if cfg.long_paragraphs and longest_paragraph(cot) > cfg.max_paragraph_chars:
        return "long_paragraphs"
    return None
