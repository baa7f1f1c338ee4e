"""Prompt formats: how a Problem becomes chat messages.

``r1`` is the DeepSeek-R1-Zero template (DeepSeek-AI 2025, Table 1) as the system message, with
the question as the user message; the backend renders both through the model's chat template.
Its assistant turn is pre-filled with ``<think>\n``, as DeepSeek recommends for R1 ("enforce the
model to initiate its response with <think>\n") and as TinyZero does: a 135M model never opens
the tag on its own, and without the tag the format reward has nothing to reinforce.
``r1_noprefill`` is the bare template. A final assistant message is a prefill: backends continue
it, and ``response_prefix`` gives it back so scorers see the whole response.
"""

from __future__ import annotations

from reasonlab.registry import Registry
from reasonlab.types import Messages, Problem, response_prefix  # noqa: F401 (re-exported)

R1_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively."
)
COT_SUFFIX = "\nLet's think step by step."

PROMPTS: Registry = Registry("prompt format")


@PROMPTS.register("plain")
def plain(problem: Problem) -> Messages:
    return [{"role": "user", "content": problem.question}]


@PROMPTS.register("cot")
def cot(problem: Problem) -> Messages:
    return [{"role": "user", "content": problem.question + COT_SUFFIX}]


THINK_PREFILL = "<think>\n"


@PROMPTS.register("r1")
def r1(problem: Problem) -> Messages:
    return r1_noprefill(problem) + [{"role": "assistant", "content": THINK_PREFILL}]


@PROMPTS.register("r1_noprefill")
def r1_noprefill(problem: Problem) -> Messages:
    return [{"role": "system", "content": R1_SYSTEM}, {"role": "user", "content": problem.question}]


def render_chat(tokenizer, messages: Messages) -> str:
    """Chat messages to text; a final assistant message is continued, not closed."""
    if messages and messages[-1].get("role") == "assistant":
        return tokenizer.apply_chat_template(messages, continue_final_message=True, tokenize=False)
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


@PROMPTS.register("chat")
def chat(problem: Problem) -> Messages:
    """Messages given verbatim in ``problem.meta["messages"]`` (the server uses this)."""
    return list(problem.meta["messages"])


def build(problem: Problem, fmt: str = "r1") -> Messages:
    return PROMPTS.get(fmt)(problem)
