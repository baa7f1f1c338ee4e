"""The traces package piece by piece: response assembly, filters, dedup, decontamination,
selection, and the whole pipeline over a scripted Generator (servers: test_generate_*.py)."""

from __future__ import annotations

import json
import re

import pytest

from reasonlab.io import read_jsonl_rows
from reasonlab.prompts import build
from reasonlab.tasks.base import get_task
from reasonlab.traces.decontam import Decontaminator
from reasonlab.traces.dedup import Deduper, jaccard, shingles
from reasonlab.traces.filters import FilterConfig, quality_reason
from reasonlab.traces.pipeline import sft_messages
from reasonlab.traces.response import assemble, split_thinking
from reasonlab.traces.run import run
from reasonlab.traces.select import SelectConfig, select
from reasonlab.traces.generate import SamplingSettings
from reasonlab.types import Problem

NO_DECONTAM = Decontaminator([])


def test_assemble_joins_separate_reasoning_in_our_format():
    assert assemble("<think>\n", "2+3=5\n</think>\n<answer>5</answer>", None) == \
        "<think>\n2+3=5\n</think>\n<answer>5</answer>"
    # a reasoning server: pre-fill already opened the block, the answer had no tags
    assert assemble("<think>\n", "The answer is \\boxed{5}.", " 2 plus 3 \n") == \
        "<think>\n2 plus 3\n</think>\n<answer>The answer is \\boxed{5}.</answer>"
    assert assemble("", "<answer>5</answer>", "sum") == "<think>\nsum\n</think>\n<answer>5</answer>"


def test_answer_is_read_after_the_last_think_close_only(tmp_path, scripted):
    resp = "<think>\nmaybe <answer>5</answer>? so 5\n</think>\nI cannot decide."
    cot, answer = split_thinking(resp)
    assert cot == "\nmaybe <answer>5</answer>? so 5\n" and answer == "\nI cannot decide."
    assert split_thinking("<think>\nnever closed <answer>5</answer>") is None
    task = get_task("arith")
    problem = Problem("arith/x/0", "What is 2 + 3?", "5")
    assert task.score(problem, resp).correct is True  # the whole text would pass on the thinking's 5
    teacher = scripted(lambda prompt, i: ["maybe 5? so 5\n</think>\nI cannot decide.",
                                          "it is 5 <answer>5</answer> and no close"][i])
    stats = run(task, teacher, [problem], SamplingSettings(teacher="t"), 2, tmp_path, progress=False,
                decontaminator=NO_DECONTAM)
    assert stats["rejected"]["unjudged"] + stats["rejected"]["incorrect"] == 1
    assert stats["rejected"]["no_think_end"] == 1 and stats["written"] == 0


def test_responses_without_think_tags_are_judged_whole_for_star_on_a_cot_prompt(tmp_path, scripted):
    """STaR on a base model with the cot prompt: no think block anywhere, the whole response is
    the answer part; rows are kept when the R1-format filter is off, refused when it is on."""
    task = get_task("arith")
    problem = Problem("arith/x/0", "What is 2 + 3?", "5")
    teacher = scripted(lambda prompt, i: ["Two plus three makes 5.", "Two plus three makes 6."][i])
    settings = SamplingSettings(teacher="t", prompt="cot")
    stats = run(task, teacher, [problem], settings, 2, tmp_path / "a", progress=False, decontaminator=NO_DECONTAM,
                filters=FilterConfig(format=False))
    assert stats["written"] == 1 and stats["rejected"]["incorrect"] == 1 and stats["rejected"]["no_think_end"] == 0
    rows = [json.loads(x) for x in (tmp_path / "a" / "traces.jsonl").read_text().splitlines()]
    assert rows[0]["messages"][-1] == {"role": "assistant", "content": "Two plus three makes 5."}
    assert rows[0]["messages"][0]["content"].endswith("Let's think step by step.")
    stats = run(task, teacher, [problem], settings, 2, tmp_path / "b", progress=False, decontaminator=NO_DECONTAM)
    assert stats["written"] == 0 and stats["rejected"]["format"] == 1


