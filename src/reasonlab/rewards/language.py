"""Language consistency (DeepSeek-AI 2025, R1 §2.3.3): the share of the chain of thought written
in the target language, which R1 adds to stop CoT from mixing languages.

Heuristic (ours; the paper does not publish its counter): count letters by script. For "en" and
other Latin-script targets the share is Latin letters / all letters; for "zh" it is CJK
characters / (CJK + Latin letters). The CoT is the ``<think>`` block when present, else the
whole completion. No letters at all -> None (nothing to judge).
"""

from __future__ import annotations

import re

from reasonlab.rewards.base import REWARDS
from reasonlab.types import Sample

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def language_share(text: str, lang: str = "en") -> float | None:
    m = _THINK.search(text)
    cot = m.group(1) if m else text
    letters = [c for c in cot if c.isalpha()]
    if not letters:
        return None
    latin = sum(1 for c in letters if c.isascii())
    cjk = sum(1 for c in letters if _CJK.match(c))
    if lang == "zh":
        return cjk / max(1, cjk + latin)
    return latin / len(letters)


@REWARDS.register("language")
def language(samples: list[Sample], lang: str = "en", **_) -> list[float | None]:
    return [language_share(s.text, lang) for s in samples]
