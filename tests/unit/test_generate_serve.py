"""``reasonlab generate`` against a real OpenAI-compatible server (``reasonlab serve``'s app on
loopback) and with the local ``hf`` sampler; run through the CLI as a user runs it."""

from __future__ import annotations

import re
import threading

import pytest
from live_server import live
from typer.testing import CliRunner

from reasonlab.cli.main import app
from reasonlab.io import read_jsonl_rows
from reasonlab.prompts import build
from reasonlab.serve import create_app
from reasonlab.tasks.base import get_task
from reasonlab.types import Completion

PHRASES = ["Add the two numbers: {a} {op} {b} gives {v}.",
           "Count on from {a}: applying {op}{b} step by step lands on {v}, checked twice.",
           "Roughly {a} {op} {b} is {v}.",
           "Start at {b}, then combine with {a} using {op}; written out, the result is {v}."]


class Teacher:
    """A Generator behind the server: right on samples 0, 1, 3, off by one on sample 2; a
    different text per sample index so deduplication keeps them. Records what it is asked."""

    name = "teacher"

    def __init__(self):
        self.calls, self.lock, self.drawn = [], threading.Lock(), {}

    def generate(self, prompts, params):
        with self.lock:
            self.calls.append((prompts, params))
        out = []
        for p in prompts:
            start = self.drawn.get(p[1]["content"], 0)
            self.drawn[p[1]["content"]] = start + params.n
            a, op, b = re.search(r"(\d+) ([+-]) (\d+)", p[1]["content"]).groups()
            v = int(a) + int(b) if op == "+" else int(a) - int(b)
            texts = []
            for i in range(params.n):
                k = start + i  # top-ups continue the index
                val = v + (k % 4 == 2)
                texts.append(PHRASES[k % 4].format(a=a, op=op, b=b, v=val) + f"\n</think>\n<answer>{val}</answer>")
            out.append([Completion(text=t, token_ids=tuple(range(len(t.split()))), prompt_token_ids=(1, 2))
                        for t in texts])
        return out

    def sync_weights(self):
        pass


def invoke(*args):
    res = CliRunner().invoke(app, ["generate", *map(str, args)])
    return res


def test_generate_against_served_teacher_and_resume(tmp_path):
    teacher = Teacher()
    out = tmp_path / "run"
    with live(create_app(teacher, "teacher-1")) as url:
        args = ["--base-url", url + "/v1", "--task", "arith", "--limit", 6, "--n", 3, "--out", out,
                "--no-progress", "--max-new-tokens", 64, "--concurrency", 3]
        res = invoke(*args)
        assert res.exit_code == 0, res.output
        assert len(teacher.calls) == 6 and all(params.n == 3 for _, params in teacher.calls)
        # the r1 pre-fill reached the model through the server
        assert all(prompts[0][-1] == {"role": "assistant", "content": "<think>\n"} for prompts, _ in teacher.calls)
        rows = read_jsonl_rows(out / "traces.jsonl")
        problems = {p.id: p for p in get_task("arith").load("train", 6)}
        assert len(rows) == 12 and {r["problem_id"] for r in rows} == set(problems)
        for r in rows:
            p = problems[r["problem_id"]]
            assert r["messages"][:2] == build(p, "r1")[:2] and len(r["messages"]) == 3
            content = r["messages"][2]["content"]
            assert content.startswith("<think>\n") and content.endswith(f"<answer>{p.answer}</answer>")
            prov = r["provenance"]
            assert prov["teacher"] == "teacher-1"  # discovered from /v1/models
            assert prov["verdict"]["correct"] is True and prov["tokens"]["completion"] > 3
            assert prov["sampling"]["max_new_tokens"] == 64 and abs(prov["pass_rate"] - 2 / 3) < 1e-3

        again = invoke(*args)
        assert again.exit_code == 0, again.output
        assert len(teacher.calls) == 6  # nothing re-requested

        more = invoke(*[4 if a == 3 and args[i - 1] == "--n" else a for i, a in enumerate(args)])
        assert more.exit_code == 0, more.output
        assert len(teacher.calls) == 12 and all(params.n == 1 for _, params in teacher.calls[6:])
        assert len(read_jsonl_rows(out / "traces.jsonl")) == 18

        picked = invoke(*args, "--select", 2, "--max-per-problem", 1)
        assert picked.exit_code == 0 and len(teacher.calls) == 12
        assert len(read_jsonl_rows(out / "traces.jsonl")) == 2


@pytest.fixture(scope="module")
def tiny_hf():
    from reasonlab.models import load_tokenizer, tiny_llama

    tok = load_tokenizer("smollm2-135m")
    model = tiny_llama(vocab_size=len(tok), hidden=64, layers=2)
    model.generation_config.eos_token_id = tok.eos_token_id
    return model, tok


def _all_rejected_and_counted(out, samples):
    import json

    stats = json.loads((out / "stats.json").read_text())
    assert stats["samples"] == samples and stats["written"] == 0
    assert sum(stats["rejected"].values()) == samples
    assert (out / "traces.jsonl").read_text() == ""
    raw = read_jsonl_rows(out / "raw.jsonl")
    assert len(raw) == samples and all(0 < r["tokens"] <= 8 for r in raw)
    truncated = sum(r["finish_reason"] == "length" for r in raw)
    assert stats["rejected"]["truncated"] == truncated
    return raw


def test_tiny_random_model_behind_the_server(tmp_path, tiny_hf):
    from reasonlab.backends.hf import HFGenerator

    gen = HFGenerator(*tiny_hf, dtype="fp32")
    with live(create_app(gen, "tiny")) as url:
        res = invoke("--base-url", url + "/v1", "--model", "tiny", "--task", "arith", "--limit", 3, "--n", 2,
                     "--out", tmp_path, "--max-new-tokens", 8, "--temperature", 1.0, "--no-progress")
    assert res.exit_code == 0, res.output
    _all_rejected_and_counted(tmp_path, 6)


def test_local_hf_sampler(tmp_path, tiny_hf):
    from reasonlab.models import save

    save(*tiny_hf, tmp_path / "tiny")
    res = invoke("--model", tmp_path / "tiny", "--task", "arith", "--limit", 3, "--n", 2, "--out", tmp_path / "run",
                 "--max-new-tokens", 8, "--temperature", 1.0, "--dtype", "fp32", "--no-progress", "--batch", 2)
    assert res.exit_code == 0, res.output
    raw = _all_rejected_and_counted(tmp_path / "run", 6)
    assert all(r["prompt_tokens"] > 20 for r in raw)  # the r1 system prompt, tokenised locally


def test_cli_errors_are_one_line(tmp_path):
    res = invoke("--task", "arith", "--out", tmp_path)
    assert res.exit_code == 2 and "--model" in res.output
    res = invoke("--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--task", "arith", "--limit", 1,
                 "--out", tmp_path, "--max-retries", 0, "--no-progress")
    assert res.exit_code == 1 and "error:" in res.output and "Traceback" not in res.output
    res = invoke("--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "SURELY_UNSET_VAR_1", "--task", "arith",
                 "--out", tmp_path)
    assert res.exit_code == 2 and "SURELY_UNSET_VAR_1" in res.output