def test_sft_messages_replace_the_prefill_with_the_whole_response():
    p = Problem("p", "What is 2 + 3?", "5")
    r1 = build(p, "r1")
    msgs = sft_messages(r1, "<think>\nx\n</think>\n<answer>5</answer>")
    assert msgs[:2] == r1[:2] and msgs[2] == {"role": "assistant", "content": "<think>\nx\n</think>\n<answer>5</answer>"}
    plain = sft_messages(build(p, "plain"), "resp")
    assert plain == [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "resp"}]


@pytest.mark.parametrize("cot,reason", [
    ("I add two and three to get five.", None),
    ("我们 add 两个 numbers 然后 得到 five", "language"),
    ("Let me check:\n```python\nprint(2+3)\n```\nso five.", "code_blocks"),
    ("word " * 700 + "\n\nshort", "long_paragraphs"),
    ("short one\n\n" + "w " * 1400, None),  # 2800 chars: under the 3000 limit
    ("   ", "format"),  # empty thinking
])
def test_quality_filters(cot, reason):
    resp = f"<think>\n{cot}\n</think>\n<answer>5</answer>"
    assert quality_reason(resp, cot, FilterConfig(), code_task=False) == reason


def test_quality_filters_are_switches():
    cot = "Let me check:\n```python\nprint(2+3)\n```\nso five."
    resp = f"<think>\n{cot}\n</think>\n<answer>5</answer>"
    assert quality_reason(resp, cot, FilterConfig(code_blocks=False), code_task=False) is None
    assert quality_reason(resp, cot, FilterConfig(), code_task=True) is None  # code belongs in code tasks
    assert quality_reason("<answer>5</answer><answer>5</answer>", "", FilterConfig(format=False),
                          code_task=False) is None


def test_dedup_exact_and_near_within_a_question():
    base = ("first add the tens, twenty plus thirty is fifty, then the ones, two plus three is five; "
            "checking by counting up from twenty three by thirty two gives fifty five again, and the "
            "difference of the two numbers is nine, which does not matter here, so the total is fifty five")
    near = base.replace("total", "sum")
    other = "count up from twenty by thirty to reach fifty, add five more to reach fifty five overall"
    assert jaccard(shingles(base, 3), shingles(near, 3)) >= 0.8 > jaccard(shingles(base, 3), shingles(other, 3))
    d = Deduper()
    assert [d.check("Q?", t) for t in (base, "  FIRST  add the tens,\n" + base[20:], near, other)] == \
        [None, "duplicate", "near_duplicate", None]
    assert d.check("another question?", base) is None  # other questions are not redundant
    off = Deduper(exact=False, near=False)
    assert off.check("Q?", base) is None and off.check("Q?", base) is None


def test_decontamination_by_ngrams_and_missing_sets():
    eval_q = "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning."
    d = Decontaminator([eval_q, "What is 2 + 3?"], n=8)
    assert d.contaminated("Rephrased: janet's DUCKS lay 16 eggs per day! How many are left?")
    assert not d.contaminated("Janet's ducks lay 16 eggs per week, and she sells them.")  # 7 words shared
    assert d.contaminated("what is 2+3") and not d.contaminated("What is 2 + 4?")
    report = Decontaminator.from_eval_sets(8, sets=(("arith", "test"), ("no_such_task", "test"))).report
    assert report["arith/test"] == {"available": True, "questions": len(get_task("arith").load("test"))}
    assert report["no_such_task/test"]["available"] is False and "no_such_task" in report["no_such_task/test"]["error"]


def test_shipped_eval_sets_flag_their_own_questions():
    d = Decontaminator.from_eval_sets()
    for name in ("gsm8k", "math500"):
        entry = d.report[f"{name}/test"]
        if entry["available"]:
            q = get_task(name).load("test", 1)[0].question
            assert d.contaminated(q)
        else:  # not shipped here: said so, never a crash
            assert entry["error"]


def _kept(pid, tokens, k=1):
    return [{"row": f"{pid}#{i}", "tokens": tokens, "sample_index": i} for i in range(k)]


