"""A checkpoint's chat template reproduces the prompt format it was trained with.

Why: a model trained with the R1 format (the R1-Zero system prompt, the assistant turn
pre-filled with ``<think>\\n``) only behaves as trained when a caller builds exactly that prompt.
Plain transformers users call ``apply_chat_template(messages, add_generation_prompt=True)``
with a bare user question; the demo's checkpoint then scored format 0.00 instead of 1.00.
DeepSeek-R1's released template pre-fills ``<think>\\n`` the same way.

``bake(template, fmt)`` wraps the original Jinja template:
- when the conversation has no system message and the format has one, the format's system
  message is put first;
- when ``add_generation_prompt`` is true, the format's assistant pre-fill follows the
  template's own generation prompt.
Our own code renders a pre-filled prompt with ``continue_final_message`` (no generation prompt)
and its system message given, so it renders identically with or without the baked template.
"""

from __future__ import annotations

import json

from reasonlab import prompts as prompt_formats
from reasonlab.types import Problem

MARK = "{#- reasonlab prompt format: "


def format_parts(fmt: str) -> tuple[str | None, str]:
    """(system message or None, assistant pre-fill or '') of a prompt format."""
    msgs = prompt_formats.build(Problem(id="probe", question="QUESTION", answer=""), fmt)
    system = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else None
    return system, prompt_formats.response_prefix(msgs)


def bake(template: str, fmt: str) -> str:
    """The original template wrapped so a bare user turn renders as format ``fmt`` does."""
    if template.startswith(MARK):  # a checkpoint of a checkpoint: wrap the original once
        template = _unwrap(template)
    system, prefill = format_parts(fmt)
    if system is None and not prefill:
        return template
    head = MARK + fmt + " #}\n"
    if system is not None:
        head += ("{%- if not messages or messages[0]['role'] != 'system' %}"
                 "{%- set messages = [{'role': 'system', 'content': " + json.dumps(system) + "}] + messages %}"
                 "{%- endif %}")
    tail = ""
    if prefill:
        tail = "{%- if add_generation_prompt %}" + _jinja_literal(prefill) + "{%- endif %}"
    return head + "\n" + BEGIN + template + END + tail


BEGIN = "{#- original template #}"
END = "{#- end of original template #}"


def _unwrap(template: str) -> str:
    if BEGIN in template and END in template:
        return template.split(BEGIN, 1)[1].split(END, 1)[0]
    return template


def _jinja_literal(text: str) -> str:
    return "{{ " + json.dumps(text) + " }}"


def apply(tokenizer, fmt: str) -> None:
    """Bake ``fmt`` into ``tokenizer.chat_template`` in place (idempotent)."""
    template = tokenizer.chat_template
    if isinstance(template, str) and fmt:
        tokenizer.chat_template = bake(template, fmt)
