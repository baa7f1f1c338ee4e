"""Language consistency (DeepSeek-AI 2025, R1 §2.3.3): "the proportion of target language words
in the CoT", which R1 adds to its reward so that chains of thought stop mixing languages.

Counting words (the paper does not publish its tokeniser; these rules are ours):
- each CJK ideograph or kana character is one word (Chinese and Japanese have no spaces, and
  one character is the usual unit of a word count);
- a run of Latin letters (accented ones too) is one word (``don't`` is one, via the apostrophe);
  single Latin letters are *not* words: they are variables (``x``, ``n``) in math, and would
  punish a Chinese chain of thought for writing ``x + y``;
- a run of two or more letters of any other script (Cyrillic, Greek, Hangul...) is one word; a
  lone letter is a symbol (``π``, ``θ``, ``Δ`` in an English proof are not Greek words);
- digits, symbols and LaTeX control words (``\\frac``, ``\\sqrt``) are notation, not language,
  and are removed first.
The share is target-language words / all words. The CoT is the ``<think>`` block when present
(an unclosed one runs to ``</think>`` or the end), else the whole text. No words -> None
(nothing to judge; a CoT of pure arithmetic is neither consistent nor mixed).
"""

from __future__ import annotations

import re

from reasonlab.rewards.base import REWARDS
from reasonlab.types import Sample

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)
_LATEX = re.compile(r"\\[A-Za-z]+")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# One CJK character, or a Latin run (2+ letters, inner apostrophes), or a run of 2+ other letters;
# "single" swallows lone letters of any script (symbols), which are not counted.
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"  # ASCII and accented Latin letters
_LETTER = rf"[^\W\d_{_CJK}{_LATIN}]"
_WORD = re.compile(rf"(?P<cjk>[{_CJK}])|(?P<latin>[{_LATIN}]{{2,}}(?:'[{_LATIN}]+)*)"
                   rf"|(?P<other>{_LETTER}{{2,}})|(?P<single>[{_LATIN}]|{_LETTER})")
LATIN_LANGS = ("en", "fr", "de", "es", "it", "pt", "nl")
CJK_LANGS = ("zh", "ja")


def chain_of_thought(text: str) -> str:
    m = _THINK.search(text)
    return m.group(1) if m else text


def word_counts(text: str) -> dict[str, int]:
    """Words by script: ``{"cjk": n, "latin": n, "other": n}`` (rules in the module docstring)."""
    counts = {"cjk": 0, "latin": 0, "other": 0}
    for m in _WORD.finditer(_LATEX.sub(" ", text)):
        if m.lastgroup != "single":
            counts[m.lastgroup] += 1
    return counts


def language_share(text: str, lang: str = "en") -> float | None:
    """Share of the CoT's words written in ``lang`` (Latin-script languages or zh/ja)."""
    if lang in LATIN_LANGS:
        script = "latin"
    elif lang in CJK_LANGS:
        script = "cjk"
    else:
        raise ValueError(f"language reward: lang must be one of {', '.join(LATIN_LANGS + CJK_LANGS)}, "
                         f"not {lang!r}")
    counts = word_counts(chain_of_thought(text))
    total = sum(counts.values())
    return None if total == 0 else counts[script] / total


@REWARDS.register("language")
def language(samples: list[Sample], lang: str = "en", **_) -> list[float | None]:
    return [language_share(s.text, lang) for s in samples]