def test_select_band_diversity_and_length():
    probs = [Problem(f"a{i}", "q", "1", meta={"subject": "algebra"}) for i in range(20)] + \
            [Problem(f"g{i}", "q", "1", meta={"subject": "geometry"}) for i in range(2)]
    rate = {p.id: 0.5 for p in probs} | {"a0": 1.0, "a1": 0.0}
    kept = {p.id: _kept(p.id, 1000 if p.id in ("a2", "a3") else 10, k=3) for p in probs if p.id != "a1"}
    everything = select(probs, rate, kept, SelectConfig(), "t")
    assert len(everything) == 3 * 21  # a1 has no kept trace
    banded = select(probs, rate, kept, SelectConfig(band=(0.0, 0.6)), "t")
    assert {r["row"].split("#")[0] for r in banded} == {p.id for p in probs} - {"a0", "a1"}
    picks = select(probs, rate, kept, SelectConfig(select=4, band=(0.0, 0.6), length_power=2.0, max_per_problem=1), "t")
    ids = [r["row"].split("#")[0] for r in picks]
    assert len(ids) == 4 and {"g0", "g1"} <= set(ids)  # categories picked evenly: geometry is half
    assert {"a2", "a3"} <= set(ids)  # long traces weigh 10^4 times more
    again = select(probs, rate, kept, SelectConfig(select=4, band=(0.0, 0.6), length_power=2.0, max_per_problem=1), "t")
    assert again == picks


def arith_teacher(prompt, i):
    """Right on even samples, wrong on odd ones; one in three problems opens code inside the CoT."""
    q = prompt[1]["content"]
    a, op, b = re.search(r"(\d+) ([+-]) (\d+)", q).groups()
    value = int(a) + int(b) if op == "+" else int(a) - int(b)
    code = "```\nx\n```\n" if int(a) % 3 == 0 else ""
    return f"{code}We take {a} and apply {op} {b}; sample number {i} says {value + i % 2}.\n</think>\n" \
           f"<answer>{value + i % 2}</answer>"


def test_run_counts_each_rejection_and_writes_sft_rows(tmp_path, scripted):
    task = get_task("arith")
    problems = task.load("train", 12)
    gen = scripted(arith_teacher)
    settings = SamplingSettings(teacher="scripted-7b", temperature=0.9, max_new_tokens=64)
    stats = run(task, gen, problems, settings, 4, tmp_path, progress=False, decontaminator=NO_DECONTAM)
    codes = sum(int(re.search(r"\d+", p.question).group()) % 3 == 0 for p in problems)
    assert stats["samples"] == 48 and stats["rejected"]["incorrect"] == 24
    assert stats["rejected"]["code_blocks"] == 2 * codes
    # samples 0 and 2 differ in one word: the second is a near duplicate of the first
    assert stats["rejected"]["near_duplicate"] == 12 - codes and stats["written"] == 12 - codes
    assert sum(stats["rejected"].values()) + stats["kept"] == stats["samples"]
    rows = read_jsonl_rows(tmp_path / "traces.jsonl")
    row = rows[0]
    problem = next(p for p in problems if p.id == row["problem_id"])
    assert row["messages"][:2] == build(problem, "r1")[:2]
    assert row["messages"][2]["content"].startswith("<think>\nWe take ")
    prov = row["provenance"]
    assert prov["teacher"] == "scripted-7b" and prov["sampling"]["temperature"] == 0.9 and prov["sampling"]["n"] == 4
    assert prov["verdict"] == {"correct": True, "extracted": problem.answer, "by": "verifier", "reference": problem.answer}
    assert prov["tokens"]["completion"] > 5 and prov["pass_rate"] == 0.5
    per_problem = read_jsonl_rows(tmp_path / "problems.jsonl")
    assert len(per_problem) == 12 and all(pp["pass_rate"] == 0.5 for pp in per_problem)
    fates = [s["fate"] for s in read_jsonl_rows(tmp_path / "samples.jsonl")]
    assert fates.count("kept") == stats["written"]
    json.loads((tmp_path / "stats.json").read_text())  # whole JSON


