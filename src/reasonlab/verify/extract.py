"""Answer extraction with one documented precedence.

1. The LAST ``<answer>...</answer>`` block (R1 format). A final ``<answer>`` left unclosed at the
   end of the text counts too (generation often stops *at* the ``</answer>`` stop string, which
   backends strip); an empty unclosed one is ignored. If the block holds a ``\\boxed{}``, that
   box's content; else the block, stripped.
2. Else the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces balanced; ``\\boxed 5`` too).
3. Else a GSM8K-style ``#### x`` line.
4. Else the last number in the text (``1,234``, ``-7.5``, ``3/4``), with its power if it has
   one: ``10^{10^{10}}`` is one answer, not the ``10`` innermost in its exponent (nor ``2**10``
   the ``10``).
Surrounding whitespace, ``$`` and a trailing period are stripped. Returns None when nothing is
found. Input is cut to its last ``MAX_CHARS`` characters first: answers live at the end, and
regexes over megabytes of degenerate output would cost time. Never raises.
"""

from __future__ import annotations

import re

MAX_CHARS = 20_000
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_CLOSE = re.compile(r"</answer>", re.IGNORECASE)
_HASH = re.compile(r"####\s*([^\n]+)")
# Thousands-separated numbers first, so "1,234" is one number but "3, 5" is two.
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_BOX = re.compile(r"\\(?:boxed|fbox)\b\s*")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}``, braces balanced.

    ``\\boxed 5`` (no braces, valid LaTeX for one token) gives ``5``. An unbalanced (truncated)
    last box gives None rather than a guess.
    """
    matches = list(_BOX.finditer(text))
    if not matches:
        return None
    i = matches[-1].end()
    if i >= len(text):
        return None
    if text[i] != "{":
        token = re.match(r"[^\s$]+", text[i:])
        return token.group(0) if token else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


def count_numbers(text: str | None, fractions: bool = True) -> int:
    """How many numbers ``text`` holds: ``1,234`` and ``-3.5`` count once, ``3/4`` once with
    ``fractions`` and twice without."""
    text = text or ""
    return len(_NUMBER.findall(text if fractions else text.replace("/", " / ")))


def last_number(text: str) -> str | None:
    """The last number in ``text`` together with its exponent (``^{...}``, ``^7``, ``**7``), so
    that the numbers inside an exponent are never taken for the answer."""
    last, pos = None, 0
    while (m := _NUMBER.search(text, pos)) is not None:
        end = _power_end(text, m.end())
        last, pos = text[m.start():end], end
    return last


def _power_end(text: str, i: int) -> int:
    """End of the power that follows a number ending at ``i`` (``i`` itself when none); a power
    whose braces never close runs to the end of the text."""
    j = i
    while j < len(text) and text[j] == " ":
        j += 1
    if text.startswith("^", j):
        j += 1
    elif text.startswith("**", j):
        j += 2
    else:
        return i
    while j < len(text) and text[j] == " ":
        j += 1
    if text.startswith("{", j):
        depth = 0
        for k in range(j, len(text)):
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            if depth == 0:
                return k + 1
        return len(text)
    m = _NUMBER.match(text, j)
    return _power_end(text, m.end()) if m else i


def _last_answer_block(text: str) -> str | None:
    """Content of the last closed ``<answer>`` block, or of a trailing unclosed one."""
    opens = list(_OPEN.finditer(text))
    if not opens:
        return None
    last_open = opens[-1]
    tail = text[last_open.end():]
    if not _CLOSE.search(tail) and tail.strip():
        return tail  # stopped at "</answer>": the closing tag itself was cut off
    blocks = _ANSWER.findall(text)
    return blocks[-1] if blocks else None


def _clean(ans: str) -> str | None:
    """Strip whitespace, ``$`` and one trailing period (``$18$.`` -> ``18``)."""
    ans = ans.strip().strip("$").strip()
    if ans.endswith(".") and not ans.endswith(".."):
        ans = ans[:-1].rstrip().strip("$").strip()
    return ans or None


def extract_answer(text: str | None) -> str | None:
    """The final answer in a completion, by the precedence in the module docstring."""
    try:
        if not text or not isinstance(text, str):
            return None
        text = text[-MAX_CHARS:]
        block = _last_answer_block(text)
        if block is not None:
            boxed = last_boxed(block)
            return _clean(boxed if boxed is not None else block)
        boxed = last_boxed(text)
        if boxed is not None:
            return _clean(boxed)
        hashes = _HASH.findall(text)
        if hashes:
            return _clean(hashes[-1])
        number = last_number(text)
        return _clean(number) if number is not None else None
    except Exception:  # noqa: BLE001 - extraction never crashes a run
        return None
