"""``reasonlab generate`` against a deliberately flaky OpenAI-compatible server on loopback:
429s, 500/503s, stalls past the client's timeout and malformed JSON, each on a fixed schedule per
question; then a run killed with SIGKILL midway and rerun with the same command, counting what
the server was asked for. Nothing canned: a real HTTP server, a real subprocess, a real kill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reasonlab.io import read_jsonl_rows
from reasonlab.tasks.base import get_task

LIMIT, N = 16, 2
# Failures a question meets on its first attempts, then success (chosen by crc32 of the question).
SCHEDULES = [[], ["429"], ["500", "malformed"], ["stall"], ["malformed_shape", "503"]]


def kind(question: str) -> int:
    return zlib.crc32(question.encode())


class Flaky:
    """State shared by the handler threads."""

    def __init__(self, delay: float = 0.15, stall: float = 1.0):
        self.delay, self.stall = delay, stall
        self.lock = threading.Lock()
        self.attempts: Counter = Counter()
        self.successes: list[str] = []

    def reply(self, body: dict) -> tuple[int, bytes, dict]:
        question = body["messages"][1]["content"]
        with self.lock:
            attempt = self.attempts[question]
            self.attempts[question] += 1
        plan = SCHEDULES[kind(question) % len(SCHEDULES)]
        step = plan[attempt] if attempt < len(plan) else "ok"
        if step == "429":
            return 429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "0"}
        if step in ("500", "503"):
            return int(step), b'{"error": {"message": "upstream died"}}', {}
        if step == "malformed":
            return 200, b'{"choices": [{"message": ', {}
        if step == "malformed_shape":
            return 200, b'<html>502 Bad Gateway</html>', {}
        if step == "stall":
            time.sleep(self.stall)
            return 200, json.dumps(answer(question, body["n"])).encode(), {}
        time.sleep(self.delay)
        with self.lock:
            self.successes.append(question)
        return 200, json.dumps(answer(question, body["n"])).encode(), {}


def answer(question: str, n: int) -> dict:
    """Sample 0 right, sample 1 wrong (or truncated); four response shapes by question."""
    a, op, b = re.search(r"(\d+) ([+-]) (\d+)", question).groups()
    value = int(a) + int(b) if op == "+" else int(a) - int(b)
    shape = kind(question) % 4
    choices = []
    for i in range(n):
        v = value + i
        thought = f"Working on {a} {op} {b}, attempt {i}: the result is {v}."
        finish = "length" if shape == 3 and i == 1 else "stop"
        if shape == 0:
            msg = {"content": f"<answer>{v}</answer>", "reasoning_content": thought}
        elif shape == 2:
            msg = {"content": f"The answer is $\\boxed{{{v}}}$.", "reasoning_content": thought}
        else:
            msg = {"content": f"{thought}\n</think>\n<answer>{v}</answer>"}
        choices.append({"index": i, "message": {"role": "assistant", **msg}, "finish_reason": finish})
    return {"choices": choices, "usage": {"completion_tokens": 20 * n}}


def make_handler(state: Flaky):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self._send(200, b'{"object": "list", "data": [{"id": "flaky-teacher"}]}', {})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._send(*state.reply(body))

        def _send(self, code, raw, headers):
            try:
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out on a stall, or was killed

    return Handler


@pytest.fixture
def flaky():
    state = Flaky()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def command(url: str, out) -> list[str]:
    return [sys.executable, "-m", "reasonlab.cli.main", "generate", "--base-url", url, "--task", "arith",
            "--limit", str(LIMIT), "--n", str(N), "--out", str(out), "--concurrency", "3",
            "--timeout-s", "0.5", "--max-retries", "6", "--backoff-s", "0.05", "--no-progress"]


def rerun(url: str, out):
    """The same command again, in this process (what a user's second run does, minus the start-up)."""
    from typer.testing import CliRunner

    from reasonlab.cli.main import app

    res = CliRunner().invoke(app, command(url, out)[3:])
    assert res.exit_code == 0, res.output


def raw_problems(out) -> set[str]:
    return {r["problem_id"] for r in read_jsonl_rows(out / "raw.jsonl")}


def test_retries_kill_and_resume_request_nothing_twice(tmp_path, flaky):
    state, url = flaky
    problems = get_task("arith").load("train", LIMIT)
    question = {p.id: p.question for p in problems}
    out = tmp_path / "killed"

    proc = subprocess.Popen(command(url, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if (out / "raw.jsonl").exists() and len(raw_problems(out)) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stdout.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    done = raw_problems(out)
    assert 2 <= len(done) < LIMIT, "the kill should land midway"
    with (out / "raw.jsonl").open("a") as f:
        f.write('{"key": "torn by a kill mid-wri')  # a torn last line

    state.successes.clear()
    rerun(url, out)
    served = Counter(state.successes)
    assert set(served) == {question[pid] for pid in question if pid not in done}
    assert max(served.values()) == 1  # each missing problem answered once, nothing already kept asked again

    # the same command uninterrupted, from scratch, into another directory: the same traces
    state.successes.clear()
    state.attempts.clear()
    clean = tmp_path / "clean"
    rerun(url, clean)
    assert len(state.successes) == LIMIT
    assert (out / "traces.jsonl").read_text() == (clean / "traces.jsonl").read_text()

    stats = json.loads((clean / "stats.json").read_text())
    plans = Counter(step for q in question.values() for step in SCHEDULES[kind(q) % len(SCHEDULES)])
    req = stats["requests"]
    assert req["http_429"] == plans["429"] and req["http_500"] == plans["500"] and req["http_503"] == plans["503"]
    assert req["malformed"] == plans["malformed"] + plans["malformed_shape"] and req["timeout"] == plans["stall"]
    assert req["retries"] == sum(plans.values()) and req["requests"] == LIMIT + sum(plans.values())
    truncated = sum(kind(q) % 4 == 3 for q in question.values())
    assert stats["rejected"]["truncated"] == truncated and stats["rejected"]["incorrect"] == LIMIT - truncated
    assert stats["written"] == LIMIT

    rows = read_jsonl_rows(clean / "traces.jsonl")
    for r in rows:
        content = r["messages"][-1]["content"]
        assert re.fullmatch(r"<think>\nWorking on .*attempt 0: the result is -?\d+\.\n</think>\n<answer>.*</answer>",
                            content, re.DOTALL), content
        assert r["provenance"]["teacher"] == "flaky-teacher"
    boxed = [r for r in rows if kind(question[r["problem_id"]]) % 4 == 2]
    assert boxed and all("<answer>The answer is $\\boxed{" in r["messages"][-1]["content"] for r in boxed)

    # the contract with `reasonlab train sft`: its reader takes every row as is, unchanged
    from reasonlab.train.sft_rows import to_conversation

    for i, r in enumerate(rows):
        conv = to_conversation(f"traces.jsonl:{i + 1}", r)
        assert list(conv.messages) == r["messages"] and conv.targets == (len(r["messages"]) - 1,)
