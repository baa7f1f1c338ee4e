"""The ``vllm`` backend for GPU rollouts; vllm is imported only when this backend is built.

``sync_weights()`` pushes the live training model's weights into the engine in place
(``model_executor.driver_worker.model_runner.model.load_weights`` on vLLM's V0 engine, or the
``collective_rpc("load_weights")`` path when available) — best effort across vLLM versions;
a trainer that cannot sync should restart the engine from a saved checkpoint.
"""

from __future__ import annotations

from reasonlab.backends.base import BACKENDS
from reasonlab.types import Completion, Prompt, SamplingParams


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise ImportError("the vllm backend needs vLLM and a GPU: pip install vllm") from exc
    return vllm


class VLLMGenerator:
    name = "vllm"

    def __init__(self, model: str, live_model=None, **engine_options):
        self.vllm = _import_vllm()
        self.llm = self.vllm.LLM(model=model, **engine_options)
        self.live_model = live_model

    def to_vllm_params(self, params: SamplingParams):
        return self.vllm.SamplingParams(n=params.n, temperature=params.temperature, top_p=params.top_p,
                                        max_tokens=params.max_new_tokens, stop=list(params.stop) or None,
                                        seed=params.seed, logprobs=0)

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        sp = self.to_vllm_params(params)
        if all(isinstance(p, str) for p in prompts):
            outputs = self.llm.generate(prompts, sp, use_tqdm=False)
        else:
            outputs = self.llm.chat(prompts, sp, use_tqdm=False)
        return [[_completion(o, c) for c in o.outputs] for o in outputs]

    def sync_weights(self) -> None:
        if self.live_model is None:
            return
        weights = [(n, p.detach()) for n, p in self.live_model.state_dict().items()]
        engine = self.llm.llm_engine
        if hasattr(self.llm, "collective_rpc"):
            self.llm.collective_rpc("load_weights", kwargs={"weights": weights})
        else:
            engine.model_executor.driver_worker.model_runner.model.load_weights(weights)


def _completion(request_output, out) -> Completion:
    token_ids = tuple(out.token_ids)
    logprobs = None
    if out.logprobs:
        logprobs = tuple(float(step[t].logprob) for step, t in zip(out.logprobs, token_ids))
    return Completion(text=out.text, token_ids=token_ids, logprobs=logprobs,
                      finish_reason="length" if out.finish_reason == "length" else "stop",
                      prompt_token_ids=tuple(request_output.prompt_token_ids or ()))


@BACKENDS.register("vllm")
def vllm_backend(model: str, **options) -> VLLMGenerator:
    from reasonlab.models import resolve

    return VLLMGenerator(str(resolve(model)), **options)
