"""The openai backend against a small OpenAI-compatible server on 127.0.0.1 (retries, 4xx, shapes)."""

import json
import threading
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
    gen = OpenAIGenerator("m", base_url=server, backoff_s=0.01, concurrency=2)
    out = gen.generate([[{"role": "user", "content": "hi"}], "raw text"],
                       SamplingParams(n=2, temperature=0.5, max_new_tokens=7, stop=("\n",), seed=1))
    assert [c.text for c in out[0]] == ["echo hi 0", "echo hi 1"]
    assert out[0][0].logprobs == (-0.5, -1.0) and out[0][0].num_tokens == 3
    assert out[1][1].text == "cont 1" and out[1][1].finish_reason == "length"
    paths = sorted(p for p, _ in Handler.calls)
    assert len(Handler.calls) == 3  # one 503 retried
    body = next(b for p, b in Handler.calls if p.endswith("chat/completions"))
    assert body["max_tokens"] == 7 and body["stop"] == ["\n"] and body["n"] == 2 and body["seed"] == 1
    assert "/v1/completions" in paths


def test_prefill_asks_server_to_continue(server):
    Handler.fail_first["n"] = 0
    gen = OpenAIGenerator("m", base_url=server)
    gen.generate([[{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\n"}]], SamplingParams())
    body = Handler.calls[-1][1]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


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
