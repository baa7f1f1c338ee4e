"""Journey-learning SFT data (Qin et al. 2024, "O1 Replication Journey"): besides the shortcut
(a correct solution), a journey example keeps a wrong attempt, a short reflection naming the
error, then the correct solution, so the student sees what finding and fixing a mistake looks like.

Built from one ``generate`` run directory, on the problems where the teacher was both right
(a kept trace in ``traces.jsonl``) and wrong (a sample judged ``incorrect`` in ``samples.jsonl``,
its text in ``raw.jsonl``), so both sets come from the same sampled problems:
- journey candidates: each wrong attempt, paired with one of the problem's correct traces;
- shortcut candidates: every correct trace of those problems;
- the reflection names the first false arithmetic step of the wrong attempt ("7 + 5 is 12, not
  13") when it has one, else its wrong final answer;
- equal token budgets: each set takes candidates in a seeded order while its assistant tokens
  (student tokenizer) stay within the budget: ``token_budget``, or by default the smaller
  set's total, so neither set wins by seeing more text.
Every choice comes from ``random.Random(f"{seed}:...")``: the same inputs and seed give the same
files byte for byte.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path

from reasonlab.io import (
    atomic_write_json,
    atomic_write_jsonl,
    read_json,
    read_jsonl_rows,
)
from reasonlab.prompts import PROMPTS, response_prefix
from reasonlab.traces.response import assemble, split_thinking
from reasonlab.types import Problem

_STEP = re.compile(r"(-?\d+)\s*([+\-*])\s*(-?\d+)\s*(?:=|is|gives|equals)\s*(-?\d+)")
OPENERS = ("Wait,", "Hold on,", "Hmm, let me check that.")


def reflection(wrong_cot: str, wrong_answer: str | None, rng: random.Random) -> str:
    """One or two sentences that name the error of the wrong attempt."""
    opener = rng.choice(OPENERS)
    for a, op, b, c in _STEP.findall(wrong_cot):
        true = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
        if true != int(c):
            return f"{opener} {a} {op} {b} is {true}, not {c}. That step was wrong; let me solve it again."
    shown = f" {wrong_answer}" if wrong_answer else " that answer"
    return f"{opener}{shown} does not check out against the question. Let me solve it again carefully."


def build(gen_dir: str | Path, out_dir: str | Path, tokenizer, seed: int = 0, token_budget: int = 0) -> dict:
    """Write ``shortcut.jsonl``, ``journey.jsonl`` and ``stats.json`` under ``out_dir``."""
    gen_dir, out_dir = Path(gen_dir), Path(out_dir)
    config = read_json(gen_dir / "config.json") or {}
    prefix = response_prefix(PROMPTS.get(config.get("sampling", {}).get("prompt", "r1"))(Problem("x", "q", "a")))
    correct: dict[str, list[dict]] = defaultdict(list)
    for row in read_jsonl_rows(gen_dir / "traces.jsonl"):
        correct[row["problem_id"]].append(row)
    raw = {(r["problem_id"], r["sample_index"]): r for r in read_jsonl_rows(gen_dir / "raw.jsonl")
           if r.get("key") == config.get("key")}
    wrong: dict[str, list[tuple[str, str | None, int]]] = defaultdict(list)
    order: list[str] = []
    for s in read_jsonl_rows(gen_dir / "samples.jsonl"):
        if s["problem_id"] not in order:
            order.append(s["problem_id"])
        r = raw.get((s["problem_id"], s["sample_index"]))
        if s["fate"] == "incorrect" and r is not None:
            parts = split_thinking(assemble(prefix, r["text"], r.get("reasoning")))
            # a wrong attempt that closed its think block twice would carry a stray tag into the
            # journey's single block (SFT refuses such rows): only clean attempts are used
            if parts and parts[0].strip() and not _has_think_tag(parts[0]):
                wrong[s["problem_id"]].append((parts[0].strip(), s.get("extracted"), s["sample_index"]))
    shared = [pid for pid in order if correct.get(pid) and wrong.get(pid)]

    journey, shortcut = [], []
    for pid in shared:
        rng = random.Random(f"{seed}:{pid}")
        for cot, answer, index in wrong[pid]:
            right = rng.choice(correct[pid])
            r_cot, r_answer = split_thinking(right["messages"][-1]["content"])
            text = (f"<think>\n{cot}\n\n{reflection(cot, answer, rng)}\n\n{r_cot.strip()}\n</think>\n"
                    f"{r_answer.strip()}")
            journey.append(_row(right, text, "journey", wrong_sample=index))
        shortcut.extend(_row(r, r["messages"][-1]["content"], "shortcut") for r in correct[pid])

    count = lambda rows: [len(tokenizer(r["messages"][-1]["content"])["input_ids"]) for r in rows]
    jt, st = count(journey), count(shortcut)
    budget = min(sum(jt), sum(st))
    budget = min(budget, token_budget) if token_budget else budget
    j_rows, j_tok = _fill(journey, jt, budget, random.Random(f"{seed}:journey"))
    s_rows, s_tok = _fill(shortcut, st, budget, random.Random(f"{seed}:shortcut"))
    atomic_write_jsonl(out_dir / "journey.jsonl", j_rows)
    atomic_write_jsonl(out_dir / "shortcut.jsonl", s_rows)
    stats = {"problems": len(shared), "token_budget": budget,
             "journey": {"examples": len(j_rows), "tokens": j_tok, "candidates": len(journey)},
             "shortcut": {"examples": len(s_rows), "tokens": s_tok, "candidates": len(shortcut)}}
    atomic_write_json(out_dir / "stats.json", stats)
    return stats


def _has_think_tag(text: str) -> bool:
    return "<think>" in text or "</think>" in text


def _row(source: dict, content: str, kind: str, **extra) -> dict:
    return {"messages": source["messages"][:-1] + [{"role": "assistant", "content": content}],
            "problem_id": source["problem_id"],
            "provenance": {"set": kind, "correct_sample": source["provenance"]["sample_index"], **extra}}


def _fill(rows: list[dict], tokens: list[int], budget: int, rng: random.Random) -> tuple[list[dict], int]:
    """Rows in a seeded order while the total stays within ``budget``; kept in their original order."""
    picked, total = [], 0
    for i in rng.sample(range(len(rows)), len(rows)):
        if total + tokens[i] <= budget:
            picked.append(i)
            total += tokens[i]
    return [rows[i] for i in sorted(picked)], total