def test_rerun_requests_nothing_and_more_n_tops_up(tmp_path, scripted):
    task = get_task("arith")
    problems = task.load("train", 5)
    gen = scripted(arith_teacher)
    settings = SamplingSettings(teacher="t")
    run(task, gen, problems, settings, 2, tmp_path, progress=False, decontaminator=NO_DECONTAM, batch=2)
    assert (gen.calls, gen.prompts_seen) == (3, 5)
    again = run(task, gen, problems, settings, 2, tmp_path, progress=False, decontaminator=NO_DECONTAM)
    assert gen.calls == 3 and again["this_run"]["samples_requested"] == 0
    # a torn last line (killed mid-write) is cut off and only that sample asked for again
    raw = tmp_path / "raw.jsonl"
    lines = raw.read_text().splitlines(keepends=True)
    raw.write_text("".join(lines[:-1]) + lines[-1][:30])
    run(task, gen, problems, settings, 2, tmp_path, progress=False, decontaminator=NO_DECONTAM)
    assert gen.prompts_seen == 6
    more = run(task, gen, problems, settings, 3, tmp_path, progress=False, decontaminator=NO_DECONTAM)
    assert more["this_run"]["samples_requested"] == 5 and more["samples"] == 15
    other = run(task, gen, problems, SamplingSettings(teacher="t", temperature=0.2), 2, tmp_path,
                progress=False, decontaminator=NO_DECONTAM)
    assert other["this_run"]["samples_requested"] == 10  # new settings: new key, nothing reused


class WordsTask:
    """arith whose verifier cannot judge answers written in words (correct=None), as a math
    verifier gives up on what it cannot parse."""

    name = "arith-words"

    def __init__(self):
        self.arith = get_task("arith")

    def load(self, split="test", limit=None):
        return self.arith.load(split, limit)

    def score(self, problem, text):
        from reasonlab.types import Score

        s = self.arith.score(problem, text)
        return s if s.extracted is None or any(c.isdigit() for c in s.extracted) else Score(None, s.extracted)


def test_judge_fallback_decides_what_the_verifier_cannot_and_is_cached(tmp_path, scripted):
    task = WordsTask()
    problems = task.load("train", 3)
    teacher = scripted(lambda prompt, i: "Thinking about the sum carefully.\n</think>\n<answer>unknown</answer>"
                       if i == 0 else "Thinking about the sum once more.\n</think>\n<answer>seven</answer>")
    judge = scripted(lambda prompt, i: "VERDICT: yes" if "seven" in prompt[0]["content"] else "VERDICT: no")
    kw = dict(progress=False, decontaminator=NO_DECONTAM)
    plain = run(task, teacher, problems, SamplingSettings(teacher="t"), 2, tmp_path / "a", **kw)
    assert plain["rejected"]["unjudged"] == 6 and plain["written"] == 0
    judged = run(task, teacher, problems, SamplingSettings(teacher="t"), 2, tmp_path / "a", judge_backend=judge, **kw)
    assert judged["rejected"]["unjudged"] == 0 and judged["rejected"]["incorrect"] == 3
    assert judged["written"] == 3 and judge.prompts_seen == 6
    row = read_jsonl_rows(tmp_path / "a" / "traces.jsonl")[0]
    assert row["provenance"]["verdict"]["by"] == "judge" and row["provenance"]["verdict"]["extracted"] == "seven"
    assert judged["verdicts_by"] == {"judge": 6}
    run(task, teacher, problems, SamplingSettings(teacher="t"), 2, tmp_path / "a", judge_backend=judge, **kw)
    assert judge.prompts_seen == 6  # cached in judge.jsonl


def test_contaminated_questions_are_counted_and_switchable(tmp_path, scripted):
    task = get_task("arith")
    problems = task.load("train", 4)
    teacher = scripted(arith_teacher)
    clean = [p for p in problems if int(re.search(r"\d+", p.question).group()) % 3]  # no code block
    dirty = Decontaminator([clean[0].question], report={"toy/test": {"available": True, "questions": 1}})
    on = run(task, teacher, problems, SamplingSettings(teacher="t"), 2, tmp_path, progress=False, decontaminator=dirty)
    assert on["rejected"]["contaminated"] == 1  # its right sample; the wrong one is counted as incorrect
    assert on["decontam"]["sets"] == {"toy/test": {"available": True, "questions": 1}}
    assert clean[0].id not in {r["problem_id"] for r in read_jsonl_rows(tmp_path / "traces.jsonl")}
    off = run(task, teacher, problems, SamplingSettings(teacher="t"), 2, tmp_path, progress=False,
              filters=FilterConfig(decontam=False))
    assert off["rejected"]["contaminated"] == 0 and off["decontam"] == {"enabled": False, "ngram": 8, "sets": {}}
    assert off["written"] == on["written"] + 1
