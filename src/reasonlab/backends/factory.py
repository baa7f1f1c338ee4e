"""Building a backend by registry name: the one place that imports every backend module.

Why a module of its own: ``base.py`` holds only the protocol and the registry, and every backend
module imports ``base``; if ``base`` also imported the backends to fill its registry, the two
would import each other. Heavy engines (vLLM) are imported inside their factory only.
"""

from __future__ import annotations

from typing import Any

from reasonlab.backends.base import BACKENDS, Generator


def load_backends() -> None:
    """Fill ``BACKENDS`` (cheap: no engine is started or imported)."""
    import reasonlab.backends.hf  # noqa: F401  (registers "hf")
    import reasonlab.backends.openai  # noqa: F401  (registers "openai")
    import reasonlab.backends.transformers_plain  # noqa: F401  (registers "transformers")
    import reasonlab.backends.vllm  # noqa: F401  (registers "vllm", imports vllm lazily)


def make_backend(name: str, model: Any, **options: Any) -> Generator:
    """``model`` is a model spec (name, directory, .gguf); the ``hf`` and ``vllm`` factories also
    take ``live_model=`` (and ``hf`` a ``tokenizer=``) so a trainer's sampler follows the weights
    being trained."""
    load_backends()
    return BACKENDS.get(name)(model, **options)


__all__ = ["BACKENDS", "load_backends", "make_backend"]
