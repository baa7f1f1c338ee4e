"""The ``reasoning`` extension: a chat request answered by a search strategy from ``reasonlab.search``.

``"reasoning": {"strategy": "vote", "n": 8, "max_new_tokens": 256, ...}``; keys other than
``strategy`` are ``SearchConfig`` fields, checked strictly (an unknown key is a 400 naming the
valid ones). The chat becomes ``Problem(question=<last user message>, meta={"messages": ...})``
and the strategy sees it through the ``chat`` prompt format, i.e. the messages verbatim (a
client may choose another format, e.g. ``"prompt": "r1"``, which rebuilds the prompt from the
last user message alone).

Sampling fields of the request (temperature, top_p, max_tokens, seed) fill the matching
``SearchConfig`` fields when the client set them; keys inside ``reasoning`` win. With no seed
at all a random one is drawn, so repeated requests differ, as with plain sampling (the search
default of 0 suits benchmarks, not a server).

Only registered strategy names are accepted: the registry's ``"pkg.mod:fn"`` import-path
fallback would let any HTTP client import and call arbitrary code.
"""

from __future__ import annotations

import json
import os
from typing import Any

from reasonlab.config import ConfigError, from_dict
from reasonlab.serve.config import ServeConfig
from reasonlab.serve.errors import APIError
from reasonlab.serve.schemas import MAX_SEED, ChatRequest
from reasonlab.types import Problem

# request field -> SearchConfig field
_FROM_REQUEST = {"temperature": "temperature", "top_p": "top_p", "max_tokens": "max_new_tokens",
                 "max_completion_tokens": "max_new_tokens", "seed": "seed"}
# SearchConfig fields that are token counts, capped by ServeConfig.max_tokens
_TOKEN_FIELDS = ("max_new_tokens", "step_tokens", "think_budget", "min_think")
_SERVER_ONLY = ("return_candidates",)  # options for the server, not the strategy
NEEDS_SCORER = ("best_of_n", "weighted_vote", "beam", "dvts")


class StrategyRefused(ValueError):
    """A strategy rejected its configuration (it raises ValueError before sampling)."""


def strategy_names() -> list[str]:
    from reasonlab.search import STRATEGIES

    return STRATEGIES.names()


def search_config(req: ChatRequest, limits: ServeConfig, has_scorer: bool = False):
    """Validate ``req.reasoning`` into a ``SearchConfig``; raises ``APIError(400)``."""
    from reasonlab.search import SearchConfig

    spec = req.reasoning
    valid = strategy_names()
    if spec.strategy not in valid:
        raise APIError(400, f"unknown reasoning strategy {spec.strategy!r}; valid: {', '.join(valid)}",
                       param="reasoning.strategy", code="unknown_strategy")
    if spec.strategy in NEEDS_SCORER and not has_scorer:
        raise APIError(400, f"strategy {spec.strategy!r} needs a reward-model scorer; start the server "
                       "with --scorer DIR (from `reasonlab train prm`)", param="reasoning.strategy")
    if req.n != 1:
        raise APIError(400, "n must be 1 with reasoning (a strategy returns one answer); "
                       "use reasoning.n for the number of samples", param="n")
    if req.stop:
        raise APIError(400, "stop is not supported with reasoning", param="stop")
    data: dict[str, Any] = {"strategy": spec.strategy, "prompt": "chat"}
    data.update({dst: getattr(req, src) for src, dst in _FROM_REQUEST.items() if src in req.model_fields_set
                 and getattr(req, src) is not None})
    if spec.n is not None:
        data["n"] = spec.n
    data.update({k: v for k, v in spec.options().items() if k not in _SERVER_ONLY})
    data.setdefault("seed", int.from_bytes(os.urandom(4), "little") >> 1)
    data.setdefault("max_new_tokens", limits.default_tokens)  # as for a plain request
    try:
        cfg = from_dict(SearchConfig, data)
    except ConfigError as exc:
        raise APIError(400, f"reasoning.{exc}", param="reasoning") from None
    _check_caps(cfg, limits, set(data))
    return cfg


def _check_caps(cfg, limits: ServeConfig, given: set[str]) -> None:
    """Caps on what the client set (the strategy defaults are modest)."""
    from reasonlab.prompts import PROMPTS

    if not 1 <= cfg.n <= limits.max_reasoning_n:
        raise APIError(400, f"reasoning.n must be in [1, {limits.max_reasoning_n}], got {cfg.n}",
                       param="reasoning.n")
    for name in (f for f in _TOKEN_FIELDS if f in given):
        value = getattr(cfg, name)
        if not 0 <= value <= limits.max_tokens:
            raise APIError(400, f"reasoning.{name} must be in [0, {limits.max_tokens}], got {value}",
                           param=f"reasoning.{name}")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise APIError(400, f"reasoning.seed must be in [0, {MAX_SEED}], got {cfg.seed}",
                       param="reasoning.seed")
    if given & {"max_steps", "step_tokens"} and cfg.max_steps * cfg.step_tokens > 4 * limits.max_tokens:
        raise APIError(400, f"reasoning.max_steps * step_tokens exceeds {4 * limits.max_tokens}",
                       param="reasoning.max_steps")
    if cfg.prompt not in PROMPTS:
        raise APIError(400, f"unknown reasoning.prompt {cfg.prompt!r}; valid: {', '.join(PROMPTS.names())}",
                       param="reasoning.prompt")


def make_problem(req: ChatRequest, rid: str) -> Problem:
    messages = req.prompt()
    users = [m["content"] for m in messages if m["role"] == "user"]
    return Problem(id=rid, question=users[-1] if users else messages[-1]["content"], answer="",
                   meta={"messages": messages})


def run(problem: Problem, backend, scorer, cfg) -> tuple[Any, int]:
    """Runs on the worker thread: the strategy's Result and the prompt's token count (0 if the
    backend cannot tokenize)."""
    from reasonlab.search import get_strategy

    try:
        result = get_strategy(cfg.strategy)([problem], backend, scorer, cfg)[0]
    except ValueError as exc:  # strategies refuse a bad configuration this way
        raise StrategyRefused(str(exc)) from exc
    encode = getattr(backend, "encode", None)
    prompt_tokens = len(encode(problem.meta["messages"])) if callable(encode) else 0
    return result, prompt_tokens


def summary(result, cfg, return_candidates: bool) -> dict[str, Any]:
    """The ``reasoning`` object of the response: what was chosen and what it cost."""
    out = {"strategy": cfg.strategy, "n": cfg.n, "answer": result.answer,
           "candidates": len(result.candidates), "tokens": result.tokens, "seed": cfg.seed,
           **{k: _jsonable(v) for k, v in result.extra.items()}}
    if return_candidates:
        out["candidate_texts"] = list(result.candidates)
    return out


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)

