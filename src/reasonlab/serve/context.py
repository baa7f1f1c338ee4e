"""What fits in the model's context: refuse an over-long prompt, clamp the completion budget.

A backend with no notion of context (a mock, a remote server) is not checked: ``context_window``
is None. A backend may state its window as a ``context_length`` attribute; otherwise, for the ``hf``
backend, it is the model's ``max_position_embeddings``, capped at the positions the fast sampler
precomputes (the default of ``FastLlama.from_hf``, read from its signature so the two never
disagree).

Policy, as documented in ``app.py``: a prompt of ``window`` tokens or more is a 400 with code
``context_length_exceeded`` (OpenAI's), naming the limit; a ``max_tokens`` (asked or default)
larger than what is left after the prompt is clamped to what is left, and the answer ends with
``finish_reason: "length"`` as it would at any other budget. We clamp rather than refuse because
clients routinely send a generic cap (e.g. 4096) without knowing the window of the model.
"""

from __future__ import annotations

import inspect

from reasonlab.serve.errors import APIError
from reasonlab.types import Messages


def fast_max_positions() -> int | None:
    try:
        from reasonlab.backends.fast_llama import FastLlama
    except ImportError:
        return None
    default = inspect.signature(FastLlama.from_hf).parameters["max_positions"].default
    return default if isinstance(default, int) else None


def context_window(backend) -> int | None:
    """Tokens of prompt + completion the backend can handle, or None when it does not say."""
    stated = getattr(backend, "context_length", None)
    if isinstance(stated, int) and stated > 0:
        return stated
    config = getattr(getattr(backend, "model", None), "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        cap = fast_max_positions() if getattr(backend, "use_fast", False) else None
        return min(positions, cap) if cap else positions
    return None


def fit_completion(backend, messages: Messages, wanted: int, param: str = "messages") -> int:
    """The completion budget to use: ``wanted`` clamped to what the window leaves after the
    prompt. Raises APIError(400, context_length_exceeded) when the prompt alone fills it."""
    window = context_window(backend)
    encode = getattr(backend, "encode", None)
    if window is None or not callable(encode):
        return wanted
    used = len(encode(messages))
    if used >= window:
        raise APIError(400, f"This model's maximum context length is {window} tokens; your messages "
                       f"are {used} tokens, leaving no room for a completion. Shorten the messages.",
                       param=param, code="context_length_exceeded")
    return min(wanted, window - used)
