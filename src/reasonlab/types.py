"""Frozen dataclasses shared by every part: data flows task -> prompt -> backend -> verifier."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A prompt is either raw text (already templated) or chat messages [{"role", "content"}, ...].
Messages = list[dict[str, str]]
Prompt = str | Messages


def response_prefix(prompt: Prompt) -> str:
    """The assistant pre-fill a prompt ends with ('' for none or a raw-text prompt). Lives here,
    not in ``prompts``, because ``Sample.text`` needs it and ``prompts`` imports these types."""
    if isinstance(prompt, list) and prompt and prompt[-1].get("role") == "assistant":
        return prompt[-1]["content"]
    return ""


@dataclass(frozen=True)
class Problem:
    """One question with its reference answer. ``id`` is stable across runs (resume keys on it)."""

    id: str
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Completion:
    """One sampled continuation. ``logprobs[i]`` is the sampling log-prob of ``token_ids[i]``
    under the (temperature-scaled) distribution it was drawn from; None if the backend has none."""

    text: str
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[float, ...] | None = None
    finish_reason: str = "stop"  # "stop" (EOS or stop string) | "length"
    prompt_token_ids: tuple[int, ...] = ()

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass(frozen=True)
class Sample:
    """A completion attached to its problem and prompt: what rewards and verifiers score."""

    problem: Problem
    prompt: Prompt
    completion: Completion

    @property
    def text(self) -> str:
        """The whole assistant response: the prompt's assistant pre-fill, if any, + completion."""
        return response_prefix(self.prompt) + self.completion.text


@dataclass(frozen=True)
class Score:
    """A verdict: ``correct`` is None when the verifier cannot judge (skip, do not count as wrong)."""

    correct: bool | None
    extracted: str | None = None
    reward: float | None = None
