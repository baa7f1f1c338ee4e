"""Server-sent events for ``stream: true``: ``data: {chat.completion.chunk}`` lines, then
``data: [DONE]``.

The ``Generator`` protocol returns finished completions only, so the server streams the
finished text in pieces (about ``chunk_chars`` characters, cut after whitespace): clients that
expect SSE work unchanged, but the first piece arrives when the whole generation is done, not
token by token. A side effect is that errors (timeout, overload) arrive as a normal HTTP error
before any event. Per choice: a role delta, content deltas, then an empty delta with
``finish_reason``; with ``stream_options.include_usage`` a last chunk with empty ``choices``
carries ``usage``, as OpenAI does.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Iterator

from reasonlab.serve.schemas import chunk, usage_chunk

_WORDS = re.compile(r"\S*\s*|\s+")


def pieces(text: str, chunk_chars: int) -> list[str]:
    """Split ``text`` into pieces of about ``chunk_chars`` characters, cut after whitespace;
    ``"".join(pieces(t, k)) == t``."""
    out, cur = [], ""
    for word in _WORDS.findall(text):
        if not word:
            continue
        while len(word) > chunk_chars:  # a very long word is cut anywhere
            if cur:
                out.append(cur)
                cur = ""
            out.append(word[:chunk_chars])
            word = word[chunk_chars:]
        if cur and len(cur) + len(word) > chunk_chars:
            out.append(cur)
            cur = ""
        cur += word
    if cur:
        out.append(cur)
    return out


def sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def events(rid: str, model: str, choices: list[tuple[str, str]], chunk_chars: int,
           usage_: dict[str, int] | None = None, reasoning: dict[str, Any] | None = None) -> Iterator[str]:
    """SSE lines for finished ``choices`` [(content, finish_reason)]; ``reasoning`` rides on the
    final chunk of choice 0."""
    created = int(time.time())
    for index, (text, finish) in enumerate(choices):
        yield sse(chunk(rid, model, created, index, {"role": "assistant", "content": ""}))
        for piece in pieces(text, chunk_chars):
            yield sse(chunk(rid, model, created, index, {"content": piece}))
        last = chunk(rid, model, created, index, {}, finish)
        if index == 0 and reasoning is not None:
            last["reasoning"] = reasoning
        yield sse(last)
    if usage_ is not None:
        yield sse(usage_chunk(rid, model, created, usage_))
    yield sse("[DONE]")
