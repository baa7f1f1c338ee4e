"""Token ids and the loss mask of one conversation, found by rendering it turn by turn.

Why turn by turn: a mask found by searching for one template's markers (``<|im_start|>assistant``)
breaks on the next template, and masking the end-of-turn token out makes a model that never stops.
Instead, for each target assistant message ``i`` we render with ``tokenizer.apply_chat_template``

    P_i = messages[:i] + generation prompt      (what the model sees at inference)
    T_i = messages[:i + 1]                      (the conversation once it has answered)

and require the chain ``T_{j} ⊑ P_i ⊑ T_i ⊑ T_last`` (each a prefix of the next, j the previous
target). The target of turn i is ``T_i[len(P_i):]`` up to the end-of-turn text the template emits
after the content, trailing whitespace excluded (ChatML: ``…<|im_end|>`` without the ``\\n`` that
begins the next turn; Llama-3: ``…<|eot_id|>``). Checks, each a DataError naming ``file:line``:

- P_i is not a prefix of T_i: the generation prompt pre-fills text the content does not start with.
- P_i does not extend T_j: the template rewrites an earlier assistant turn once later turns follow
  (e.g. strips ``<think>`` from history), so the tokens we would train on are not the model's.
- The content is not verbatim in T_i, or the template inserts non-whitespace text before it.
- Nothing but whitespace after the content: no end-of-turn marker to learn.
- Token level: ``tok(P_i)`` and ``tok(T_i[:end])`` are exact prefixes of ``tok(T_last)`` (no token
  crosses the prompt/target boundary), so training sees the prompt tokens inference will see.

The errors of a template that rewrites or adds to the content name ``chat_template=verbatim``
(``train/template.py``: a template that renders every turn as given); these checks guard every
row whichever template is chosen.

A pre-fill (a generation prompt ending ``<think>\\n``, like DeepSeek-R1's template): the content
must start with it; the pre-filled text stays prompt and the rest of the content is target.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonlab.errors import DataError
from reasonlab.train.sft_rows import Conversation


HINT = "; chat_template=verbatim trains with a ChatML template that keeps every turn as given"


@dataclass(frozen=True)
class Encoded:
    ids: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]  # [start, end) token ranges that carry loss, in order


def encode(tokenizer, conv: Conversation) -> Encoded:
    """Render, tokenize and locate the target spans of ``conv``; see the module docstring."""
    msgs = list(conv.messages)
    last = conv.targets[-1]
    full = _render(tokenizer, msgs[:last + 1], False, conv.source)
    ids = _tok(tokenizer, full)
    spans, prev = [], ""
    for i in conv.targets:
        prompt = _render(tokenizer, msgs[:i], True, conv.source)
        turn = full if i == last else _render(tokenizer, msgs[:i + 1], False, conv.source)
        where = f"{conv.source}: messages[{i}]"
        if not prompt.startswith(prev):
            raise DataError(f"{where}: the chat template renders an earlier assistant turn differently "
                            f"once later turns follow (it drops or rewrites it, e.g. strips <think> from "
                            f"history); training on it would teach tokens the model never sees" + HINT)
        if not turn.startswith(prompt):
            raise DataError(f"{where}: the rendered assistant turn does not continue the generation "
                            f"prompt, which ends {prompt[-20:]!r} (a pre-fill the content does not start with?)")
        if not full.startswith(turn):
            raise DataError(f"{where}: the chat template renders this turn differently once later turns "
                            f"follow (it drops or rewrites it)" + HINT)
        end = _target_end(turn, len(prompt), len(prev), msgs[i]["content"], where)
        head, upto = _tok(tokenizer, prompt), _tok(tokenizer, full[:end])
        k0, k1 = len(head), len(upto)
        if ids[:k0] != head or ids[:k1] != upto or k1 <= k0:
            raise DataError(f"{where}: a token crosses the prompt/target boundary (the prompt tokenizes "
                            f"differently alone than inside the conversation)")
        spans.append((k0, k1))
        prev = turn
    return Encoded(tuple(ids[:spans[-1][1]]), tuple(spans))


def _target_end(turn: str, start: int, lo: int, content: str, where: str) -> int:
    """Char offset where the target of ``turn`` ends (content + end-of-turn marker)."""
    s = turn.find(content, max(lo, start - len(content) + 1))
    if s < 0:
        raise DataError(f"{where}: the assistant content does not appear verbatim in the rendered "
                        f"conversation (the chat template drops or rewrites it, e.g. its <think> block)" + HINT)
    inserted = turn[start:s]
    if inserted.strip():
        raise DataError(f"{where}: the chat template inserts {inserted[:40]!r} before the assistant "
                        f"content that the generation prompt does not contain" + HINT)
    e = s + len(content)
    eot = turn[e:].rstrip()
    if not eot.strip():
        raise DataError(f"{where}: the chat template emits no end-of-turn marker after the assistant "
                        f"content; the model could never learn to stop")
    return e + len(eot)


def _render(tokenizer, msgs: list[dict[str, str]], generation_prompt: bool, source: str) -> str:
    try:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as exc:  # jinja raise_exception(...) and friends: the row, not the code
        raise DataError(f"{source}: the chat template refuses this conversation ({exc})") from None


def _tok(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)
