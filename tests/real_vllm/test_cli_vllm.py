"""The commands a user runs with ``--backend vllm``, on the real engine and the embedded model:
``eval`` agrees with ``--backend hf`` (fp32 both, greedy, r1 prompt), ``scale`` writes its
curve, ``serve`` answers OpenAI chat requests (plain and streamed)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("vllm.entrypoints.llm",
                    reason="vLLM is not installed here: make test-vllm runs tests/real_vllm in .venv-vllm")

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "reasonlab.cli.main"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def cli(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run(CLI + list(args), capture_output=True, text=True, cwd=REPO, env=ENV, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return r


def rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]


def test_eval_agrees_with_hf(tmp_path):
    common = ["eval", "--task", "arith", "--limit", "16", "--n", "1", "--temperature", "0",
              "--max-new-tokens", "64", "--dtype", "fp32"]
    cli(*common, "--backend", "hf", "--out", str(tmp_path / "hf"))
    cli(*common, "--backend", "vllm", "--out", str(tmp_path / "vllm"))
    ours, theirs = rows(tmp_path / "hf"), rows(tmp_path / "vllm")
    assert len(ours) == len(theirs) == 16
    key = lambda r: r["problem_id"]  # noqa: E731
    ours, theirs = sorted(ours, key=key), sorted(theirs, key=key)
    same = sum(a["completion"] == b["completion"] for a, b in zip(ours, theirs))
    assert same >= 15, [(a["completion"], b["completion"]) for a, b in zip(ours, theirs)
                        if a["completion"] != b["completion"]]
    s_hf, s_vllm = (json.loads((tmp_path / k / "summary.json").read_text()) for k in ("hf", "vllm"))
    assert s_hf["metrics"]["format_rate"] == s_vllm["metrics"]["format_rate"]


def test_scale_writes_the_curve(tmp_path):
    out = tmp_path / "scale"
    cli("scale", "--task", "arith", "--limit", "4", "--n", "1,2", "--strategy", "vote",
        "--max-new-tokens", "32", "--backend", "vllm", "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    curve = summary["strategies"]["vote"]
    assert [r["n"] for r in curve] == [1, 2]
    assert curve[1]["tokens_per_problem"] > curve[0]["tokens_per_problem"] > 0
    assert (out / "report.html").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_chat_requests(tmp_path):
    import httpx

    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(CLI + ["serve", "--model", "smollm2-135m", "--backend", "vllm", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=ENV)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 600
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.time() < deadline, "server did not come up"
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        body = {"model": "smollm2-135m", "messages": [{"role": "user", "content": "What is 2 + 3?"}],
                "n": 2, "max_tokens": 16, "temperature": 0.7, "seed": 1}
        r = httpx.post(url + "/v1/chat/completions", json=body, timeout=120).json()
        assert len(r["choices"]) == 2 and all(c["message"]["content"] for c in r["choices"]), r
        assert 0 < r["usage"]["completion_tokens"] <= 32
        again = httpx.post(url + "/v1/chat/completions", json=body, timeout=120).json()
        assert [c["message"]["content"] for c in again["choices"]] == [c["message"]["content"] for c in r["choices"]]
        with httpx.stream("POST", url + "/v1/chat/completions", json={**body, "n": 1, "stream": True},
                          timeout=120) as s:
            lines = [x for x in s.iter_lines() if x.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        text = "".join(json.loads(x[6:])["choices"][0]["delta"].get("content") or "" for x in lines[:-1]
                       if json.loads(x[6:])["choices"])
        assert text
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
