"""An LLM judge through any ``Generator`` backend (local model or OpenAI-compatible server).

The judge sees the question, the reference answer when there is one, and the response, and must
end with "VERDICT: yes" or "VERDICT: no" (or a bare yes/no). Unparsable verdicts give None,
which the trainer excludes rather than counting as wrong.
"""

from __future__ import annotations

import re

from reasonlab.rewards.base import REWARDS
from reasonlab.types import SamplingParams, Sample

JUDGE_PROMPT = (
    "You are grading a response to a question.\nQuestion: {question}\nReference answer: "
    "{reference}\nResponse: {response}\n\n{criterion}\nEnd your reply with 'VERDICT: yes' or "
    "'VERDICT: no'."
)
DEFAULT_CRITERION = "Is the response's final answer correct and is its reasoning sound?"
_VERDICT = re.compile(r"verdict\s*:\s*(yes|no)\b|^\s*(yes|no)[.!]?\s*$", re.IGNORECASE | re.MULTILINE)


def parse_verdict(text: str) -> float | None:
    matches = _VERDICT.findall(text)
    if not matches:
        return None
    word = next(w for w in matches[-1] if w)
    return 1.0 if word.lower() == "yes" else 0.0


@REWARDS.register("judge")
def judge(samples: list[Sample], judge_backend=None, criterion: str = DEFAULT_CRITERION,
          max_new_tokens: int = 256, **_) -> list[float | None]:
    if judge_backend is None:
        raise ValueError("the judge reward needs judge_backend (a Generator) in reward options")
    prompts = [[{"role": "user", "content": JUDGE_PROMPT.format(
        question=s.problem.question, reference=s.problem.answer or "(none)",
        response=s.text[-4000:], criterion=criterion)}] for s in samples]
    outs = judge_backend.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    return [parse_verdict(o[0].text) for o in outs]
