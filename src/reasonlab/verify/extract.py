"""Answer extraction with one documented precedence.

1. The LAST ``<answer>...</answer>`` block (R1 format). If it holds a ``\\boxed{}``, that box's
   content; otherwise the block's content, stripped.
2. Else the last ``\\boxed{...}`` (nested braces handled).
3. Else a GSM8K-style ``#### x`` line.
4. Else the last number in the text.
A ``$``, surrounding whitespace and a trailing period are stripped. Returns None when nothing
is found. Input is cut to its last ``MAX_CHARS`` characters first: answers live at the end.
"""

from __future__ import annotations

import re

MAX_CHARS = 20_000
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_HASH = re.compile(r"####\s*([^\n]+)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}``, braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


def _clean(ans: str) -> str | None:
    ans = ans.strip().strip("$").strip()
    if ans.endswith(".") and not ans.endswith(".."):
        ans = ans[:-1].rstrip()
    return ans or None


def extract_answer(text: str | None) -> str | None:
    if not text:
        return None
    text = text[-MAX_CHARS:]
    blocks = _ANSWER.findall(text)
    if blocks:
        inner = blocks[-1]
        boxed = last_boxed(inner)
        return _clean(boxed if boxed is not None else inner)
    boxed = last_boxed(text)
    if boxed is not None:
        return _clean(boxed)
    hashes = _HASH.findall(text)
    if hashes:
        return _clean(hashes[-1])
    numbers = _NUMBER.findall(text)
    if numbers:
        return _clean(numbers[-1])
    return None
