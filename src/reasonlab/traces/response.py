"""One response in our format, and its answer part.

Our format is ``<think>\\n{reasoning}\\n</think>\\n<answer>{answer}</answer>``. A completion
of a model prompted with the ``r1`` format continues the ``<think>\\n`` pre-fill, so the
response is pre-fill + completion, exactly what a model asked with the same prompt would be
trained to write. Reasoning servers return the chain of thought apart from the answer
(``reasoning_content``); we join them: ``<think>\\n`` (unless the pre-fill already opened the
block) + reasoning + ``\\n</think>\\n`` + the answer, wrapped in ``<answer>`` tags when the
server's answer has none (its whole text goes inside, so a ``\\boxed{}`` in it still decides).
"""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def assemble(prefix: str, text: str, reasoning: str | None) -> str:
    """The whole assistant response: ``prefix`` is the prompt's assistant pre-fill ('' if none)."""
    if not reasoning:
        return prefix + text
    opened = prefix.rstrip().endswith(THINK_OPEN)
    head = prefix if opened else prefix + THINK_OPEN + "\n"
    answer = text.strip()
    if "<answer>" not in answer:
        answer = f"<answer>{answer}</answer>"
    return f"{head}{reasoning.strip()}\n{THINK_CLOSE}\n{answer}"


def split_thinking(response: str) -> tuple[str, str] | None:
    """(chain of thought, answer part) split at the last ``</think>``; None if never closed.

    The verdict reads the answer part only: a number the model tried and rejected inside its
    thinking must not count as its answer.
    """
    end = response.rfind(THINK_CLOSE)
    if end < 0:
        return None
    start = response.find(THINK_OPEN)
    cot_start = start + len(THINK_OPEN) if 0 <= start < end else 0
    return response[cot_start:end], response[end + len(THINK_CLOSE):]


def split_response(response: str) -> tuple[str, str] | None:
    """``split_thinking``, except that a response with no think tags at all (a plain chain of
    thought or a direct answer, e.g. from the ``cot`` prompt: STaR on a base model that cannot
    write our format) is its own chain of thought and its own answer part. A block opened and
    never closed is still None: its answer cannot be told from its thinking."""
    if THINK_OPEN not in response and THINK_CLOSE not in response:
        return response, response
    return split_thinking(response)
