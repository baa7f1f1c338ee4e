"""SFT rows -> conversations whose assistant turns are in the R1 format.

Accepted rows (one JSON object per line; other keys such as ``problem_id`` are ignored):
- ``{"messages": [{"role": ..., "content": ...}, ...]}``: every assistant turn is a target.
- ``{"prompt": str | messages, "completion": str | messages}``: only the completion's assistant
  turns are targets; assistant turns inside a list prompt are history (context, no loss).
  A top-level ``reasoning_content`` belongs to a string completion.

Reasoning comes inline (``<think>…</think>`` at the start of the content, or ``…</think>`` with
the opening tag missing, as R1 distillations written after a ``<think>`` pre-fill look) or in a
``reasoning_content`` field (what OpenAI-compatible reasoning servers return). Both become

    <think>\\n{reasoning}\\n</think>\\n{answer}

with ``reasoning`` and ``answer`` stripped of surrounding whitespace (inner whitespace is kept).
A turn without reasoning stays ``{answer}`` (stripped). Giving reasoning twice, text before
``<think>``, an unclosed ``<think>`` or an empty answer is a bad row: we cannot say which tokens
the model should learn. Only ``role`` and ``content`` reach the chat template.

Each bad row is reported as ``file:line: reason``; nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reasonlab.errors import DataError

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Conversation:
    """One row, normalised. ``targets``: indices of the assistant messages that carry loss."""

    source: str  # "file:line"
    messages: tuple[dict[str, str], ...]
    targets: tuple[int, ...]

    def chars(self) -> int:
        return sum(len(m["content"]) for m in self.messages)


def to_conversation(src: str, row: dict[str, Any]) -> Conversation:
    """Normalise one parsed ``messages`` or ``prompt``/``completion`` row; raises
    DataError("file:line: reason") when it is unusable. Other schemas: ``sft_formats``."""
    try:
        msgs, targets = messages_targets(row)
    except ValueError as exc:
        raise DataError(f"{src}: {exc}") from None
    return Conversation(src, tuple(msgs), targets)


def messages_targets(row: dict[str, Any]) -> tuple[list[dict[str, str]], tuple[int, ...]]:
    """(normalised messages, indices of the target turns) of a ``messages`` or
    ``prompt``/``completion`` row; ValueError with the reason when it is unusable."""
    if "messages" in row:
        msgs = _messages(row["messages"], "messages")
        targets = tuple(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        if not targets:
            raise ValueError("conversation has no assistant turn")
        return msgs, targets
    if "prompt" in row and "completion" in row:
        return _prompt_completion(row)
    raise ValueError(f"expected 'messages' or 'prompt' + 'completion' (fields present: "
                     f"{', '.join(row) or 'none'})")


def _prompt_completion(row: dict[str, Any]) -> tuple[list[dict[str, str]], tuple[int, ...]]:
    prompt = row["prompt"]
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("empty prompt")
        head = [{"role": "user", "content": prompt}]
    else:
        head = _messages(prompt, "prompt")
    completion = row["completion"]
    if isinstance(completion, str):
        reasoning = row.get("reasoning_content")
        if not completion.strip() and not (isinstance(reasoning, str) and reasoning.strip()):
            raise ValueError("empty completion")
        tail = [{"role": "assistant", "content": r1_content(completion, reasoning, "completion")}]
    else:
        if row.get("reasoning_content") is not None:
            raise ValueError("top-level reasoning_content needs a string completion")
        tail = _messages(completion, "completion")
    targets = tuple(len(head) + i for i, m in enumerate(tail) if m["role"] == "assistant")
    if not targets:
        raise ValueError("completion has no assistant turn")
    return head + tail, targets


def _messages(value: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field}: expected a non-empty list of messages")
    out = []
    for i, m in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(m, dict):
            raise ValueError(f"{where}: expected an object with role and content")
        role = m.get("role")
        if not isinstance(role, str) or not role:
            raise ValueError(f"{where}: missing role")
        if role not in ROLES:
            raise ValueError(f"{where}: unknown role {role!r} (valid: {', '.join(ROLES)})")
        content = m.get("content")
        if role == "assistant":
            content = r1_content(content, m.get("reasoning_content"), where)
        elif not isinstance(content, str):
            raise ValueError(f"{where}: missing content" if content is None
                             else f"{where}: content must be a string")
        out.append({"role": role, "content": content})
    return out


def r1_content(content: Any, reasoning: Any, where: str) -> str:
    """``<think>\\n{reasoning}\\n</think>\\n{answer}`` from inline tags or ``reasoning_content``."""
    if content is None and isinstance(reasoning, str):
        content = ""
    if not isinstance(content, str):
        raise ValueError(f"{where}: missing content" if content is None
                         else f"{where}: content must be a string")
    if reasoning is not None and not isinstance(reasoning, str):
        raise ValueError(f"{where}: reasoning_content must be a string")
    text = content.strip()
    if reasoning is not None and reasoning.strip():
        if THINK_OPEN in text or THINK_CLOSE in text:
            raise ValueError(f"{where}: reasoning given twice (reasoning_content and <think> in content)")
        thought, answer = reasoning.strip(), text
    elif THINK_CLOSE in text or THINK_OPEN in text:
        thought, answer = _split_inline(text, where)
    else:
        thought, answer = None, text
    if not answer:
        raise ValueError(f"{where}: empty " + ("answer after </think>" if thought is not None else "content"))
    return answer if thought is None else f"{THINK_OPEN}\n{thought}\n{THINK_CLOSE}\n{answer}"


def _split_inline(text: str, where: str) -> tuple[str, str]:
    start = text.find(THINK_OPEN)
    end = text.find(THINK_CLOSE)
    if end < 0:
        raise ValueError(f"{where}: <think> is never closed")
    if start > 0 and start < end:
        raise ValueError(f"{where}: text before <think> cannot be put in the R1 format")
    body = text[len(THINK_OPEN):end] if start == 0 else text[:end]
    answer = text[end + len(THINK_CLOSE):].strip()
    if THINK_OPEN in body or THINK_OPEN in answer or THINK_CLOSE in answer:
        raise ValueError(f"{where}: more than one <think> block")
    return body.strip(), answer
