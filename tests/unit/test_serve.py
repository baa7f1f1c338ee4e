"""`reasonlab serve`: a live uvicorn server on loopback, called with the official openai client.

Backends: a recording mock (exact checks of what reaches the Generator), a blocking mock
(timeouts, queue limits, batching), and a tiny random Llama through the real hf backend.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import uvicorn

from reasonlab.serve import ServeConfig, create_app
from reasonlab.serve.queue import BackendWorker, QueueFull
from reasonlab.serve.stream import pieces
from reasonlab.types import Completion, SamplingParams

from live_server import live  # tests/support: the one loopback server helper

MODEL = "toy-model"


def client(url: str, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=kw.pop("timeout", 20), **kw)


class Recording:
    """Answers "echo:<last message> #<i>" (or ``script(prompt, i)``); records every call."""

    name = "recording"

    def __init__(self, script=None, delay: float = 0.0):
        self.script = script or (lambda prompt, i: f"echo: {prompt[-1]['content']} #{i}")
        self.delay = delay
        self.calls: list[tuple[list, SamplingParams]] = []
        self.active = self.max_active = 0

    def generate(self, prompts, params):
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.calls.append((prompts, params))
        time.sleep(self.delay)
        self.active -= 1
        out = []
        for p in prompts:
            texts = [self.script(p, i) for i in range(params.n)]
            out.append([Completion(text=t, token_ids=tuple(range(len(t.split()))), prompt_token_ids=(1, 2, 3),
                                   finish_reason="length" if i == 1 else "stop") for i, t in enumerate(texts)])
        return out

    def sync_weights(self):
        pass


class Blocking(Recording):
    """``generate`` waits until ``release`` is set (the test controls when work finishes)."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def generate(self, prompts, params):
        self.entered.set()
        assert self.release.wait(20), "test never released the backend"
        return super().generate(prompts, params)


@pytest.fixture(scope="module")
def mock_server():
    backend = Recording(script=_vote_script)
    cfg = ServeConfig(max_n=4, max_tokens=64, max_messages=4, max_message_chars=200,
                      max_body_bytes=4000, max_reasoning_n=8, stream_chunk_chars=5)
    with live(create_app(backend, MODEL, cfg)) as url:
        yield url, backend


def _vote_script(prompt, i):
    """Plain requests echo; "vote" questions answer 4 on samples 0, 2, 3 and 5 on the others."""
    question = prompt[-1]["content"]
    if question.startswith("vote"):
        return f"so the answer is \\boxed{{{5 if i in (1, 4) else 4}}} (sample {i})"
    return f"echo: {question} #{i}"


def test_chat_completion_shape_and_params_reach_backend(mock_server):
    url, backend = mock_server
    messages = [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hello"}]
    r = client(url).chat.completions.create(model=MODEL, messages=messages, temperature=0.5, top_p=0.9,
                                            max_tokens=7, stop="##", seed=3)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == MODEL
    assert [c.index for c in r.choices] == [0]
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content == "echo: hello #0"
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 3, 6)
    prompts, params = backend.calls[-1]
    assert prompts == [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]]
    assert params == SamplingParams(n=1, temperature=0.5, top_p=0.9, max_new_tokens=7, stop=("##",), seed=3)
    r2 = client(url).chat.completions.create(model=MODEL, messages=messages, max_completion_tokens=9,
                                             stop=["a", "b"])
    assert backend.calls[-1][1].max_new_tokens == 9 and backend.calls[-1][1].stop == ("a", "b")
    assert r2.choices[0].message.content == "echo: hello #0"


def test_n_choices(mock_server):
    url, _ = mock_server
    r = client(url).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], n=2)
    assert [(c.index, c.message.content, c.finish_reason) for c in r.choices] == [
        (0, "echo: hi #0", "stop"), (1, "echo: hi #1", "length")]
    assert r.usage.completion_tokens == 6


