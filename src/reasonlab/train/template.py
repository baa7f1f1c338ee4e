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

Which template SFT trains with (``SFTConfig.chat_template``, ``select``): some models' own
templates rewrite reasoning (Qwen3's drops ``<think>`` from turns before the last user query and
re-spaces the last one), so the trained tokens would not be the rendered ones and ``sft_masks``
refuses them. ``verbatim`` swaps in a ChatML template built from the tokenizer's own
``<|im_start|>``/``<|im_end|>`` tokens that renders every turn's content as given; it is the
tokenizer's template for training and is saved (then baked as above) into the checkpoint, so plain
transformers builds the prompt the model was trained on. ``auto`` keeps the model's own template
when it renders a multi-turn reasoning probe verbatim, else switches to ``verbatim`` with a
logged one-line notice.
"""

from __future__ import annotations

import json
import logging

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


CHAT_TEMPLATES = ("auto", "own", "verbatim")  # SFTConfig.chat_template; see the module docstring
VERBATIM = ("{#- reasonlab verbatim ChatML template: every turn's content as given, <think> kept #}\n"
            "{%- for message in messages %}"
            "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
            "{%- endfor %}"
            "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")
PROBE = ({"role": "user", "content": "What is 2 + 2?"},
         {"role": "assistant", "content": "<think>\n2 + 2 = 4\n</think>\n4"},
         {"role": "user", "content": "And 3 + 3?"},
         {"role": "assistant", "content": "<think>\n3 + 3 = 6\n</think>\n6"})
log = logging.getLogger(__name__)


def verbatim_template(tokenizer) -> str:
    """The ChatML template that renders every turn verbatim; ConfigError without ChatML tokens."""
    if not has_chatml(tokenizer):
        from reasonlab.config import ConfigError

        raise ConfigError("chat_template: 'verbatim' is ChatML and this tokenizer has no <|im_start|>/<|im_end|> "
                          "tokens; use chat_template=own (its template must keep <think> verbatim)")
    return VERBATIM


def has_chatml(tokenizer) -> bool:
    vocab = tokenizer.get_vocab()
    return all(t in vocab for t in CHATML_TOKENS)


def select(tokenizer, option: str) -> str:
    """Set the template SFT trains with (in place) per ``option`` (auto | own | verbatim); returns
    the one chosen, 'own' or 'verbatim'. ``auto`` logs why it switches."""
    if option == "own":
        return "own"
    if option == "verbatim":
        tokenizer.chat_template = verbatim_template(tokenizer)
        return "verbatim"
    why = probe(tokenizer)
    if why is None or not has_chatml(tokenizer):
        return "own"  # renders reasoning verbatim, or no ChatML to fall back on: sft_masks decides per row
    tokenizer.chat_template = VERBATIM
    log.warning("chat_template=auto: the model's chat template does not keep reasoning traces verbatim (%s); "
                "training with the verbatim ChatML template, saved into the checkpoint (chat_template=own "
                "refuses such rows instead)", why)
    return "verbatim"


def probe(tokenizer) -> str | None:
    """None when the tokenizer's template renders a two-turn reasoning conversation verbatim,
    else the reason (``sft_masks``' check, which also guards every training row)."""
    from reasonlab.errors import DataError
    from reasonlab.train.sft_masks import HINT, encode
    from reasonlab.train.sft_rows import Conversation

    try:
        encode(tokenizer, Conversation("probe", PROBE, (1, 3)))
    except DataError as exc:
        return str(exc).removeprefix("probe: ").removesuffix(HINT)
    return None
