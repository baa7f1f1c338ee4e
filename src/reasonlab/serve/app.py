"""FastAPI app: /v1/models, /v1/chat/completions (streaming too), /health.

The model is not thread-safe, so one worker thread runs generation while requests wait in a
bounded queue (full -> 503). Each request has a time limit (-> 504; the running generation
still finishes in the worker, and its result is dropped). Streaming sends the finished text in
SSE chunks: the Generator protocol has no token streaming yet.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from reasonlab.serve.schemas import ChatRequest, error
from reasonlab.types import Problem, SamplingParams


@dataclass
class ServeConfig:
    max_body_bytes: int = 1 << 20
    max_messages: int = 64
    max_prompt_chars: int = 32_000
    max_n: int = 16
    max_tokens: int = 2048
    default_max_tokens: int = 256
    queue_size: int = 16
    timeout_s: float = 120.0


def create_app(backend, model_name: str, cfg: ServeConfig | None = None, scorer=None) -> FastAPI:
    cfg = cfg or ServeConfig()
    app = FastAPI(title="reasonlab")
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasonlab-gen")
    waiting = threading.BoundedSemaphore(cfg.queue_size)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size and int(size) > cfg.max_body_bytes:
            return JSONResponse(error(f"request body over {cfg.max_body_bytes} bytes"), status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(x) for x in first.get("loc", [])[1:]) or None
        return JSONResponse(error(f"{param}: {first.get('msg', 'invalid request')}", param=param), status_code=400)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0,
                                            "owned_by": "reasonlab"}]}

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest):
        problem = _check(req, cfg)
        if isinstance(problem, JSONResponse):
            return problem
        if not waiting.acquire(blocking=False):
            return JSONResponse(error("server busy: request queue is full", "server_error", code="queue_full"),
                                status_code=503)
        try:
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(worker, _run, backend, scorer, req, problem, cfg)
            choices, usage, extra = await asyncio.wait_for(job, timeout=cfg.timeout_s)
        except asyncio.TimeoutError:
            return JSONResponse(error(f"generation took longer than {cfg.timeout_s} s", "timeout_error",
                                      code="timeout"), status_code=504)
        except ValueError as exc:
            return JSONResponse(error(str(exc)), status_code=400)
        finally:
            waiting.release()
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if req.stream:
            return StreamingResponse(_sse(rid, created, model_name, choices), media_type="text/event-stream")
        body = {"id": rid, "object": "chat.completion", "created": created, "model": model_name,
                "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                             "finish_reason": reason} for i, (text, reason) in enumerate(choices)],
                "usage": usage}
        if extra is not None:
            body["reasoning"] = extra
        return body

    return app


def _check(req: ChatRequest, cfg: ServeConfig):
    if len(req.messages) > cfg.max_messages:
        return JSONResponse(error(f"messages: at most {cfg.max_messages}", param="messages"), status_code=400)
    if sum(len(m.content) for m in req.messages) > cfg.max_prompt_chars:
        return JSONResponse(error(f"messages: over {cfg.max_prompt_chars} characters", param="messages"),
                            status_code=400)
    n = req.reasoning.n if req.reasoning else req.n
    if n > cfg.max_n:
        return JSONResponse(error(f"n: at most {cfg.max_n}", param="n"), status_code=400)
    max_tokens = req.max_completion_tokens or req.max_tokens or cfg.default_max_tokens
    if max_tokens > cfg.max_tokens:
        return JSONResponse(error(f"max_tokens: at most {cfg.max_tokens}", param="max_tokens"), status_code=400)
    if req.reasoning:
        from reasonlab.registry import RegistryError
        from reasonlab.search.base import get_strategy

        try:
            get_strategy(req.reasoning.strategy)
        except RegistryError as exc:
            return JSONResponse(error(str(exc), param="reasoning.strategy"), status_code=400)
    messages = [m.model_dump() for m in req.messages]
    question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    return Problem(id=uuid.uuid4().hex[:12], question=question, answer="", meta={"messages": messages})


def _run(backend, scorer, req: ChatRequest, problem: Problem, cfg: ServeConfig):
    max_tokens = req.max_completion_tokens or req.max_tokens or cfg.default_max_tokens
    if req.reasoning is None:
        params = SamplingParams(n=req.n, temperature=req.temperature, top_p=req.top_p, max_new_tokens=max_tokens,
                                stop=req.stops(), seed=req.seed)
        outs = backend.generate([problem.meta["messages"]], params)[0]
        tokens = sum(c.num_tokens for c in outs)
        prompt_tokens = len(outs[0].prompt_token_ids) if outs else 0
        return ([(c.text, "length" if c.finish_reason == "length" else "stop") for c in outs],
                {"prompt_tokens": prompt_tokens, "completion_tokens": tokens, "total_tokens": prompt_tokens + tokens},
                None)
    from reasonlab.search.base import SearchConfig, get_strategy

    r = req.reasoning
    sc = SearchConfig(strategy=r.strategy, n=r.n, prompt="chat", max_new_tokens=r.max_tokens or max_tokens,
                      temperature=r.temperature if r.temperature is not None else (req.temperature or 0.8),
                      seed=req.seed or 0)
    result = get_strategy(r.strategy)([problem], backend, scorer, sc)[0]
    extra = {"strategy": r.strategy, "n": r.n, "answer": result.answer, "tokens": result.tokens,
             "candidates": len(result.candidates), **{k: v for k, v in result.extra.items() if k != "scores"}}
    usage = {"prompt_tokens": 0, "completion_tokens": result.tokens, "total_tokens": result.tokens}
    return [(result.text, "stop")], usage, extra


def _sse(rid: str, created: int, model: str, choices, chunk_chars: int = 16):
    def event(delta: dict, index: int, finish=None) -> str:
        return "data: " + json.dumps({"id": rid, "object": "chat.completion.chunk", "created": created,
                                      "model": model, "choices": [{"index": index, "delta": delta,
                                                                   "finish_reason": finish}]}) + "\n\n"

    for i, (text, reason) in enumerate(choices):
        yield event({"role": "assistant", "content": ""}, i)
        for j in range(0, len(text), chunk_chars):
            yield event({"content": text[j:j + chunk_chars]}, i)
        yield event({}, i, reason)
    yield "data: [DONE]\n\n"
