"""Server limits: what one request may ask for, and how long and how many may wait.

Every cap exists so that one client cannot starve the others or the machine: a request over a
cap is refused with a 4xx naming the field and the limit, never truncated silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServeConfig:
    max_concurrency: int = 16        # requests queued or running at once; more -> 503
    timeout_s: float = 600.0         # per request, queue wait included; over -> 504
    max_body_bytes: int = 1_000_000  # request body; over -> 413
    max_messages: int = 128
    max_message_chars: int = 64_000  # one message's content
    max_prompt_chars: int = 200_000  # all messages together
    max_n: int = 16                  # choices per request
    max_tokens: int = 4096           # cap on max_tokens / max_completion_tokens
    default_max_tokens: int = 512    # when the request gives none
    max_stop: int = 8
    max_reasoning_n: int = 64        # samples a reasoning strategy may draw
    max_batch_rows: int = 32         # rows of one merged generate call (see queue.py)
    stream_chunk_chars: int = 24     # piece size when streaming a finished text
    api_key: str | None = field(default=None, repr=False)  # None: no authentication (auth.py)

    @property
    def default_tokens(self) -> int:
        """Completion budget of a request that names none (never above the cap)."""
        return min(self.default_max_tokens, self.max_tokens)

    def __post_init__(self) -> None:
        for name in ("max_concurrency", "max_body_bytes", "max_messages", "max_message_chars",
                     "max_n", "max_tokens", "default_max_tokens", "max_reasoning_n",
                     "max_batch_rows", "stream_chunk_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServeConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.timeout_s <= 0:
            raise ValueError(f"ServeConfig.timeout_s must be > 0, got {self.timeout_s}")
