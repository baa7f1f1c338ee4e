"""The ``openai`` backend: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, OpenAI, our
own ``reasonlab serve``...).

Chat prompts go to /v1/chat/completions, raw-text prompts to /v1/completions. Requests run
concurrently on a thread pool of ``concurrency`` threads (a bound on requests in flight from one
``generate`` call; callers that run several calls at once divide their budget themselves).

Failures that a retry can cure are retried up to ``max_retries`` times with exponential backoff
(``backoff_s * 2**attempt``, capped at ``max_backoff_s``, with jitter so concurrent workers do
not retry in lockstep; a ``Retry-After`` header is honoured up to the cap): HTTP 408/409/429/5xx,
connection errors and timeouts (a stalled server), and a 2xx whose body is not the JSON shape we
asked for (a proxy's HTML page, a torn body). Other 4xx fail at once with the server's message.
``stats`` counts requests, retries and each kind of failure, for run summaries.

Reasoning servers (DeepSeek-R1 behind vLLM or the DeepSeek API) return the chain of thought
apart from the answer, as ``message.reasoning_content`` (or ``message.reasoning``); it is kept
apart in ``APICompletion.reasoning`` and ``text`` is the answer only. Token ids are not returned
by the API: ``token_ids`` is empty and ``num_tokens`` falls back to the usage count. Logprobs
are asked for only with ``logprobs=True``: several servers (ours among them) refuse them.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from reasonlab.backends.base import BACKENDS
from reasonlab.types import Completion, Prompt, SamplingParams

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIError(RuntimeError):
    pass


class _Malformed(Exception):
    """A 2xx answer we cannot read; retried like a 5xx."""


@dataclass(frozen=True)
class APICompletion(Completion):
    usage_tokens: int = 0
    reasoning: str | None = None  # the server's separate chain of thought, if it sent one

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids) or self.usage_tokens


class OpenAIGenerator:
    name = "openai"

    def __init__(self, model: str | None, base_url: str = "http://127.0.0.1:8000/v1", api_key: str | None = None,
                 concurrency: int = 8, max_retries: int = 5, timeout_s: float = 120.0,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, logprobs: bool = False):
        self.concurrency, self.max_retries, self.logprobs = concurrency, max_retries, logprobs
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        key = api_key or os.environ.get("OPENAI_API_KEY", "none")
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s,
                                   headers={"Authorization": f"Bearer {key}"})
        self.stats: Counter = Counter()
        self._lock = threading.Lock()
        self._model = model

    @property
    def model(self) -> str:
        """The served model; when none was named, the first one the server lists."""
        if self._model is None:
            data = self._request("GET", "/models", None)
            try:
                self._model = str(data["data"][0]["id"])
            except (KeyError, IndexError, TypeError):
                raise OpenAIError(f"{self.client.base_url}/models lists no model; name one with --model") from None
        return self._model

    def sync_weights(self) -> None:
        """Remote weights are the server's business: nothing to do here."""

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        if len(prompts) == 1:
            return [self._one(prompts[0], params)]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda p: self._one(p, params), prompts))

    def _one(self, prompt: Prompt, params: SamplingParams) -> list[Completion]:
        body = {"model": self.model, "n": params.n, "temperature": params.temperature,
                "top_p": params.top_p, "max_tokens": params.max_new_tokens}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        chat = not isinstance(prompt, str)
        if chat:
            body["messages"] = prompt
            if self.logprobs:
                body["logprobs"] = True
            if prompt and prompt[-1].get("role") == "assistant":  # a pre-fill to continue (vLLM, SGLang)
                body.update(continue_final_message=True, add_generation_prompt=False)
            return self._request("POST", "/chat/completions", body, parse=lambda d: _choices(d, True))
        body["prompt"] = prompt
        if self.logprobs:
            body["logprobs"] = 1
        return self._request("POST", "/completions", body, parse=lambda d: _choices(d, False))

    def _count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def _request(self, method: str, path: str, body: dict | None, parse=lambda d: d):
        where = f"{self.client.base_url}{path}"
        for attempt in range(self.max_retries + 1):
            self._count("requests")
            retry_after = None
            try:
                r = self.client.request(method, path, json=body)
                if r.status_code < 400:
                    try:
                        return parse(r.json())
                    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
                        raise _Malformed(f"unreadable answer ({type(exc).__name__}): {r.text[:200]!r}") from None
                if r.status_code not in RETRY_STATUS:
                    raise OpenAIError(f"{where}: HTTP {r.status_code}: {r.text[:500]}")
                kind, error = f"http_{r.status_code}", f"HTTP {r.status_code}: {r.text[:500]}"
                retry_after = _seconds(r.headers.get("retry-after"))
            except httpx.TimeoutException as exc:
                kind, error = "timeout", repr(exc)
            except httpx.TransportError as exc:
                kind, error = "connection", repr(exc)
            except _Malformed as exc:
                kind, error = "malformed", str(exc)
            self._count(kind)
            if attempt == self.max_retries:
                raise OpenAIError(f"{where}: gave up after {attempt + 1} attempts; last: {error}")
            self._count("retries")
            wait = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * random.uniform(0.5, 1.0)
            time.sleep(min(self.max_backoff_s, max(wait, retry_after or 0.0)))
        raise AssertionError("unreachable")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _choices(data: dict, chat: bool) -> list[Completion]:
    """Completions from a response body; KeyError/TypeError on a wrong shape (-> retried)."""
    choices = data["choices"]
    if not isinstance(choices, list) or not choices:
        raise ValueError("no choices")
    usage = data.get("usage") or {}
    per_choice = (usage.get("completion_tokens") or 0) // len(choices)
    out = []
    for choice in sorted(choices, key=lambda c: c.get("index", 0)):
        if chat:
            msg = choice["message"]
            text = msg.get("content") or ""
            reasoning = msg.get("reasoning_content") or msg.get("reasoning") or None
        else:
            text, reasoning = choice["text"], None
        if not isinstance(text, str) or not isinstance(reasoning, (str, type(None))):
            raise TypeError("content is not text")
        out.append(APICompletion(text=text, logprobs=_logprobs(choice, chat),
                                 finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
                                 usage_tokens=per_choice, reasoning=reasoning))
    return out


def _logprobs(choice: dict, chat: bool) -> tuple[float, ...] | None:
    lp = choice.get("logprobs")
    if not lp:
        return None
    if chat:
        content = lp.get("content") or []
        return tuple(float(t["logprob"]) for t in content)
    return tuple(float(x) for x in lp.get("token_logprobs") or [])


@BACKENDS.register("openai")
def openai_backend(model: str | None = None, **options) -> OpenAIGenerator:
    return OpenAIGenerator(model, **options)
