"""Is a predicted answer equivalent to the reference? Never raises, never hangs.

Order of checks (cheap first):
1. normalised string equality;
2. both parse as numbers (thousands separators ``1,000``/``1 000``, ``$``, ``%``, ``\\frac{a}{b}``,
   ``a/b``, ``\\text{}`` wrappers) -> equal within relative tolerance 1e-6; a number against a
   number is decisive and costs microseconds (no process hop);
3. prose against a number (the answer holds words, e.g. ``the answer to 3 - 3 is 3``): the
   last number in the prose decides. math-verify would pick *some* expression out of the
   sentence (here ``3 - 3`` = 0 and call it right), and a policy under RL learns such hacks;
4. an unevaluated arithmetic expression against a number (``9 + 3 + 44``, ``9 + 3 + 44 = 9 + 3 +
   44``): wrong, since computing the value is the task; only the right-hand side of a final ``=``
   counts, and it must be a number (``18 - 5 = 13`` is 13). R1-Zero on three-operand arithmetic
   learned to restate the question as its answer within 20 steps, and math-verify evaluated it;
5. otherwise math-verify (symbolic LaTeX/expressions) in a separate worker process with a hard
   wall-clock limit (``mv_worker.py``): sympy can take minutes on hostile input, and neither
   ``signal.alarm`` (main thread only) nor threads can stop it, but a process can be killed.
Returns True/False, or None when it cannot judge (input too long, timeout, worker failure).

Control characters (NUL, escape, ...; not tab or newline) never reach a parser: ``"1\x002"``
is not the number 1 with junk after it (math-verify read it so), it is a string, and it can
only equal the same string.
"""

from __future__ import annotations

import math
import re

from reasonlab.verify.mv_worker import verify_in_worker

MAX_CHARS = 1000
REL_TOL = 1e-6

_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}$")
_FRAC_SHORT = re.compile(r"^(-?)\\[dt]?frac(\d)(\d)$")
_LATEX_CMD = re.compile(r"\\[a-zA-Z]+")
_WORD = re.compile(r"[a-zA-Z]{2,}")
_LAST_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?(?!.*\d)", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PLAIN_NUM = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$", re.IGNORECASE)
_ARITH = re.compile(r"[-+*/×÷^().,\d\s=]+")  # digits, operators, brackets, '=': nothing else
_OPERATION = re.compile(r"\d\s*[-+*/×÷^]\s*[-+(]*\s*\d")


def normalize(ans: str) -> str:
    """Strip formatting that never changes a value: ``\\text{}``, ``$``, spacing commands,
    ``\\left``/``\\right``, degrees, a trailing period; collapse whitespace."""
    s = ans.strip()
    s = _TEXT.sub(r"\1", s)
    s = s.replace("\\!", "").replace("\\,", "").replace("\\ ", "").replace("\\left", "")
    s = s.replace("\\right", "").replace("\\$", "").replace("$", "").replace("^\\circ", "")
    s = s.replace("^{\\circ}", "").replace("\\%", "%")
    s = s.replace("\u2212", "-")  # unicode minus
    s = s.strip().rstrip(".").strip()
    s = re.sub(r"\s+", " ", s)
    return s


def to_number(ans: str) -> float | None:
    """Parse plain numbers, thousands separators, percentages and simple fractions."""
    s = normalize(ans)
    if s.endswith("%"):
        s = s[:-1].rstrip()
    if re.fullmatch(r"[-+]?\d{1,3}([, ]\d{3})+(\.\d+)?", s):  # 1,000 and 1 000
        s = s.replace(",", "").replace(" ", "")
    s = re.sub(r"\s*([-+/{}])\s*", r"\1", s)  # "1 / 2", "- 3"
    m = _FRAC.match(s) or _FRAC_SHORT.match(s)
    if m:
        sign, a, b = m.groups()
        return _div(a, b, sign)
    if s.count("/") == 1:
        a, b = s.split("/")
        if _PLAIN_NUM.match(a) and _PLAIN_NUM.match(b):
            return _div(a, b, "")
    if _PLAIN_NUM.match(s):
        try:
            return float(s)
        except ValueError:
            return None
    return None


def _div(a: str, b: str, sign: str) -> float | None:
    try:
        value = float(a) / float(b)
    except (ValueError, ZeroDivisionError):
        return None
    return -value if sign else value


def is_equivalent(pred: str | None, ref: str | None, *, timeout_s: float = 2.0) -> bool | None:
    """True/False when judged, None when it cannot judge. A missing (None/blank) prediction is
    wrong; a reference or prediction over ``MAX_CHARS`` characters, a timeout (``timeout_s``, the
    LaTeX path only) or a worker failure gives None. Plain numbers never leave this process."""
    try:
        if pred is None or (isinstance(pred, str) and not normalize(pred)):
            return False  # no answer is a wrong answer
        if ref is None or len(pred) > MAX_CHARS or len(ref) > MAX_CHARS:
            return None
        p, r = normalize(pred), normalize(ref)
        if p == r or p.lower() == r.lower():
            return True
        if _CONTROL.search(p) or _CONTROL.search(r):
            return False
        pn, rn = to_number(p), to_number(r)
        if pn is not None and rn is not None:
            return math.isclose(pn, rn, rel_tol=REL_TOL, abs_tol=1e-9)
        if rn is not None and re.fullmatch(r"[-+\d.,\s]+", p):
            return False  # a malformed number against a number: wrong, no need for sympy
        if rn is not None and _ARITH.fullmatch(p) and _OPERATION.search(p):
            value = to_number(p.rsplit("=", 1)[-1])
            return value is not None and math.isclose(value, rn, rel_tol=REL_TOL, abs_tol=1e-9)
        if rn is not None and _WORD.search(_LATEX_CMD.sub(" ", p)):
            last = _LAST_NUM.search(p.replace(",", ""))
            value = to_number(last.group(0)) if last else None
            return value is not None and math.isclose(value, rn, rel_tol=REL_TOL, abs_tol=1e-9)
        return verify_in_worker(p, r, timeout_s)
    except Exception:  # noqa: BLE001 - a verifier never raises
        return None
