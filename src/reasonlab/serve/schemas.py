"""Request and response shapes of the OpenAI chat-completions API, plus our ``reasoning`` extension.

Requests are validated with pydantic (errors become 400s in OpenAI's error shape, see
``errors.py``); responses are plain dicts built here, so their shape is visible in one place.
Sources: https://platform.openai.com/docs/api-reference/chat/create (object shapes).

Departures from OpenAI, on purpose:
- Unknown fields are ignored, as OpenAI does, but fields that would change the output and that we
  cannot honour (``logprobs``, ``tools``, penalties, non-text ``response_format``...) are refused
  with a 400 naming the field, rather than silently dropped.
- ``reasoning`` is our extension: a search strategy from ``reasonlab.search`` picks the answer.
- A final ``assistant`` message is a pre-fill that the model continues (as vLLM's
  ``continue_final_message``), matching the ``Generator`` protocol.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reasonlab.types import Completion, Messages, SamplingParams

MAX_SEED = 2**63 - 1  # seeds are [0, 2^63): what every backend (torch, vLLM, numpy) accepts


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class ReasoningSpec(BaseModel):
    """``"reasoning": {"strategy": "vote", "n": 8, ...}``; other keys go to the strategy config."""

    model_config = ConfigDict(extra="allow")
    strategy: str
    n: int | None = Field(default=None, ge=1)

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


# Fields OpenAI defines that we cannot honour; refused unless they carry their neutral value.
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "logprobs": (None, False), "top_logprobs": (None, 0), "tools": (None, []),
    "tool_choice": (None, "none", "auto"), "functions": (None, []), "function_call": (None, "none", "auto"),
    "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0), "logit_bias": (None, {}),
    "audio": (None,), "modalities": (None, ["text"]), "prediction": (None,),
}


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None  # None: the served model (as vLLM); OpenAI requires it
    messages: list[Message] = Field(min_length=1)
    n: int = Field(default=1, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)  # torch seeds are unsigned 64-bit
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: dict[str, Any] | None = None
    reasoning: ReasoningSpec | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, v):
        if isinstance(v, str):
            v = [v]
        if v is not None and any(not s for s in v):
            raise ValueError("stop strings must be non-empty")
        return v

    def unsupported(self) -> str | None:
        """Name of the first field set to a value we cannot honour, else None."""
        extra = self.model_extra or {}
        for name, neutral in UNSUPPORTED.items():
            if name in extra and extra[name] not in neutral:
                return name
        if self.response_format and self.response_format.get("type") not in (None, "text"):
            return "response_format"
        return None

    def token_limit(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default

    def sampling(self, default_max_tokens: int, n: int | None = None) -> SamplingParams:
        return SamplingParams(n=n or self.n, temperature=self.temperature, top_p=self.top_p,
                              max_new_tokens=self.token_limit(default_max_tokens),
                              stop=tuple(self.stop or ()), seed=self.seed)

    def prompt(self) -> Messages:
        """Chat messages for the backend (``developer`` is OpenAI's new name for ``system``)."""
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in self.messages]


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def finish_reason(completion: Completion) -> str:
    return "length" if completion.finish_reason == "length" else "stop"


def usage(completions: list[Completion], prompt_tokens: int, extra_completion: int = 0) -> dict[str, int]:
    done = sum(c.num_tokens for c in completions) + extra_completion
    return {"prompt_tokens": prompt_tokens, "completion_tokens": done, "total_tokens": prompt_tokens + done}


def prompt_tokens(completions: list[Completion]) -> int:
    return len(completions[0].prompt_token_ids) if completions else 0


def chat_response(rid: str, model: str, choices: list[tuple[str, str]], usage_: dict[str, int],
                  reasoning: dict[str, Any] | None = None) -> dict[str, Any]:
    """``choices``: (content, finish_reason) per choice, in index order."""
    out = {
        "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "system_fingerprint": None,
        "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                     "logprobs": None, "finish_reason": reason}
                    for i, (text, reason) in enumerate(choices)],
        "usage": usage_,
    }
    if reasoning is not None:
        out["reasoning"] = reasoning
    return out


def chunk(rid: str, model: str, created: int, index: int, delta: dict[str, Any],
          finish: str | None = None) -> dict[str, Any]:
    return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def usage_chunk(rid: str, model: str, created: int, usage_: dict[str, int]) -> dict[str, Any]:
    return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None, "choices": [], "usage": usage_}


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
