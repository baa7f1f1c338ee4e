"""An LLM judge through any ``Generator`` backend (local model or OpenAI-compatible server).

The judge sees the question, the reference answer when there is one, and the response, and must
end with "VERDICT: yes" or "VERDICT: no" (or a bare yes/no). Unparsable verdicts give None,
which the trainer excludes rather than counting as wrong.

From YAML the judge is a backend spec in the reward options (GRPO passes
``cfg.rewards.options["judge"]`` to this function as keyword arguments)::

    rewards:
      weights: {judge: 1.0}
      options:
        judge: {backend: openai, model: qwen2.5-7b, base_url: "http://127.0.0.1:8000/v1",
                api_key_env: JUDGE_KEY, criterion: "...", backend_options: {concurrency: 4}}

``backend`` is any registered backend (``hf``, ``vllm``, ``openai``) or an import path
``pkg.mod:factory``; it is built once per distinct spec and reused on every step (a local judge
model is loaded once, not per batch). From Python, ``judge_backend=`` takes a built Generator.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

from reasonlab.rewards.base import REWARDS
from reasonlab.types import SamplingParams, Sample

JUDGE_PROMPT = (
    "You are grading a response to a question.\nQuestion: {question}\nReference answer: "
    "{reference}\nResponse: {response}\n\n{criterion}\nEnd your reply with 'VERDICT: yes' or "
    "'VERDICT: no'."
)
DEFAULT_CRITERION = "Is the response's final answer correct and is its reasoning sound?"
_VERDICT = re.compile(r"verdict\s*:\s*(yes|no)\b|^\s*(yes|no)[.!]?\s*$", re.IGNORECASE | re.MULTILINE)
_BUILT: dict[str, Any] = {}
_LOCK = threading.Lock()


def parse_verdict(text: str) -> float | None:
    matches = _VERDICT.findall(text)
    if not matches:
        return None
    word = next(w for w in matches[-1] if w)
    return 1.0 if word.lower() == "yes" else 0.0


def backend_from_spec(backend: str, model: str | None = None, base_url: str | None = None,
                      api_key_env: str | None = None, backend_options: dict | None = None):
    """Build (once per spec) the judge's Generator from YAML-level fields, via ``make_backend``."""
    from reasonlab.backends.factory import make_backend

    options = dict(backend_options or {})
    if base_url:
        options["base_url"] = base_url
    if api_key_env:
        if not os.environ.get(api_key_env):
            raise ValueError(f"judge reward: api_key_env {api_key_env!r} is not set in the environment")
        options["api_key"] = os.environ[api_key_env]
    if model is None and backend != "openai":
        raise ValueError(f"judge reward: backend {backend!r} needs a model")
    key = json.dumps([backend, model, base_url, api_key_env, backend_options], sort_keys=True, default=str)
    with _LOCK:
        if key not in _BUILT:
            _BUILT[key] = make_backend(backend, model, **options)
        return _BUILT[key]


def judge_texts(backend, items: list[tuple[str, str, str]], criterion: str = DEFAULT_CRITERION,
                max_new_tokens: int = 256) -> list[float | None]:
    """Verdicts for (question, reference, response) triples; ``generate`` traces reuse this."""
    prompts = [[{"role": "user", "content": JUDGE_PROMPT.format(
        question=q, reference=ref or "(none)", response=resp[-4000:], criterion=criterion)}]
        for q, ref, resp in items]
    outs = backend.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    return [parse_verdict(o[0].text) for o in outs]


@REWARDS.register("judge")
def judge(samples: list[Sample], judge_backend=None, backend: str | None = None, model: str | None = None,
          base_url: str | None = None, api_key_env: str | None = None, backend_options: dict | None = None,
          criterion: str = DEFAULT_CRITERION, max_new_tokens: int = 256, **_) -> list[float | None]:
    if judge_backend is None:
        if backend is None:
            raise ValueError("the judge reward needs a backend: options {judge: {backend: hf|openai|..., "
                             "model: ..., base_url: ...}} (or judge_backend= from Python)")
        judge_backend = backend_from_spec(backend, model, base_url, api_key_env, backend_options)
    items = [(s.problem.question, s.problem.answer, s.text) for s in samples]
    return judge_texts(judge_backend, items, criterion, max_new_tokens)
