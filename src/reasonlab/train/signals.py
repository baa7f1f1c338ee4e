"""Behaviour signals watched during R1-Zero training: the "aha moment" shows up as longer
responses and more reflection words (DeepSeek-AI 2025, R1 §2.2.4, Fig. 3)."""

from __future__ import annotations

import re

REFLECTION_WORDS = ("wait", "let me check", "let me verify", "verify", "double-check", "mistake",
                    "re-evaluate", "recheck", "let me re", "hmm", "actually")
_REFLECTION = re.compile(r"\b(" + "|".join(re.escape(w) for w in REFLECTION_WORDS) + r")\b",
                         re.IGNORECASE)


def has_reflection(text: str) -> bool:
    return bool(_REFLECTION.search(text))


def reflection_rate(texts: list[str]) -> float:
    return sum(map(has_reflection, texts)) / max(1, len(texts))
