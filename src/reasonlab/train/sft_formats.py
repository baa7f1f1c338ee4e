"""The schemas public trace sets ship in, each mapped to conversations in our R1 format.

A format (registered in ``SFT_FORMATS``) names its fields (logical name -> default column; the
user renames with ``--field logical=column``), the columns that identify it, and a reader from
one record to zero or more ``(messages, targets)`` (``sft_rows`` then normalises each assistant
turn to ``<think>\\n{reasoning}\\n</think>\\n{answer}``). With ``format: auto`` each record takes
the first format, in registration order below, whose identifying columns it has.

- ``openr1`` (OpenR1-Math-220k): ``problem`` + ``generations`` (R1 traces, ``<think>`` inline)
  with per-generation ``correctness_*`` flags and ``is_reasoning_complete``. A generation is
  verified when any ``correctness_*`` flag is true and its reasoning is complete (where those
  columns exist). ``generations``: ``first`` = the first verified one, ``verified`` = every
  verified one (one conversation each), ``all`` = every one, flags ignored. A record with no
  verified generation is counted as unverified, not as a bad row. (Its ``messages`` column
  repeats one generation; the generations are the source here.)
- ``messages`` and ``prompt_completion`` (TRL's conversational and standard shapes): the
  readers of ``sft_rows.to_conversation``.
- ``sharegpt`` (Sky-T1, Bespoke-Stratos-17k, OpenThoughts-114k): ``system`` + ``conversations``
  of ``{from, value}`` (``human``/``gpt``; ``role``/``content`` also read). Sky-T1's markers
  become ours: ``<|begin_of_thought|>…<|end_of_thought|>`` is the reasoning and
  ``<|begin_of_solution|>…<|end_of_solution|>`` the answer. A system prompt that instructs
  those markers is dropped once they are converted: it would describe a format the targets no
  longer use.
- ``s1k`` (s1K, s1K-1.1): ``question`` + a reasoning trajectory + the attempt. The pair is the
  first present of (``deepseek_thinking_trajectory``, ``deepseek_attempt``),
  (``thinking_trajectories``, ``attempt``), (``gemini_thinking_trajectory``, ``gemini_attempt``);
  ``--field thinking=… --field attempt=…`` chooses another. A list trajectory uses its first.

Readers raise ValueError with the reason; the caller prefixes ``file:row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from reasonlab.config import ConfigError
from reasonlab.errors import DataError
from reasonlab.registry import Registry
from reasonlab.train.sft_rows import THINK_CLOSE, THINK_OPEN, Conversation, messages_targets

Turns = tuple[list[dict[str, Any]], tuple[int, ...]]  # raw messages, indices of target turns
Columns = dict[str, str]  # logical field -> column of this data set


@dataclass(frozen=True)
class SFTFormat:
    fields: dict[str, str]  # logical name -> default column
    shape: str  # what identifies it, for error messages
    identify: Callable[[dict[str, Any], Columns], bool]  # (record, columns) -> is it this format
    read: Callable[[dict[str, Any], Columns, str], list[Turns]]  # (record, columns, generations)

    def columns(self, overrides: dict[str, str]) -> Columns:
        return {**self.fields, **{k: v for k, v in overrides.items() if k in self.fields}}

    def matches(self, record: dict[str, Any], overrides: dict[str, str]) -> bool:
        return self.identify(record, self.columns(overrides))


SFT_FORMATS: Registry[SFTFormat] = Registry("SFT data format")
GENERATIONS = ("first", "verified", "all")


@dataclass(frozen=True)
class ReadSpec:
    """How records are read: ``format`` (auto or a registered name), column renames, and which
    OpenR1 generations become examples."""

    format: str = "auto"
    fields: dict[str, str] = field(default_factory=dict)
    generations: str = "first"

    def check(self) -> None:
        if self.format != "auto":
            SFT_FORMATS.get(self.format)  # RegistryError lists the valid names
        if self.generations not in GENERATIONS:
            raise ConfigError(f"openr1_generations: expected one of {', '.join(GENERATIONS)}, "
                              f"got {self.generations!r}")
        known = field_names() if self.format == "auto" else set(SFT_FORMATS.get(self.format).fields)
        for name, column in self.fields.items():
            if name not in known:
                raise ConfigError(f"fields.{name}: no such field"
                                  + ("" if self.format == "auto" else f" in format {self.format}")
                                  + f" (valid: {', '.join(sorted(known))})")
            if not isinstance(column, str) or not column:
                raise ConfigError(f"fields.{name}: expected a column name, got {column!r}")


def conversations(src: str, record: dict[str, Any], spec: ReadSpec) -> tuple[str, list[Conversation]]:
    """(format name, the record's conversations); DataError("src: reason") when unusable."""
    name = spec.format if spec.format != "auto" else detect(record, spec.fields)
    if name is None:
        raise DataError(f"{src}: matches no known format (fields present: {', '.join(record) or 'none'}; "
                        f"expected {shapes()}; --format and --field choose one)")
    fmt = SFT_FORMATS.get(name)
    try:
        turns = fmt.read(record, fmt.columns(spec.fields), spec.generations)
    except ValueError as exc:
        raise DataError(f"{src}: {exc}" + (f" (read as {name})" if spec.format == "auto" else "")) from None
    n = len(turns)
    return name, [Conversation(f"{src} (trace {k + 1} of {n})" if n > 1 else src, tuple(m), t)
                  for k, (m, t) in enumerate(turns)]


def field_names() -> set[str]:
    """Every logical field some format has (what ``--field NAME=column`` accepts)."""
    return {f for name in SFT_FORMATS.names() for f in SFT_FORMATS.get(name).fields}


def detect(record: dict[str, Any], overrides: dict[str, str]) -> str | None:
    """The first registered format whose identifying columns ``record`` has (None: no match)."""
    return next((n for n in SFT_FORMATS.ordered() if SFT_FORMATS.get(n).matches(record, overrides)), None)


def shapes() -> str:
    """What each format looks like, for the error on a record that matches none."""
    return "; ".join(f"{n}: {SFT_FORMATS.get(n).shape}" for n in SFT_FORMATS.ordered())


def _has(*fields: str) -> Callable[[dict[str, Any], Columns], bool]:
    return lambda record, cols: all(cols[f] in record for f in fields)


def _need(record: dict[str, Any], column: str) -> Any:
    if column not in record:
        raise ValueError(f"missing field {column!r} (fields present: {', '.join(record) or 'none'})")
    return record[column]


def _text(value: Any, column: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{column}: expected non-empty text, got "
                         f"{'empty text' if isinstance(value, str) else type(value).__name__}")
    return value


# ---- openr1 --------------------------------------------------------------------------------
def _openr1(record: dict[str, Any], cols: Columns, generations: str) -> list[Turns]:
    problem = _text(_need(record, cols["problem"]), cols["problem"])
    gens = _need(record, cols["generations"])
    if not isinstance(gens, list) or not gens:
        raise ValueError(f"{cols['generations']}: expected a non-empty list of traces")
    keep = range(len(gens)) if generations == "all" else [i for i in range(len(gens)) if _verified(record, i)]
    if generations == "first":
        keep = keep[:1]
    return [messages_targets({"messages": [{"role": "user", "content": problem},
                                           {"role": "assistant", "content": gens[i]}]})
            for i in keep]


def _verified(record: dict[str, Any], i: int) -> bool:
    flags = [v for k, v in record.items() if k.startswith("correctness_") and isinstance(v, list)]
    correct = any(i < len(f) and f[i] is True for f in flags) if flags else True
    complete = record.get("is_reasoning_complete")
    return correct and not (isinstance(complete, list) and i < len(complete) and complete[i] is False)


SFT_FORMATS.register("openr1")(SFTFormat(
    {"problem": "problem", "generations": "generations"}, "problem + generations",
    _has("problem", "generations"), _openr1))


# ---- messages / prompt_completion (sft_rows) ------------------------------------------------
def _messages(record: dict[str, Any], cols: Columns, _: str) -> list[Turns]:
    return [messages_targets({"messages": _need(record, cols["messages"])})]


def _prompt_completion(record: dict[str, Any], cols: Columns, _: str) -> list[Turns]:
    row = {"prompt": _need(record, cols["prompt"]), "completion": _need(record, cols["completion"])}
    if record.get("reasoning_content") is not None:
        row["reasoning_content"] = record["reasoning_content"]
    return [messages_targets(row)]


SFT_FORMATS.register("messages")(SFTFormat({"messages": "messages"}, "messages", _has("messages"),
                                           _messages))
SFT_FORMATS.register("prompt_completion")(SFTFormat(
    {"prompt": "prompt", "completion": "completion"}, "prompt + completion",
    _has("prompt", "completion"), _prompt_completion))


# ---- sharegpt --------------------------------------------------------------------------------
SKY = ("<|begin_of_thought|>", "<|end_of_thought|>", "<|begin_of_solution|>", "<|end_of_solution|>")
ROLE_OF = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
           "system": "system", "tool": "tool", "function": "tool"}


