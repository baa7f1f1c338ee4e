"""The openai backend against a small OpenAI-compatible server on 127.0.0.1 (retries, 4xx, shapes)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reasonlab.backends.openai import OpenAIError, OpenAIGenerator
from reasonlab.types import SamplingParams


class Handler(BaseHTTPRequestHandler):
    calls: list = []
    fail_first = {"n": 1}

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.calls.append((self.path, body))
        if Handler.fail_first["n"] > 0:
            Handler.fail_first["n"] -= 1
            return self._send(503, {"error": {"message": "busy"}})
        if body.get("model") == "bad":
            return self._send(400, {"error": {"message": "unknown model bad"}})
        n = body.get("n", 1)
        if self.path.endswith("/chat/completions"):
            last = body["messages"][-1]["content"]
            choices = [{"index": i, "message": {"role": "assistant", "content": f"echo {last} {i}"},
                        "finish_reason": "stop", "logprobs": {"content": [{"logprob": -0.5}, {"logprob": -1.0}]}}
                       for i in range(n)]
        else:
            choices = [{"index": i, "text": f"cont {i}", "finish_reason": "length",
                        "logprobs": {"token_logprobs": [-0.1]}} for i in range(n)]
        self._send(200, {"choices": choices, "usage": {"completion_tokens": 3 * n}})

    def _send(self, code, data):
        raw = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Handler.calls.clear()
    Handler.fail_first["n"] = 1
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_chat_and_text_prompts_with_retry(server):
    gen = OpenAIGenerator("m", base_url=server, backoff_s=0.01, concurrency=2, logprobs=True)
    out = gen.generate([[{"role": "user", "content": "hi"}], "raw text"],
                       SamplingParams(n=2, temperature=0.5, max_new_tokens=7, stop=("\n",), seed=1))
    assert [c.text for c in out[0]] == ["echo hi 0", "echo hi 1"]
    assert out[0][0].logprobs == (-0.5, -1.0) and out[0][0].num_tokens == 3
    assert out[1][1].text == "cont 1" and out[1][1].finish_reason == "length"
    paths = sorted(p for p, _ in Handler.calls)
    assert len(Handler.calls) == 3  # one 503 retried
    body = next(b for p, b in Handler.calls if p.endswith("chat/completions"))
    assert body["max_tokens"] == 7 and body["stop"] == ["\n"] and body["n"] == 2 and body["seed"] == 1
    assert body["logprobs"] is True
    assert gen.stats["http_503"] == 1 and gen.stats["retries"] == 1 and gen.stats["requests"] == 3
    assert "/v1/completions" in paths


def test_prefill_asks_server_to_continue(server):
    Handler.fail_first["n"] = 0
    gen = OpenAIGenerator("m", base_url=server)
    gen.generate([[{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\n"}]], SamplingParams())
    body = Handler.calls[-1][1]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert "logprobs" not in body  # not asked for unless wanted: servers (ours too) refuse them


def test_client_errors_fail_fast_with_message(server):
    Handler.fail_first["n"] = 0
    gen = OpenAIGenerator("bad", base_url=server, backoff_s=0.01)
    with pytest.raises(OpenAIError, match="HTTP 400.*unknown model bad"):
        gen.generate(["x"], SamplingParams())
    assert len(Handler.calls) == 1


def test_unreachable_server_gives_up_after_retries():
    gen = OpenAIGenerator("m", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01, timeout_s=1)
    with pytest.raises(OpenAIError):
        gen.generate(["x"], SamplingParams())


class Scripted(BaseHTTPRequestHandler):
    """Answers from a queue of (status, body bytes, delay, headers) steps, then a reasoning answer."""

    steps: list = []
    seen: list = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        Scripted.seen.append(("GET", self.path, time.monotonic()))
        self._send(200, json.dumps({"object": "list", "data": [{"id": "served-teacher"}]}).encode())

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Scripted.seen.append(("POST", body.get("model"), time.monotonic()))
        if Scripted.steps:
            status, raw, delay, headers = Scripted.steps.pop(0)
            time.sleep(delay)
            return self._send(status, raw, headers)
        msg = {"role": "assistant", "content": "<answer>5</answer>", "reasoning_content": "2 plus 3 is 5"}
        self._send(200, json.dumps({"choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                                    "usage": {"completion_tokens": 9}}).encode())

    def _send(self, code, raw, headers=None):
        try:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on a stall
            pass


@pytest.fixture
def scripted_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Scripted.steps, Scripted.seen = [], []
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_malformed_bodies_stalls_and_429_are_retried(scripted_server):
    Scripted.steps = [(200, b"{not json", 0, {}), (200, b'{"choices": []}', 0, {}),
                      (200, b'{"choices": [{"message": {"content": 5}}]}', 0, {}),
                      (200, b"", 0.6, {}),  # stalls past the client's timeout
                      (429, b'{"error": {"message": "slow down"}}', 0, {"Retry-After": "0.3"})]
    gen = OpenAIGenerator(None, base_url=scripted_server, backoff_s=0.01, max_retries=6, timeout_s=0.3)
    out = gen.generate([[{"role": "user", "content": "2+3?"}]], SamplingParams())
    c = out[0][0]
    assert (c.text, c.reasoning, c.num_tokens) == ("<answer>5</answer>", "2 plus 3 is 5", 9)
    assert gen.stats["malformed"] == 3 and gen.stats["timeout"] == 1 and gen.stats["http_429"] == 1
    posts = [t for kind, model, t in Scripted.seen if kind == "POST"]
    assert len(posts) == 6 and all(m == "served-teacher" for k, m, _ in Scripted.seen if k == "POST")
    assert posts[-1] - posts[-2] >= 0.3  # Retry-After honoured over a 0.01 s backoff


def test_retries_are_bounded_and_the_last_error_is_named(scripted_server):
    Scripted.steps = [(500, b"boom", 0, {})] * 3
    gen = OpenAIGenerator("m", base_url=scripted_server, backoff_s=0.01, max_retries=2)
    with pytest.raises(OpenAIError, match="gave up after 3 attempts; last: HTTP 500: boom"):
        gen.generate(["x"], SamplingParams())