def test_streaming_reassembles_every_choice(mock_server):
    url, _ = mock_server
    stream = client(url).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "a longer message here"}], n=2, stream=True,
        stream_options={"include_usage": True})
    text, finish, usage_seen, deltas = {0: "", 1: ""}, {}, None, 0
    for ch in stream:
        assert ch.object == "chat.completion.chunk"
        if ch.usage is not None:
            usage_seen = ch.usage
        for c in ch.choices:
            text[c.index] += c.delta.content or ""
            deltas += 1
            if c.finish_reason:
                finish[c.index] = c.finish_reason
    assert text == {0: "echo: a longer message here #0", 1: "echo: a longer message here #1"}
    assert finish == {0: "stop", 1: "length"}
    assert deltas > 6  # really in pieces (chunk size 5 chars)
    assert usage_seen.completion_tokens == 12  # 6 words per choice


def test_raw_sse_lines_end_with_done(mock_server):
    url, _ = mock_server
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True}
    r = httpx.post(url + "/v1/chat/completions", json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    lines = [ln for ln in r.text.split("\n") if ln]
    assert all(ln.startswith("data: ") for ln in lines) and lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_reasoning_vote_via_extra_body(mock_server):
    url, backend = mock_server
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "vote: 2+2?"}]
    r = client(url).chat.completions.create(model=MODEL, messages=msgs, seed=11, extra_body={
        "reasoning": {"strategy": "vote", "n": 5, "max_new_tokens": 20, "return_candidates": True}})
    data = r.to_dict()
    assert "\\boxed{4}" in r.choices[0].message.content
    info = data["reasoning"]
    assert info["strategy"] == "vote" and info["answer"] == "4" and info["votes"] == 3
    assert info["candidates"] == 5 and len(info["candidate_texts"]) == 5 and info["seed"] == 11
    assert info["tokens"] == r.usage.completion_tokens > 0
    prompts, params = backend.calls[-1]
    assert prompts == [msgs]  # the "chat" prompt format: the messages verbatim
    assert (params.n, params.max_new_tokens, params.seed) == (5, 20, 11)


def test_reasoning_stream_carries_info(mock_server):
    url, _ = mock_server
    stream = client(url).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "vote please"}], stream=True,
        extra_body={"reasoning": {"strategy": "vote", "n": 3}})
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "\\boxed{4}" in content
    assert [c.to_dict()["reasoning"]["answer"] for c in chunks if "reasoning" in c.to_dict()] == ["4"]


def test_models_and_health(mock_server):
    url, _ = mock_server
    c = client(url)
    assert [m.id for m in c.models.list()] == [MODEL]
    assert c.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("other")
    health = httpx.get(url + "/health").json()
    assert health["status"] == "ok" and health["model"] == MODEL


@pytest.mark.parametrize("kwargs, status, param, words", [
    ({"temperature": 5}, 400, "temperature", "less than or equal to 2"),
    ({"n": 9}, 400, "n", "n must be <= 4"),
    ({"max_tokens": 65}, 400, "max_tokens", "max_tokens must be <= 64"),
    ({"model": "gpt-9"}, 404, "model", "not found"),
    ({"messages": []}, 400, "messages", "at least 1"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role", "Input should be"),
    ({"messages": [{"role": "user", "content": "y" * 201}]}, 400, "messages[0].content", "limit is 200"),
    ({"messages": [{"role": "user", "content": "y"}] * 5}, 400, "messages", "too many messages"),
    ({"logprobs": True}, 400, "logprobs", "not supported"),
    ({"stop": ["a"] * 9}, 400, "stop", "at most 8"),
    ({"extra_body": {"reasoning": {"strategy": "nope"}}}, 400, "reasoning.strategy", "valid: "),
    ({"extra_body": {"reasoning": {"strategy": "os:system"}}}, 400, "reasoning.strategy", "valid: "),
    ({"extra_body": {"reasoning": {"strategy": "vote", "wat": 1}}}, 400, "reasoning", "wat: unknown key"),
    ({"extra_body": {"reasoning": {"strategy": "vote", "n": 9}}}, 400, "reasoning.n", "[1, 8]"),
    ({"extra_body": {"reasoning": {"strategy": "best_of_n"}}}, 400, "reasoning.strategy", "needs a reward"),
    ({"n": 2, "extra_body": {"reasoning": {"strategy": "vote"}}}, 400, "n", "n must be 1 with reasoning"),
])
def test_bad_requests_get_openai_errors(mock_server, kwargs, status, param, words):
    url, _ = mock_server
    args = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **kwargs}
    with pytest.raises(openai.APIStatusError) as info:
        client(url).chat.completions.create(**args)
    err = info.value
    assert err.status_code == status
    body = err.response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert body["param"] == param and words in body["message"], body
    if "nope" in json.dumps(kwargs):
        assert "vote" in body["message"] and "best_of_n" in body["message"]