def _sharegpt(record: dict[str, Any], cols: Columns, _: str) -> list[Turns]:
    turns = _need(record, cols["conversations"])
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{cols['conversations']}: expected a non-empty list of turns")
    msgs, converted = [], False
    for i, t in enumerate(turns):
        where = f"{cols['conversations']}[{i}]"
        if not isinstance(t, dict):
            raise ValueError(f"{where}: expected an object with from and value")
        who, value = t.get("from", t.get("role")), t.get("value", t.get("content"))
        if who not in ROLE_OF:
            raise ValueError(f"{where}: unknown speaker {who!r} (valid: {', '.join(ROLE_OF)})")
        role = ROLE_OF[who]
        if role == "assistant" and isinstance(value, str) and SKY[0] in value:
            value, converted = sky_to_r1(value, where), True
        msgs.append({"role": role, "content": value})
    system = record.get(cols["system"])
    if isinstance(system, str) and system.strip() and msgs[0]["role"] != "system" \
            and not (converted and SKY[0] in system):
        msgs.insert(0, {"role": "system", "content": system})
    return [messages_targets({"messages": msgs})]


def sky_to_r1(text: str, where: str) -> str:
    """Sky-T1's thought/solution markers as one ``<think>`` block and the answer."""
    if THINK_OPEN in text or THINK_CLOSE in text:
        raise ValueError(f"{where}: both <think> and {SKY[0]} markers")
    head, _, rest = text.partition(SKY[0])
    thought, sep, after = rest.partition(SKY[1])
    if not sep:
        raise ValueError(f"{where}: {SKY[0]} is never closed by {SKY[1]}")
    if head.strip():
        raise ValueError(f"{where}: text before {SKY[0]} cannot be put in the R1 format")
    if SKY[2] in after:
        outside, _, sol = after.partition(SKY[2])
        answer, sep, tail = sol.partition(SKY[3])
        if not sep:
            raise ValueError(f"{where}: {SKY[2]} is never closed by {SKY[3]}")
        if outside.strip() or tail.strip():
            raise ValueError(f"{where}: text outside the thought and solution markers")
    else:
        answer = after
    return f"{THINK_OPEN}\n{thought.strip()}\n{THINK_CLOSE}\n{answer.strip()}"


