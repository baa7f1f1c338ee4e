"""vLLM is imported only when used; parameter mapping and output conversion with a fake module."""

import sys
import types
from dataclasses import dataclass

import pytest

from reasonlab.types import SamplingParams


def test_module_imports_without_vllm_and_error_is_clear(monkeypatch):
    import reasonlab.backends.vllm as backend

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match="pip install vllm"):
        backend.VLLMGenerator("x")


@dataclass
class Lp:
    logprob: float


def test_mapping_with_fake_vllm(monkeypatch):
    seen = {}
    fake = types.ModuleType("vllm")

    class SP:
        def __init__(self, **kw):
            seen["params"] = kw

    class LLM:
        def __init__(self, model, **kw):
            seen["model"] = model

        def chat(self, prompts, sp, use_tqdm):
            out = types.SimpleNamespace(token_ids=[5, 6], text="hi", finish_reason="length",
                                        logprobs=[{5: Lp(-0.1)}, {6: Lp(-0.2)}])
            return [types.SimpleNamespace(outputs=[out], prompt_token_ids=[1, 2]) for _ in prompts]

    fake.SamplingParams, fake.LLM = SP, LLM
    monkeypatch.setitem(sys.modules, "vllm", fake)
    from reasonlab.backends.vllm import VLLMGenerator

    gen = VLLMGenerator("some/model")
    out = gen.generate([[{"role": "user", "content": "q"}]],
                       SamplingParams(n=3, temperature=0.7, top_p=0.9, max_new_tokens=11, stop=("x",), seed=4))
    assert seen["params"] == {"n": 3, "temperature": 0.7, "top_p": 0.9, "max_tokens": 11, "stop": ["x"],
                              "seed": 4, "logprobs": 0}
    c = out[0][0]
    assert c.token_ids == (5, 6) and c.logprobs == (-0.1, -0.2) and c.finish_reason == "length"
    assert c.prompt_token_ids == (1, 2)