def test_malformed_and_oversized_bodies(mock_server):
    url, _ = mock_server
    r = httpx.post(url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    big = {"model": MODEL, "messages": [{"role": "user", "content": "z" * 5000}]}
    r = httpx.post(url + "/v1/chat/completions", json=big)
    assert r.status_code == 413 and "4000 bytes" in r.json()["error"]["message"]

    def chunked():  # no Content-Length: the limit counts bytes as they arrive
        yield json.dumps(big).encode()

    r = httpx.post(url + "/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.get(url + "/v1/nothing")
    assert r.status_code == 404 and "error" in r.json()


def test_timeout_gives_504_and_cancels_queued_work():
    backend = Blocking()
    with live(create_app(backend, MODEL, ServeConfig(timeout_s=0.3))) as url:
        try:
            c = client(url)
            msgs = [{"role": "user", "content": "slow"}]
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(c.chat.completions.create, model=MODEL, messages=msgs)
                assert backend.entered.wait(5)
                with pytest.raises(openai.APIStatusError) as queued:  # waits behind the first
                    c.chat.completions.create(model=MODEL, messages=msgs, seed=1)
                with pytest.raises(openai.APIStatusError) as running:
                    first.result()
            assert queued.value.status_code == running.value.status_code == 504
            assert "timed out after 0.3 s" in queued.value.response.json()["error"]["message"]
        finally:
            backend.release.set()
        deadline = time.time() + 5
        while httpx.get(url + "/health").json()["pending"] and time.time() < deadline:
            time.sleep(0.02)
        assert len(backend.calls) == 1  # the queued request was dropped, never generated
        assert c.chat.completions.create(model=MODEL, messages=msgs).choices[0].message.content == "echo: slow #0"


def test_full_queue_gives_503_with_retry_after():
    backend = Blocking()
    with live(create_app(backend, MODEL, ServeConfig(max_concurrency=1))) as url:
        c = client(url)
        msgs = [{"role": "user", "content": "q"}]
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(c.chat.completions.create, model=MODEL, messages=msgs)
            assert backend.entered.wait(5)
            try:
                with pytest.raises(openai.APIStatusError) as info:
                    c.chat.completions.create(model=MODEL, messages=msgs)
            finally:
                backend.release.set()
            assert first.result().choices[0].message.content == "echo: q #0"
        assert info.value.status_code == 503 and info.value.response.headers["retry-after"] == "1"
        assert "max-concurrency 1" in info.value.response.json()["error"]["message"]


def test_concurrent_requests_all_answered_and_merged_into_one_batch():
    backend = Blocking()
    with live(create_app(backend, MODEL)) as url:
        c = client(url)
        asks = [f"question {i}" for i in range(8)]
        ask = lambda q: c.chat.completions.create(model=MODEL, max_tokens=5,  # noqa: E731
                                                  messages=[{"role": "user", "content": q}])
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(ask, asks[0])]
            assert backend.entered.wait(5)  # the first is running; the rest will queue behind it
            futures += [pool.submit(ask, q) for q in asks[1:]]
            deadline = time.time() + 10
            while httpx.get(url + "/health").json()["pending"] < 8 and time.time() < deadline:
                time.sleep(0.01)
            backend.release.set()
            answers = [f.result().choices[0].message.content for f in futures]
    assert answers == [f"echo: {q} #0" for q in asks]
    # the first call ran alone; the 7 that waited behind it went to the backend as one batch
    assert [len(prompts) for prompts, _ in backend.calls] == [1, 7]
    assert backend.max_active == 1  # never two generate calls at once


def test_worker_never_merges_seeded_or_different_params():
    backend = Blocking()
    worker = BackendWorker(backend, capacity=3)
    p = [{"role": "user", "content": "a"}]
    try:
        futs = [worker.submit_generate(p, SamplingParams(seed=1)), worker.submit_generate(p, SamplingParams(seed=1)),
                worker.submit_generate(p, SamplingParams(max_new_tokens=3))]
        with pytest.raises(QueueFull):
            worker.submit_generate(p, SamplingParams())
        backend.release.set()
        assert all(len(f.result(5)) == 1 for f in futs)
        assert [len(prompts) for prompts, _ in backend.calls] == [1, 1, 1]
    finally:
        backend.release.set()
        worker.close()


def test_pieces_rejoin_and_respect_size():
    text = "a short one, then averyveryverylongwordthatmustbecut and\n\nnew  lines "
    out = pieces(text, 8)
    assert "".join(out) == text and all(len(p) <= 8 for p in out) and len(out) > 5
    assert pieces("", 8) == []


@pytest.fixture(scope="module")
def hf_backend():
    from reasonlab.backends.hf import HFGenerator
    from reasonlab.models import load_tokenizer, tiny_llama

    tok = load_tokenizer("smollm2-135m")
    model = tiny_llama(vocab_size=len(tok), hidden=64, layers=2)
    model.generation_config.eos_token_id = tok.eos_token_id
    return HFGenerator(model, tok, dtype="fp32")


def test_tiny_llama_through_hf_backend(hf_backend):
    msgs = [{"role": "user", "content": "What is 2+3?"}]
    direct = hf_backend.generate([msgs], SamplingParams(n=1, temperature=0, max_new_tokens=6))[0][0]
    with live(create_app(hf_backend, "tiny")) as url:
        c = client(url)
        r = c.chat.completions.create(model="tiny", messages=msgs, temperature=0, max_tokens=6)
        assert r.choices[0].message.content == direct.text
        assert r.usage.completion_tokens == direct.num_tokens
        assert r.usage.prompt_tokens == len(direct.prompt_token_ids) > 5
        streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
            model="tiny", messages=msgs, temperature=0, max_tokens=6, stream=True) if ch.choices)
        assert streamed == direct.text
        v = c.chat.completions.create(model="tiny", messages=msgs, extra_body={
            "reasoning": {"strategy": "vote", "n": 3, "max_new_tokens": 4, "temperature": 1.0}})
        info = v.to_dict()["reasoning"]
        assert info["candidates"] == 3 and 3 <= info["tokens"] <= 12
        assert v.usage.prompt_tokens == r.usage.prompt_tokens


