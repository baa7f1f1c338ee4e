"""Budget forcing (s1, Muennighoff et al. 2025): control how long the model thinks.

The response is pre-filled with ``<think>\\n``. If the thinking reaches ``think_budget`` tokens,
it is cut and ``</think>\\n<answer>`` is appended so the model must answer now. If the model
closes ``</think>`` before ``min_think`` tokens, the closing tag is dropped and "Wait" appended,
up to ``max_waits`` times, to make it think longer. Tokens of every segment are counted.
"""

from __future__ import annotations

from reasonlab import prompts as prompt_formats
from reasonlab.search.base import STRATEGIES, Result, SearchConfig
from reasonlab.types import SamplingParams

FORCE_ANSWER = "\n</think>\n<answer>"


@STRATEGIES.register("budget")
def budget(problems, backend, scorer, cfg: SearchConfig) -> list[Result]:
    from reasonlab.verify import extract_answer

    results = []
    for i, p in enumerate(problems):
        msgs = prompt_formats.build(p, "r1_noprefill" if cfg.prompt == "r1" else cfg.prompt)
        text, tokens, waits, think_tokens = "<think>\n", 0, 0, 0
        while True:
            left = cfg.think_budget - think_tokens
            if left <= 0:
                text += FORCE_ANSWER
                break
            c = backend.generate([msgs + [{"role": "assistant", "content": text}]],
                                 SamplingParams(n=1, temperature=cfg.temperature, max_new_tokens=left,
                                                stop=("</think>",), seed=cfg.seed + i))[0][0]
            tokens += c.num_tokens
            think_tokens += c.num_tokens
            if c.text.endswith("</think>"):
                if think_tokens < cfg.min_think and waits < cfg.max_waits:
                    text += c.text[: -len("</think>")] + "\nWait,"
                    waits += 1
                    continue
                text += c.text + "\n<answer>"
                break
            text += c.text  # hit the budget (or EOS) without closing
            if c.finish_reason != "length":
                text += FORCE_ANSWER
                break
        final = backend.generate([msgs + [{"role": "assistant", "content": text}]],
                                 SamplingParams(n=1, temperature=0.0, max_new_tokens=32, stop=("</answer>",),
                                                seed=cfg.seed))[0][0]
        tokens += final.num_tokens
        text += final.text
        results.append(Result(p.id, extract_answer(text), text, tokens, [text],
                              {"think_tokens": think_tokens, "waits": waits}))
    return results
