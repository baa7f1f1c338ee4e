"""The ``Generator`` protocol: every strategy, evaluator and trainer samples through it, so none
of them calls transformers, vLLM or HTTP directly.

Contract
- ``generate(prompts, params) -> list[list[Completion]]``: one inner list per prompt with
  ``params.n`` completions. A prompt is raw text (already templated) or chat messages, which the
  backend renders with the model's chat template (add_generation_prompt=True); a final
  assistant message is a pre-fill the completion continues (its text is not repeated).
- Completions carry token ids and per-token sampling logprobs where the backend has them
  (``hf`` and ``vllm`` do; ``openai`` when the server returns them).
- ``sync_weights()``: trainers call it after each optimizer step; a backend that caches a
  converted copy of the weights refreshes it there (no-op otherwise).
- Finished reasons: "stop" (EOS or a stop string; the stop string is kept in the text),
  "length" (hit max_new_tokens).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from reasonlab.registry import Registry
from reasonlab.types import Completion, Prompt, SamplingParams


@runtime_checkable
class Generator(Protocol):
    name: str

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]: ...

    def sync_weights(self) -> None: ...


# Each entry is a factory ``fn(model: str, **options) -> Generator``; ``backends.factory`` builds them.
BACKENDS: Registry = Registry("backend")
