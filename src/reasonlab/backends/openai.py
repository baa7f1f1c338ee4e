"""The ``openai`` backend: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, OpenAI...).

Chat prompts go to /v1/chat/completions, raw-text prompts to /v1/completions. Requests run
concurrently on a thread pool (``concurrency``); 429, 5xx and connection errors are retried with
exponential backoff; other 4xx fail at once with the server's message. Token ids are not
returned by the API: ``token_ids`` is empty and ``num_tokens`` falls back to the usage count.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from reasonlab.backends.base import BACKENDS
from reasonlab.types import Completion, Prompt, SamplingParams

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIError(RuntimeError):
    pass


@dataclass(frozen=True)
class APICompletion(Completion):
    usage_tokens: int = 0

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids) or self.usage_tokens


class OpenAIGenerator:
    name = "openai"

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1", api_key: str | None = None,
                 concurrency: int = 8, max_retries: int = 5, timeout_s: float = 120.0,
                 backoff_s: float = 0.5):
        self.model, self.concurrency, self.max_retries = model, concurrency, max_retries
        self.backoff_s = backoff_s
        key = api_key or os.environ.get("OPENAI_API_KEY", "none")
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s,
                                   headers={"Authorization": f"Bearer {key}"})

    def sync_weights(self) -> None:
        """Remote weights are the server's business: nothing to do here."""

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
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
            body.update(messages=prompt, logprobs=True)
            if prompt and prompt[-1].get("role") == "assistant":  # a pre-fill to continue (vLLM, SGLang)
                body.update(continue_final_message=True, add_generation_prompt=False)
            data = self._post("/chat/completions", body)
        else:
            body.update(prompt=prompt, logprobs=1)
            data = self._post("/completions", body)
        usage = data.get("usage") or {}
        per_choice = (usage.get("completion_tokens") or 0) // max(1, len(data.get("choices", [])))
        out = []
        for choice in sorted(data.get("choices", []), key=lambda c: c.get("index", 0)):
            text = (choice["message"].get("content") or "") if chat else choice.get("text", "")
            out.append(APICompletion(text=text, logprobs=_logprobs(choice, chat),
                                     finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
                                     usage_tokens=per_choice))
        return out

    def _post(self, path: str, body: dict) -> dict:
        for attempt in range(self.max_retries + 1):
            try:
                r = self.client.post(path, json=body)
            except httpx.TransportError as exc:
                if attempt == self.max_retries:
                    raise OpenAIError(f"{self.client.base_url}{path}: {exc}") from exc
            else:
                if r.status_code < 400:
                    return r.json()
                if r.status_code not in RETRY_STATUS or attempt == self.max_retries:
                    raise OpenAIError(f"{self.client.base_url}{path}: HTTP {r.status_code}: {r.text[:500]}")
            time.sleep(self.backoff_s * 2 ** attempt)
        raise AssertionError("unreachable")


def _logprobs(choice: dict, chat: bool) -> tuple[float, ...] | None:
    lp = choice.get("logprobs")
    if not lp:
        return None
    if chat:
        content = lp.get("content") or []
        return tuple(float(t["logprob"]) for t in content)
    return tuple(float(x) for x in lp.get("token_logprobs") or [])


@BACKENDS.register("openai")
def openai_backend(model: str, **options) -> OpenAIGenerator:
    return OpenAIGenerator(model, **options)
