"""The real vLLM engine (the CPU build, ``make test-vllm`` in ``.venv-vllm``); skipped where vLLM
is not installed (the main venv)."""

import os

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: make test-vllm runs these in .venv-vllm")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
