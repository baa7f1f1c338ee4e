"""Shared fixtures: a scripted mock backend, a toy task, a tiny random model, temp cache."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from reasonlab.types import Completion, Problem, SamplingParams, Score

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
SUPPORT = str(Path(__file__).parent / "support")  # toy plugins, importable here and in subprocesses
sys.path.insert(0, SUPPORT)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [SUPPORT, os.environ.get("PYTHONPATH")]))


class ScriptedGenerator:
    """A Generator that answers from a function ``fn(prompt, i) -> text``; counts calls."""

    name = "scripted"

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0
        self.prompts_seen = 0

    def generate(self, prompts, params: SamplingParams):
        self.calls += 1
        self.prompts_seen += len(prompts)
        out = []
        for prompt in prompts:
            texts = [self.fn(prompt, i) for i in range(params.n)]
            out.append([Completion(text=t, token_ids=tuple(range(len(t.split()))),
                                   finish_reason="stop") for t in texts])
        return out

    def sync_weights(self):
        pass


@dataclass
class ToyTask:
    """Questions "q<i>" whose answer is str(i)."""

    name: str = "toy"
    size: int = 10

    def load(self, split="test", limit=None):
        probs = [Problem(id=f"toy/{i}", question=f"q{i}", answer=str(i)) for i in range(self.size)]
        return probs[:limit] if limit else probs

    def score(self, problem, completion):
        from reasonlab.verify import extract_answer, is_equivalent

        pred = extract_answer(completion)
        ok = False if pred is None else is_equivalent(pred, problem.answer)
        return Score(correct=ok, extracted=pred)


@pytest.fixture
def toy_task():
    return ToyTask()


@pytest.fixture
def scripted():
    return ScriptedGenerator


@pytest.fixture
def tiny_model():
    from reasonlab.models import tiny_llama

    return tiny_llama()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny random Llama saved in HF format with the embedded model's tokenizer (shared by the
    trainer, recipe and CLI tests; nothing writes into it)."""
    from tiny_model_dir import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def free_port() -> str:
    """A TCP port nothing listens on now, for torch.distributed's rendezvous (a fixed port can
    still be held by the previous run's processes)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])
