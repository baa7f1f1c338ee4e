import json
from pathlib import Path

import pytest

from reasonlab.registry import RegistryError
from reasonlab.tasks.base import TASKS, Task, get_task
from reasonlab.tasks.errors import DataError


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    monkeypatch.setenv("REASONLAB_NO_HUB", "1")  # tests never reach the network


def test_registry_holds_every_task():
    import reasonlab.tasks  # noqa: F401

    assert {"arith", "countdown", "gsm8k", "math500", "aime", "jsonl"} <= set(TASKS.names())
    assert isinstance(get_task("arith"), Task)


def _solve(question):
    x, op, y = question.removeprefix("What is ").rstrip("?").split()
    return int(x) + int(y) if op == "+" else int(x) - int(y)


def test_arith_is_deterministic_and_test_is_held_out():
    a, b = get_task("arith"), get_task("arith")
    assert a.load("test") == b.load("test") and a.load("train", 300) == b.load("train", 300)
    test = a.load("test")
    assert len({p.question for p in test}) == len(test) == 441  # half of 2*21*21 questions
    train = a.load("train")
    assert len(train) == 10_000 and not {p.question for p in test} & {p.question for p in train}
    assert len(a.load("train", 25_000)) == 25_000  # train streams as far as asked
    assert [p.id for p in train[:2]] == ["arith/train/0", "arith/train/1"]
    assert all(int(p.answer) == _solve(p.question) for p in test + train[:500])
    p = test[0]
    assert a.score(p, f"<answer>{p.answer}</answer>").correct is True
    assert a.score(p, f"<answer>{int(p.answer) + 1}</answer>").correct is False
    assert a.score(p, "I don't know").correct is False
    assert get_task("arith", seed=1).load("test", 50) != test[:50]


def test_arith_three_operands_left_to_right_and_held_out():
    t = get_task("arith", operands=3, max_number=50)
    test, train = t.load("test", 200), t.load("train", 2000)
    assert not {p.question for p in test} & {p.question for p in train}
    for p in test[:50] + train[:50]:
        nums = p.question.removeprefix("What is ").rstrip("?").split()
        assert len(nums) == 5 and int(nums[0]) <= 50
        total = int(nums[0])
        for op, x in zip(nums[1::2], nums[2::2]):
            total = total + int(x) if op == "+" else total - int(x)
        assert int(p.answer) == total
    assert get_task("arith", operands=2).load("test", 20) == get_task("arith").load("test", 20)  # old splits kept
    with pytest.raises(DataError, match="operands"):
        get_task("arith", operands=1)


def test_arith_worked_subtraction_states_the_sign_first_and_never_subtracts_past_zero():
    """A negative result is worked as 'the larger minus the smaller, then the sign', so the trace
    never needs a negative sum; every number a trace states is right (checked by recomputing)."""
    import re

    from reasonlab.tasks.arith import worked_solution

    neg = worked_solution("What is 8 - 15?", "-7")
    assert neg.index("negative") < neg.index("gives 7") < neg.index("8 minus 15 is -7")
    assert "is not negative" in worked_solution("What is 15 - 8?", "7")
    assert "negative" not in worked_solution("What is 8 + 15?", "23")
    task = get_task("arith")
    for p in task.load("train", 300):
        text = worked_solution(p.question, p.answer)
        a, op, b = p.question.removeprefix("What is ").rstrip("?").split()
        for x, y, z in re.findall(r"Starting at (\d+) and (?:taking away|adding) (\d+) gives (-?\d+)", text):
            assert int(z) == (int(x) + int(y) if op == "+" else int(x) - int(y)) >= 0
        assert text.endswith(f"= {p.answer}.") and task.score(p, f"<answer>{p.answer}</answer>").correct


