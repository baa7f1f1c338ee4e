"""The ``hf`` backend: sampling from a live transformers model, fast on CPU.

Architectures ``arch.py`` describes go through ``FastLlama`` + ``decode`` (fused weights in the
sampling dtype, static KV cache, shared prefill for n samples). Any other architecture gets a
one-line warning naming it and ``generic_decode`` (transformers' own forward, batched) — never
the fast forward computing a different model; ``fast=True`` on such a model is an error.
``HFGenerator`` wraps a model a trainer may be updating: ``sync_weights()`` after each optimizer
step rebuilds the sampling copy from ``weights()``, the ``(name, tensor)`` pairs the trainer
publishes (``models.full_weights``: HF names, LoRA merged), the same pairs ``vllm`` loads.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable, Iterable

import torch

from reasonlab.backends.base import BACKENDS
from reasonlab.backends.decode import StopChecker, decode
from reasonlab.backends.fast_llama import FastLlama, fast_plan
from reasonlab.backends.generic import generic_decode
from reasonlab.models import base_model, full_weights, prepare_tokenizer, resolve_dtype
from reasonlab.prompts import render_chat
from reasonlab.types import Completion, Prompt, SamplingParams


class HFGenerator:
    name = "hf"

    def __init__(self, model, tokenizer, *, dtype: str | torch.dtype | None = None,
                 max_batch: int = 128, fast: bool | None = None, ignore_eos: bool = False,  # rows per decode loop
                 weights: Callable[[], Iterable[tuple[str, torch.Tensor]]] | None = None):
        self.model = model  # the fast path reads only its shape (config, RoPE tables) from it
        self.weights = weights or (lambda: full_weights(model))
        self.tokenizer = prepare_tokenizer(tokenizer)
        self.device = next(model.parameters()).device
        self.dtype = resolve_dtype(dtype, self.device.type)
        self.max_batch = max_batch
        self.use_fast = self._choose_path(model, fast)
        self.ignore_eos = ignore_eos  # benchmarks force equal lengths with this
        self._fast: FastLlama | None = None
        self.eos_ids = self._eos_ids()

    @staticmethod
    def _choose_path(model, fast: bool | None) -> bool:
        """``fast``: None picks the fast forward where it is exact; True demands it (an error
        naming the architecture if it is not); False always uses transformers' forward."""
        arch, why = fast_plan(model)
        if arch is None and fast:
            raise ValueError(f"hf backend: fast=True, but {why}; leave `fast` unset to use the generic path")
        if arch is None and fast is None:
            warnings.warn(f"hf backend: {why}; sampling with transformers' forward (batched, slower)",
                          stacklevel=3)
        return arch is not None and fast is not False

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(getattr(base_model(self.model), "generation_config", None), "eos_token_id", None)
        ids.update(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])
        return {i for i in ids if i is not None}

    def sync_weights(self) -> None:
        """Rebuild the sampling copy from the published weights (after an update). The generic
        path runs the live module itself, so it has no copy to rebuild."""
        self._fast = FastLlama.from_weights(self.model, self.weights(), self.dtype) if self.use_fast else None

    def encode(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        text = render_chat(self.tokenizer, prompt)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        encoded = [self.encode(p) for p in prompts]
        seed = params.seed if params.seed is not None else int.from_bytes(os.urandom(6), "little")
        gen = torch.Generator(device=self.device).manual_seed(seed)
        results: list[list[Completion]] = [[] for _ in prompts]
        # longest first, so chunks hold prompts of similar length (less padding)
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        for chunk in self._chunks(order, params.n):
            job = ([encoded[i] for i, _ in chunk], [c for _, c in chunk], params, self.eos_ids,
                   StopChecker(self.tokenizer, params.stop), gen)
            if self.use_fast:
                if self._fast is None:
                    self.sync_weights()
                rows = decode(self._fast, *job, self.ignore_eos)
            else:
                rows = generic_decode(self.model, *job, self.tokenizer.pad_token_id or 0, self.ignore_eos)
            it = iter(rows)
            for i, count in chunk:
                for _ in range(count):
                    toks, lps, reason = next(it)
                    results[i].append(self._completion(toks, lps, reason, params, encoded[i]))
        return results

    def _chunks(self, order: list[int], n: int):
        """Pack (prompt index, sample count) items into chunks of at most max_batch rows."""
        chunk, rows = [], 0
        for i in order:
            left = n
            while left:
                take = min(left, self.max_batch - rows)
                chunk.append((i, take))
                rows += take
                left -= take
                if rows == self.max_batch:
                    yield chunk
                    chunk, rows = [], 0
        if chunk:
            yield chunk

    def _completion(self, toks, lps, reason, params, prompt_ids) -> Completion:
        text = self.tokenizer.decode(toks, skip_special_tokens=True)
        cut = [text.find(s) + len(s) for s in params.stop if s and s in text]
        if cut:
            text = text[:min(cut)]
            reason = "stop"
        return Completion(text=text, token_ids=tuple(toks), logprobs=tuple(lps),
                          finish_reason=reason, prompt_token_ids=tuple(prompt_ids))


@BACKENDS.register("hf")
def hf(model: str, dtype: str | None = None, live_model=None, tokenizer=None, weights=None,
       **options) -> HFGenerator:
    """Load ``model``, or wrap ``live_model`` (a model a trainer is updating) with its tokenizer;
    ``weights``: the trainer's publisher (default: ``models.full_weights`` of the model)."""
    if live_model is not None:
        return HFGenerator(live_model, tokenizer, dtype=dtype, weights=weights, **options)
    from reasonlab.models import load

    m, tok = load(model, dtype=dtype)
    m.eval()
    return HFGenerator(m, tok, dtype=dtype, **options)