def test_cli_wires_backend_config_and_uvicorn(monkeypatch):
    from typer.testing import CliRunner

    import reasonlab.backends.factory as base
    from reasonlab.cli.main import app

    seen = {}
    monkeypatch.setattr(base, "make_backend", lambda name, model, **kw: seen.update(backend=(name, model)) or Recording())
    monkeypatch.setattr(uvicorn, "run", lambda app_, host, port, **kw: seen.update(app=app_, host=host, port=port))
    res = CliRunner().invoke(app, ["serve", "--model", "m1", "--port", "8123", "--max-concurrency", "3",
                                   "--timeout-s", "7"])
    assert res.exit_code == 0, res.output
    assert seen["backend"] == ("hf", "m1") and (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    cfg = seen["app"].state.config
    assert (cfg.max_concurrency, cfg.timeout_s) == (3, 7.0)
    seen["app"].state.worker.close()


# ---- issue 14 items 9 and 10: context, seeds, API keys ----

@pytest.mark.parametrize("seed", [2**63, 2**64 + 5, -1])
def test_out_of_range_seed_is_400(mock_server, seed):
    url, backend = mock_server
    calls = len(backend.calls)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "seed": seed}
    r = httpx.post(url + "/v1/chat/completions", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "seed", r.text
    reasoning = {**body, "seed": 1, "reasoning": {"strategy": "vote", "seed": seed}}
    r = httpx.post(url + "/v1/chat/completions", json=reasoning)
    assert r.status_code == 400 and r.json()["error"]["param"].startswith("reasoning"), r.text
    assert len(backend.calls) == calls
    ok = httpx.post(url + "/v1/chat/completions", json={**body, "seed": 2**63 - 1})
    assert ok.status_code == 200


def test_context_overflow_is_400_and_max_tokens_is_clamped(hf_backend):
    """A tiny Llama with 512 positions: a long prompt is refused naming the limit (it was a
    500); max_tokens at the 4096 cap, or any value past the window, is clamped to what fits."""
    long_msg = [{"role": "user", "content": "word " * 2000}]  # ~2000 tokens > 512
    short = [{"role": "user", "content": "What is 2+3?"}]
    n_prompt = len(hf_backend.encode(short))
    with live(create_app(hf_backend, "tiny")) as url:
        c = client(url)
        with pytest.raises(openai.BadRequestError) as info:
            c.chat.completions.create(model="tiny", messages=long_msg, max_tokens=5)
        body = info.value.response.json()["error"]
        assert body["code"] == "context_length_exceeded" and body["param"] == "messages"
        assert "maximum context length is 512 tokens" in body["message"]
        with pytest.raises(openai.BadRequestError):  # the reasoning path checks it too
            c.chat.completions.create(model="tiny", messages=long_msg,
                                      extra_body={"reasoning": {"strategy": "vote", "n": 2}})
        for max_tokens in (4096, 512 - n_prompt + 1):
            r = c.chat.completions.create(model="tiny", messages=short, max_tokens=max_tokens,
                                          temperature=1.0, seed=0)
            assert r.usage.prompt_tokens == n_prompt
            assert 0 < r.usage.completion_tokens <= 512 - n_prompt
        fits = c.chat.completions.create(model="tiny", messages=short, max_tokens=3, temperature=0)
        assert fits.usage.completion_tokens <= 3  # a budget that fits is left alone


def test_api_key_guards_every_route():
    backend = Recording()
    with live(create_app(backend, MODEL, ServeConfig(api_key="s3cret"))) as url:
        msgs = [{"role": "user", "content": "hi"}]
        c = openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            c.chat.completions.create(model=MODEL, messages=msgs)
        err = info.value.response.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["code"] == "invalid_api_key"
        for method, path in [("GET", "/health"), ("GET", "/v1/models"), ("GET", f"/v1/models/{MODEL}"),
                             ("POST", "/v1/chat/completions"), ("GET", "/v1/nothing")]:
            r = httpx.request(method, url + path, json={"messages": msgs})
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", path
            r = httpx.request(method, url + path, headers={"Authorization": "Bearer nope"})
            assert r.status_code == 401, path
        assert backend.calls == []
        good = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        assert good.chat.completions.create(model=MODEL, messages=msgs).choices[0].message.content == "echo: hi #0"
        assert httpx.get(url + "/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert "s3cret" not in repr(ServeConfig(api_key="s3cret"))


def test_cli_api_key_flag_env_and_default(monkeypatch):
    from typer.testing import CliRunner

    import reasonlab.backends.factory as base
    from reasonlab.cli.main import app

    seen = {}
    monkeypatch.setattr(base, "make_backend", lambda name, model, **kw: Recording())
    monkeypatch.setattr(uvicorn, "run", lambda app_, host, port, **kw: seen.update(cfg=app_.state.config,
                                                                                  app=app_))

    def serve(args, env=None):
        res = CliRunner().invoke(app, ["serve", "--model", "m1", *args],
                                 env={"REASONLAB_API_KEY": None, **(env or {})})
        assert res.exit_code == 0, res.output
        seen["app"].state.worker.close()
        return seen["cfg"].api_key, res.output

    assert serve([])[0] is None  # loopback: off by default
    assert serve(["--api-key", "k1"])[0] == "k1"
    assert serve([], {"REASONLAB_API_KEY": "k2"})[0] == "k2"
    key, out = serve(["--host", "0.0.0.0"])  # off loopback: a random key, printed once
    assert key and len(key) >= 24 and key in out
    key, out = serve(["--host", "0.0.0.0", "--no-auth"])
    assert key is None and "without an API key" in out