def test_arith_difficulty_knob_and_bad_options():
    hard = get_task("arith", max_number=1000).load("test")
    assert len(hard) == 500 and max(abs(int(p.answer)) for p in hard) > 900
    tiny = get_task("arith", max_number=1, ops="+")  # 4 questions: 2 held out, 2 to train on
    assert len(tiny.load("test")) == 2
    assert {p.question for p in tiny.load("train", 50)} & {p.question for p in tiny.load("test")} == set()
    with pytest.raises(DataError, match="max_number"):
        get_task("arith", max_number=0)
    with pytest.raises(DataError, match="ops"):
        get_task("arith", ops="*")
    with pytest.raises(DataError, match="splits"):
        get_task("arith").load("validation")
    with pytest.raises(RegistryError, match="does not take option"):
        get_task("arith", data="x.jsonl")
    with pytest.raises(RegistryError, match="valid: .*arith"):
        get_task("nope")


def test_gsm8k_and_math500_from_shared_data():
    g = get_task("gsm8k")
    first = g.load("test", 3)[0]
    assert first.id == "gsm8k/test/0" and first.answer == "18"
    assert "####" in first.meta["solution"] and len(g.load("train", 5)) == 5
    assert g.score(first, "She makes $18.").correct is True
    assert g.score(first, "#### 17").correct is False
    m = get_task("math500")
    probs = m.load("test")
    assert len(probs) == 500 and len({p.id for p in probs}) == 500
    assert probs[0].id == "math500/test/precalculus/807"
    assert m.score(probs[0], f"\\boxed{{{probs[0].answer}}}").correct is True
    with pytest.raises(DataError, match="only a test split"):
        m.load("train")


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_file_tasks_from_a_given_path_and_errors(tmp_path):
    f = _write(tmp_path / "gsm8k_test.jsonl", [{"question": "1+1?", "answer": "so\n#### 1,002"}])
    assert get_task("gsm8k", data=str(f)).load("test")[0].answer == "1002"
    assert get_task("gsm8k", data=str(tmp_path)).load("test")[0].question == "1+1?"
    f.write_text('{"question": "a", "answer": "#### 1"}\n\n{"question": \n')
    with pytest.raises(DataError, match=r"gsm8k_test.jsonl:3: malformed JSON"):
        get_task("gsm8k", data=str(f)).load("test")
    f.write_text('{"question": "a", "answer": "#### 1"}\n{"question": "b"}\n')
    with pytest.raises(DataError, match=r"gsm8k_test.jsonl:2: missing field 'answer'"):
        get_task("gsm8k", data=str(f)).load("test")
    f.write_text('{"question": "a", "answer": "no marker"}\n')
    with pytest.raises(DataError, match=r"gsm8k_test.jsonl:1: .*'####"):
        get_task("gsm8k", data=str(f)).load("test")
    f.write_text("[1, 2]\n")
    with pytest.raises(DataError, match=r":1: expected a JSON object"):
        get_task("gsm8k", data=str(f)).load("test")
    f.write_text("\n\n")
    with pytest.raises(DataError, match="no records"):
        get_task("gsm8k", data=str(f)).load("test")
    f.write_bytes(b'{"question": "\xff"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        get_task("gsm8k", data=str(f)).load("test")
    with pytest.raises(DataError, match="no such file"):
        get_task("gsm8k", data=str(tmp_path / "missing.jsonl")).load("test")
    with pytest.raises(DataError, match="directory has no gsm8k_train.jsonl"):
        get_task("gsm8k", data=str(tmp_path)).load("train")


def test_data_search_order(tmp_path, monkeypatch):
    import reasonlab.tasks.files as files

    env_dir, work = tmp_path / "env", tmp_path / "proj" / "work"
    env_dir.mkdir()
    work.mkdir(parents=True)
    monkeypatch.delenv("REASONLAB_DATA", raising=False)
    monkeypatch.chdir(work)
    shipped = get_task("math500").load()  # shipped inside the package: no data dir needed
    assert len(shipped) == 500
    assert len(get_task("gsm8k").load("test")) == 1319
    (tmp_path / "proj" / "shared" / "data").mkdir(parents=True)
    _write(tmp_path / "proj" / "shared" / "data" / "gsm8k_train.jsonl",
           [{"question": "cwd?", "answer": "#### 1"}])
    assert get_task("gsm8k").load("train")[0].question == "cwd?"  # ../shared/data from the CWD
    _write(env_dir / "math500_test.jsonl", [{"problem": "env?", "answer": "1"}])
    monkeypatch.setenv("REASONLAB_DATA", str(env_dir))
    assert get_task("math500").load()[0].question == "env?"  # $REASONLAB_DATA comes first
    dirs = files.candidate_dirs()
    assert dirs[0] == env_dir and dirs[1] == files.PACKAGE_DATA
    assert "/work/shared" not in Path(files.__file__).read_text()  # no machine-specific path


def test_missing_data_says_where_it_looked(tmp_path, monkeypatch):
    import reasonlab.tasks.files as files

    monkeypatch.setattr(files, "candidate_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(DataError, match=r"looked in: .*a/aime.jsonl, .*b/aime.jsonl.*--data PATH"):
        get_task("aime").load("test")


def test_hub_fallback_only_when_allowed(tmp_path, monkeypatch):
    import reasonlab.tasks.files as files

    monkeypatch.setattr(files, "candidate_dirs", lambda: [tmp_path])
    hub = lambda: [{"problem": "hub?", "answer": "7"}]  # noqa: E731
    with pytest.raises(DataError, match="cannot find x.jsonl"):
        files.load_records("x.jsonl", None, ("problem",), hub)  # REASONLAB_NO_HUB is set
    monkeypatch.setattr(files, "hub_allowed", lambda: True)
    assert files.load_records("x.jsonl", None, ("problem",), hub)[0] == ("hub:0", hub()[0])
    with pytest.raises(DataError, match="hub record 0 of x.jsonl: missing field 'id'"):
        files.load_records("x.jsonl", None, ("id",), hub)

    def offline():
        raise ConnectionError("no network")

    with pytest.raises(DataError, match="HF hub .*no network"):
        files.load_records("x.jsonl", None, (), offline)


def test_aime_from_a_file(tmp_path):
    f = _write(tmp_path / "aime24.jsonl", [{"id": 60, "problem": "p1", "answer": "033"},
                                           {"id": 61, "problem": "p2", "answer": "204"}])
    t = get_task("aime", data=str(f))
    probs = t.load()
    assert [p.id for p in probs] == ["aime/60", "aime/61"]
    assert t.score(probs[0], "so \\boxed{33}").correct is True
    assert t.score(probs[1], "so \\boxed{33}").correct is False
    _write(f, [{"id": 1, "problem": "p", "answer": "1"}, {"id": 1, "problem": "q", "answer": "2"}])
    with pytest.raises(DataError, match=r"aime24.jsonl:2: duplicate id"):
        get_task("aime", data=str(f)).load()


def test_jsonl_task_fields(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text('{"q": "2+2?", "a": 4, "k": "x1"}\n\n{"q": "3+3?", "a": 6, "k": "x2"}\n')
    t = get_task("jsonl", data=str(f), question_field="q", answer_field="a", id_field="k")
    probs = t.load()
    assert [p.id for p in probs] == ["mine/x1", "mine/x2"] and probs[1].answer == "6"
    assert t.score(probs[1], "<answer>6</answer>").correct is True
    assert [p.id for p in get_task("jsonl", data=str(f), question_field="q",
                                   answer_field="a").load()] == ["mine/1", "mine/3"]
    bad = get_task("jsonl", data=str(f), question_field="question", answer_field="a")
    with pytest.raises(DataError, match=r"mine.jsonl:1: missing field 'question'"):
        bad.load()
    with pytest.raises(DataError, match="needs --data"):
        get_task("jsonl")
    f.write_text('{"q": "a", "a": 1, "k": 5}\n{"q": "b", "a": 2, "k": 5}\n')
    with pytest.raises(DataError, match=r"mine.jsonl:2: duplicate 'k'"):
        get_task("jsonl", data=str(f), question_field="q", answer_field="a", id_field="k").load()


def test_countdown_scores_with_reasoning_gym():
    from reasonlab.types import Problem

    t = get_task("countdown", size=5)
    p = t.load("test", 1)[0]
    meta = p.meta["entry"]["metadata"]
    assert str(meta["target"]) in p.question and all(str(n) in p.question for n in meta["numbers"])
    assert t.score(p, f"<answer>{p.answer}</answer>").correct is True  # reasoning-gym's solution
    # Our own problem in reasoning-gym's entry format, and answers we build for it.
    entry = {"question": "Calculate 32 using all of these numbers: 3, 5, 7, 10.", "answer": "",
             "metadata": {"numbers": [3, 5, 7, 10], "target": 32}}
    mine = Problem("countdown/mine/0", entry["question"], "", {"entry": entry})
    s = t.score(mine, "<think>3*5=15, 15+7=22, 22+10=32</think><answer>10 + 7 + 5*3</answer>")
    assert s.correct is True and s.reward == 1.0 and s.extracted == "10 + 7 + 5*3"
    assert t.score(mine, "<answer>(10 - 7 + 5) * 3</answer>").reward == 0.05  # 24: wrong value
    assert t.score(mine, "<answer>10*3 + 2</answer>").reward == 0.05  # 32, wrong numbers
    assert t.score(mine, "<answer>9**9**9**9**9</answer>").reward == 0.01  # never evaluated
    assert t.score(mine, "no answer").correct is False
    assert t.load("test", 5) != t.load("train", 5)
    assert get_task("countdown", size=5).load("test", 5) == t.load("test", 5)  # deterministic
    with pytest.raises(DataError, match="unknown option"):
        get_task("countdown", data="x")


def test_arith_sft_script_writes_correct_r1_rows(tmp_path):
    """scripts/arith_sft_data.py (the README's SFT data): every trace ends in the right answer and
    the rows are what `train sft` reads."""
    import json
    import subprocess
    import sys

    from reasonlab.train.sft_rows import to_conversation

    repo = Path(__file__).resolve().parents[2]
    for operands in (2, 3):
        out = tmp_path / f"a{operands}.jsonl"
        subprocess.run([sys.executable, str(repo / "scripts" / "arith_sft_data.py"), "--n", "20", "--out", str(out),
                        "--operands", str(operands), "--max-number", "50"], check=True)
        task = get_task("arith", operands=operands, max_number=50)
        by_id = {p.id: p for p in task.load("train", 20)}
        for i, line in enumerate(out.read_text().splitlines()):
            row = json.loads(line)
            conv = to_conversation(f"{out}:{i + 1}", row)
            text = conv.messages[-1]["content"]
            assert text.startswith("<think>\n") and "</think>\n<answer>" in text
            assert task.score(by_id[row["problem_id"]], text).correct is True


def test_arith_refuses_a_restated_question():
    """The hack GRPO from the base found: the equivalence check evaluates '4 + 19', so restating
    the question passed; only an answer holding one number, the right one, is correct."""
    from reasonlab.tasks.base import get_task

    task = get_task("arith", max_number=20)
    p = task.load("test", 1)[0]
    q = p.question.removeprefix("What is ").rstrip("?")
    assert task.score(p, f"<think>x</think><answer>{p.answer}</answer>").correct is True
    assert task.score(p, f"<think>x</think><answer>{q} ≈ 19.1</answer>").correct is False
    assert task.score(p, f"<answer>{q}</answer>").reward == 0.0


def test_gsm8k_refuses_an_expression_and_keeps_plain_numbers(tmp_path):
    """GSM8K shares arith's rule (``number_score``): one number, the right one; thousands
    commas, units and currency signs still pass."""
    f = _write(tmp_path / "gsm8k_test.jsonl", [{"question": "q", "answer": "w\n#### 1,200"}])
    task = get_task("gsm8k", data=str(f))
    p = task.load("test")[0]
    for ok in ("1,200", "1200", "$1,200", "1200 dollars", "1200.0"):
        assert task.score(p, f"<answer>{ok}</answer>").correct is True, ok
    for hack in ("1000 + 200", "600 * 2", "2400/2"):
        assert task.score(p, f"<answer>{hack}</answer>").correct is False, hack
