"""The ``transformers`` backend: a checkpoint exactly as a plain transformers user runs it.

Why it exists: results are checked independently by loading a trained checkpoint with
``AutoModelForCausalLM`` and its own chat template, so our headline figures must be measured the
same way, not only through our fast sampler. Nothing of ours touches the forward pass here:
``AutoTokenizer.apply_chat_template(add_generation_prompt=True)`` (or continue a final assistant
turn), ``model.generate`` with left padding, ``decode(skip_special_tokens=True)``. Slow, and meant
for a final check, not for rollouts.

What the template pre-fills counts as written: a checkpoint whose template ends the generation
prompt with an open ``<think>`` (ours bake the training prompt in, see ``train/template.py``)
gets that ``<think>`` put before the decoded text, as a chat UI shows it, so the format check
sees the whole answer turn.
"""

from __future__ import annotations

import torch

from reasonlab.backends.base import BACKENDS
from reasonlab.types import Completion, Prompt, SamplingParams

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


class PlainTransformers:
    name = "transformers"

    def __init__(self, model: str, batch_size: int = 64, dtype: str = "fp32"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from reasonlab.models import resolve

        path = resolve(model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        dtypes = {"auto": torch.float32, "fp32": torch.float32, "bf16": torch.bfloat16}
        if dtype not in dtypes:
            raise ValueError(f"transformers backend: dtype must be one of {', '.join(dtypes)}, got {dtype!r}")
        torch_dtype = dtypes[dtype]
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).eval()
        self.batch_size = batch_size

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        from reasonlab.prompts import render_chat

        texts = [p if isinstance(p, str) else render_chat(self.tokenizer, p) for p in prompts]
        prefills = [template_prefill(t, p) for t, p in zip(texts, prompts)]
        if params.seed is not None:
            torch.manual_seed(params.seed)
        rows = [(i, t) for i, t in enumerate(texts) for _ in range(params.n)]
        out: list[list[Completion]] = [[] for _ in prompts]
        for lo in range(0, len(rows), self.batch_size):
            chunk = rows[lo:lo + self.batch_size]
            enc = self.tokenizer([t for _, t in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
            sample = params.temperature > 0
            with torch.inference_mode():
                ids = self.model.generate(
                    **enc, max_new_tokens=params.max_new_tokens, do_sample=sample,
                    temperature=params.temperature if sample else None, top_p=params.top_p if sample else None,
                    top_k=None, pad_token_id=self.tokenizer.pad_token_id)
            width = enc["input_ids"].shape[1]
            for (i, _), row in zip(chunk, ids[:, width:].tolist()):
                out[i].append(self._completion(row, prefills[i], params))
        return out

    def _completion(self, row: list[int], prefill: str, params: SamplingParams) -> Completion:
        cfg_eos = self.model.generation_config.eos_token_id
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id,
               *(cfg_eos if isinstance(cfg_eos, list) else [cfg_eos])} - {None}
        ended = next((k for k, t in enumerate(row) if t in eos), None)
        toks = row if ended is None else row[:ended]
        text = self.tokenizer.decode(toks, skip_special_tokens=True)
        reason = "length" if ended is None and len(row) >= params.max_new_tokens else "stop"
        return Completion(text=prefill + text, token_ids=tuple(toks), finish_reason=reason)

    def sync_weights(self) -> None:  # a fixed checkpoint: nothing to follow
        return None


def template_prefill(rendered: str, prompt: Prompt) -> str:
    """The open ``<think>...`` a chat template wrote after the last message, or ''."""
    if isinstance(prompt, str) or not prompt or prompt[-1].get("role") == "assistant":
        return ""  # raw text, or a pre-fill of the caller's: the runner already adds it
    last = prompt[-1].get("content") or ""
    tail = rendered[rendered.rfind(last) + len(last):] if last and last in rendered else ""
    start = tail.rfind(THINK_OPEN)
    return tail[start:] if start >= 0 and THINK_CLOSE not in tail[start:] else ""


@BACKENDS.register("transformers")
def transformers_plain(model: str, **options) -> PlainTransformers:
    return PlainTransformers(model, **options)
