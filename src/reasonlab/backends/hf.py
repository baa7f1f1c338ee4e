"""The ``hf`` backend: sampling from a live transformers model, fast on CPU.

Llama-family models go through ``FastLlama`` + ``decode`` (fused weights in the sampling dtype,
static KV cache, shared prefill for n samples); other architectures fall back to
``model.generate``. ``HFGenerator`` wraps a model a trainer may be updating: call
``sync_weights()`` after each optimizer step so the sampling copy follows (LoRA merged).
"""

from __future__ import annotations

import os

import torch

from reasonlab.backends.base import BACKENDS
from reasonlab.backends.decode import StopChecker, decode
from reasonlab.backends.fast_llama import FastLlama, base_model, supports
from reasonlab.models import prepare_tokenizer, resolve_dtype
from reasonlab.prompts import render_chat
from reasonlab.types import Completion, Prompt, SamplingParams


class HFGenerator:
    name = "hf"

    def __init__(self, model, tokenizer, *, dtype: str | torch.dtype | None = None,
                 max_batch: int = 64, fast: bool | None = None, ignore_eos: bool = False):
        self.model = model
        self.tokenizer = prepare_tokenizer(tokenizer)
        self.device = next(model.parameters()).device
        self.dtype = resolve_dtype(dtype, self.device.type)
        self.max_batch = max_batch
        self.use_fast = supports(model) if fast is None else fast
        self.ignore_eos = ignore_eos  # benchmarks force equal lengths with this
        self._fast: FastLlama | None = None
        self.eos_ids = self._eos_ids()

    def _eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(getattr(base_model(self.model), "generation_config", None), "eos_token_id", None)
        ids.update(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])
        return {i for i in ids if i is not None}

    def sync_weights(self) -> None:
        """Rebuild the sampling copy of the weights from the live model (after an update)."""
        self._fast = FastLlama.from_hf(self.model, self.dtype) if self.use_fast else None

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
            if self.use_fast:
                if self._fast is None:
                    self.sync_weights()
                rows = decode(self._fast, [encoded[i] for i, _ in chunk], [c for _, c in chunk],
                              params, self.eos_ids, StopChecker(self.tokenizer, params.stop), gen,
                              self.ignore_eos)
            else:
                rows = self._generic(chunk, encoded, params, gen)
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

    @torch.inference_mode()
    def _generic(self, chunk, encoded, params, gen):
        """Any architecture: model.generate, one prompt at a time (correct, not fast)."""
        from reasonlab.backends.sampling import sample

        model = self.model
        rows = []
        for i, count in chunk:
            ids = torch.tensor([encoded[i]] * count, device=self.device)
            out = model(input_ids=ids, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1].float()
            stopper = StopChecker(self.tokenizer, params.stop)
            toks = [[] for _ in range(count)]
            lps = [[] for _ in range(count)]
            reason = ["length"] * count
            for _ in range(params.max_new_tokens):
                tok, lp = sample(logits, params.temperature, params.top_p, gen)
                for r in range(count):
                    if reason[r] == "stop":
                        continue
                    toks[r].append(int(tok[r]))
                    lps[r].append(float(lp[r]))
                    if (int(tok[r]) in self.eos_ids and not self.ignore_eos) or stopper.hit(toks[r]):
                        reason[r] = "stop"
                if all(x == "stop" for x in reason):
                    break
                out = model(input_ids=tok[:, None], past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[:, -1].float()
            rows.extend(zip(toks, lps, reason))
        return rows


@BACKENDS.register("hf")
def hf(model: str, dtype: str | None = None, **options) -> HFGenerator:
    from reasonlab.models import load

    m, tok = load(model, dtype=dtype)
    m.eval()
    return HFGenerator(m, tok, dtype=dtype, **options)
