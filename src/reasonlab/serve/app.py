"""The OpenAI-compatible app: ``/v1/models``, ``/v1/chat/completions``, ``/health``.

``create_app(backend, model_name)`` takes any ``Generator`` (the ``hf`` backend in production, a
tiny random model or a scripted mock in tests). Every backend call goes through one
``BackendWorker`` thread (see ``queue.py``); request handlers only validate, wait with a
timeout, and shape the answer.

Status codes: 400 bad field (OpenAI's error shape, ``param`` names the field), 401 missing or
wrong API key (only when one is configured, see ``auth.py``), 404 unknown model, 413 body too
large, 503 queue full (with ``Retry-After``), 504 timeout, 500 backend error.

Context (``context.py``): a prompt that fills the model's context window is a 400 with code
``context_length_exceeded`` naming the limit; ``max_tokens`` (asked, or the default) beyond what
the window leaves after the prompt is clamped to what is left, never a 500.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from reasonlab.serve import reasoning as reasoning_ext
from reasonlab.serve.auth import APIKeyAuth
from reasonlab.serve.config import ServeConfig
from reasonlab.serve.context import fit_completion
from reasonlab.serve.errors import APIError, BodyLimit, install
from reasonlab.serve.queue import BackendWorker, QueueFull
from reasonlab.serve.schemas import (ChatRequest, chat_response, finish_reason, new_id, prompt_tokens,
                                     usage)
from reasonlab.serve.stream import events


def check_limits(req: ChatRequest, model_name: str, cfg: ServeConfig) -> None:
    """Refuse what we cannot or will not do, naming the field; raises ``APIError``."""
    if req.model is not None and req.model != model_name:
        raise APIError(404, f"model {req.model!r} not found; this server serves {model_name!r}",
                       param="model", code="model_not_found")
    if (name := req.unsupported()) is not None:
        raise APIError(400, f"{name} is not supported by this server", param=name, code="unsupported_parameter")
    if len(req.messages) > cfg.max_messages:
        raise APIError(400, f"too many messages: {len(req.messages)} > {cfg.max_messages}", param="messages")
    total = 0
    for i, m in enumerate(req.messages):
        size = len(m.text())
        total += size
        if size > cfg.max_message_chars:
            raise APIError(400, f"messages[{i}].content has {size} characters; the limit is "
                           f"{cfg.max_message_chars}", param=f"messages[{i}].content")
    if total > cfg.max_prompt_chars:
        raise APIError(400, f"messages total {total} characters; the limit is {cfg.max_prompt_chars}",
                       param="messages")
    if req.n > cfg.max_n:
        raise APIError(400, f"n must be <= {cfg.max_n}, got {req.n}", param="n")
    limit = req.token_limit(cfg.default_tokens)
    if limit > cfg.max_tokens:
        field = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
        raise APIError(400, f"{field} must be <= {cfg.max_tokens}, got {limit}", param=field)
    if req.stop and len(req.stop) > cfg.max_stop:
        raise APIError(400, f"at most {cfg.max_stop} stop strings, got {len(req.stop)}", param="stop")


async def wait(future, timeout_s: float):
    """Await a worker future; cancel it (if it has not started) when the time is up."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
    except asyncio.TimeoutError:
        future.cancel()
        raise APIError(504, f"request timed out after {timeout_s:g} s (queue wait included)",
                       code="timeout") from None
    except reasoning_ext.StrategyRefused as exc:  # e.g. a bad combination of strategy options
        raise APIError(400, str(exc), param="reasoning") from None
    except Exception as exc:
        raise APIError(500, f"backend error: {type(exc).__name__}: {exc}", code="backend_error") from None


def submit(worker: BackendWorker, method: str, *args):
    try:
        return getattr(worker, method)(*args)
    except QueueFull as exc:
        raise APIError(503, str(exc), code="server_overloaded", headers={"Retry-After": "1"}) from None


def create_app(backend, model_name: str, config: ServeConfig | None = None, scorer=None) -> FastAPI:
    """An app serving ``backend`` as ``model_name``; ``scorer`` feeds strategies that need a
    reward model (best_of_n, beam, dvts, weighted_vote)."""
    cfg = config or ServeConfig()
    worker = BackendWorker(backend, cfg.max_concurrency, cfg.max_batch_rows)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(_app):
        yield
        worker.close()

    app = FastAPI(title="reasonlab", lifespan=lifespan)
    app.state.worker, app.state.config = worker, cfg
    install(app)
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)
    if cfg.api_key:  # added last, so it runs first: no unauthenticated byte reaches a route
        app.add_middleware(APIKeyAuth, api_key=cfg.api_key)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_name, "pending": worker.pending,
                "running": worker.running, "max_concurrency": cfg.max_concurrency}

    model_card = {"id": model_name, "object": "model", "created": created, "owned_by": "reasonlab"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        if model_id != model_name:
            raise APIError(404, f"model {model_id!r} not found", param="model", code="model_not_found")
        return model_card

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest):
        check_limits(req, model_name, cfg)
        rid = new_id()
        if req.reasoning is not None:
            return await _reasoning(req, rid)
        params = req.sampling(cfg.default_tokens)
        params = replace(params, max_new_tokens=fit_completion(backend, req.prompt(), params.max_new_tokens))
        completions = await wait(submit(worker, "submit_generate", req.prompt(), params), cfg.timeout_s)
        choices = [(c.text, finish_reason(c)) for c in completions]
        return _answer(req, rid, choices, usage(completions, prompt_tokens(completions)))

    async def _reasoning(req: ChatRequest, rid: str):
        scfg = reasoning_ext.search_config(req, cfg, has_scorer=scorer is not None)
        problem = reasoning_ext.make_problem(req, rid)
        scfg = replace(scfg, max_new_tokens=fit_completion(backend, problem.meta["messages"],
                                                           scfg.max_new_tokens))
        job = lambda: reasoning_ext.run(problem, backend, scorer, scfg)  # noqa: E731
        result, n_prompt = await wait(submit(worker, "submit", job), cfg.timeout_s)
        info = reasoning_ext.summary(result, scfg, bool(req.reasoning.options().get("return_candidates")))
        use = {"prompt_tokens": n_prompt, "completion_tokens": result.tokens,
               "total_tokens": n_prompt + result.tokens}
        return _answer(req, rid, [(result.text, "stop")], use, info)

    def _answer(req, rid, choices, use, info=None):
        if not req.stream:
            return chat_response(rid, model_name, choices, use, info)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        lines = events(rid, model_name, choices, cfg.stream_chunk_chars,
                       use if include_usage else None, info)
        return StreamingResponse(lines, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return app