SFT_FORMATS.register("sharegpt")(SFTFormat(
    {"conversations": "conversations", "system": "system"}, "conversations (+ system)",
    _has("conversations"), _sharegpt))


# ---- s1k -------------------------------------------------------------------------------------
S1K_PAIRS = (("deepseek_thinking_trajectory", "deepseek_attempt"), ("thinking_trajectories", "attempt"),
             ("gemini_thinking_trajectory", "gemini_attempt"))


def _s1k(record: dict[str, Any], cols: Columns, _: str) -> list[Turns]:
    question = _text(_need(record, cols["question"]), cols["question"])
    if cols["thinking"] == "auto" or cols["attempt"] == "auto":
        pair = next((p for p in S1K_PAIRS if p[0] in record and p[1] in record), None)
        if pair is None:
            raise ValueError("no trajectory/attempt pair (expected one of "
                             + ", ".join(" + ".join(p) for p in S1K_PAIRS) + ")")
        thinking_col, attempt_col = (cols["thinking"] if cols["thinking"] != "auto" else pair[0],
                                     cols["attempt"] if cols["attempt"] != "auto" else pair[1])
    else:
        thinking_col, attempt_col = cols["thinking"], cols["attempt"]
    thinking = _need(record, thinking_col)
    if isinstance(thinking, list):
        thinking = thinking[0] if thinking else ""
    thinking = _text(thinking, thinking_col)
    attempt = _text(_need(record, attempt_col), attempt_col)
    return [messages_targets({"prompt": question, "completion": attempt, "reasoning_content": thinking})]


def _s1k_identify(record: dict[str, Any], cols: Columns) -> bool:
    thinking = [cols["thinking"]] if cols["thinking"] != "auto" else [p[0] for p in S1K_PAIRS]
    return cols["question"] in record and any(c in record for c in thinking)


SFT_FORMATS.register("s1k")(SFTFormat(
    {"question": "question", "thinking": "auto", "attempt": "auto"},
    "question + a thinking trajectory + its attempt", _s1k_identify, _s1k))
