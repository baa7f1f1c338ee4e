"""The server with the official openai client against a live uvicorn on 127.0.0.1."""

import socket
import threading
import time

import httpx
import pytest

openai = pytest.importorskip("openai")

from reasonlab.serve import ServeConfig, create_app  # noqa: E402
from reasonlab.types import Completion  # noqa: E402


class Echo:
    """Scripted backend: answers with the last user message reversed; optional delay."""

    name = "echo"

    def __init__(self, delay=0.0):
        self.delay, self.active, self.max_active = delay, 0, 0

    def generate(self, prompts, params):
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay)
        self.active -= 1
        out = []
        for m in prompts:
            text = next(x["content"] for x in reversed(m) if x["role"] == "user")[::-1]
            out.append([Completion(f"{text} <answer>{4 + (i % 2)}</answer>", (1,) * 5, None, "stop", (1, 2))
                        for i in range(params.n)])
        return out

    def sync_weights(self):
        pass


def serve(app):
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
def live():
    servers = []

    def start(backend, **cfg):
        server, url = serve(create_app(backend, "tiny", ServeConfig(**cfg)))
        servers.append(server)
        return url, openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)

    yield start
    for s in servers:
        s.should_exit = True


def test_chat_models_n_and_stream(live):
    url, client = live(Echo())
    assert [m.id for m in client.models.list().data] == ["tiny"]
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "abc"}], n=2, max_tokens=9)
    assert [c.message.content for c in r.choices] == ["cba <answer>4</answer>", "cba <answer>5</answer>"]
    assert r.usage.completion_tokens == 10
    stream = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello world"}],
                                            stream=True)
    text = "".join(ch.choices[0].delta.content or "" for ch in stream)
    assert text == "dlrow olleh <answer>4</answer>"


def test_reasoning_strategy_extension(live):
    url, client = live(Echo())
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "q"}],
                                       extra_body={"reasoning": {"strategy": "vote", "n": 3}})
    assert r.choices[0].message.content.endswith("<answer>4</answer>")  # 4 wins 2:1
    extra = r.model_extra["reasoning"]
    assert extra["strategy"] == "vote" and extra["answer"] == "4" and extra["tokens"] == 15 and extra["votes"] == 2


def test_bad_requests_are_clear_4xx(live):
    url, client = live(Echo(), max_n=4, max_body_bytes=2000)
    with pytest.raises(openai.BadRequestError, match="n: at most 4"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "q"}], n=5)
    with pytest.raises(openai.BadRequestError, match="valid: .*vote"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "q"}],
                                       extra_body={"reasoning": {"strategy": "telepathy", "n": 2}})
    r = httpx.post(url + "/v1/chat/completions", json={"messages": []})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = httpx.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 5000}]})
    assert r.status_code == 413


def test_timeout_and_queue(live):
    url, client = live(Echo(delay=1.0), timeout_s=0.3)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "q"}])
    assert err.value.status_code == 504


def test_concurrent_requests_are_all_answered_one_at_a_time(live):
    backend = Echo(delay=0.05)
    url, client = live(backend)
    results = [None] * 6

    def call(i):
        r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": f"m{i}"}])
        results[i] = r.choices[0].message.content

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [f"{i}m <answer>4</answer>" for i in range(6)]
    assert backend.max_active == 1


def test_tiny_model_through_hf_backend(live):
    from reasonlab.backends.hf import HFGenerator
    from reasonlab.models import load_tokenizer, tiny_llama

    tok = load_tokenizer("smollm2-135m")
    url, client = live(HFGenerator(tiny_llama(vocab_size=len(tok), hidden=32), tok, dtype="fp32"))
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=5,
                                       temperature=0)
    assert r.choices[0].finish_reason in ("length", "stop") and r.usage.completion_tokens <= 5
