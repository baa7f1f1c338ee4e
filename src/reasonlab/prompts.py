"""Prompt formats: how a Problem becomes chat messages.

``r1`` is the DeepSeek-R1-Zero template (DeepSeek-AI 2025, Table 1) as the system message, with
the question as the user message; the backend renders both through the model's chat template.
"""

from __future__ import annotations

from reasonlab.registry import Registry
from reasonlab.types import Messages, Problem

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


@PROMPTS.register("r1")
def r1(problem: Problem) -> Messages:
    return [{"role": "system", "content": R1_SYSTEM}, {"role": "user", "content": problem.question}]


@PROMPTS.register("chat")
def chat(problem: Problem) -> Messages:
    """Messages given verbatim in ``problem.meta["messages"]`` (the server uses this)."""
    return list(problem.meta["messages"])


def build(problem: Problem, fmt: str = "r1") -> Messages:
    return PROMPTS.get(fmt)(problem)
