import json

import pytest

from reasonlab.registry import RegistryError
from reasonlab.tasks.base import get_task
from reasonlab.tasks.errors import DataError


def test_arith_is_deterministic_and_test_is_held_out():
    a, b = get_task("arith"), get_task("arith")
    assert a.load("test", 20) == b.load("test", 20)
    test_q = {p.question for p in a.load("test")}
    train = a.load("train", 3000)
    assert len(train) == 3000 and not test_q & {p.question for p in train}
    assert len({p.id for p in train}) == 3000
    p = a.load("test", 1)[0]
    x, op, y = p.question.removeprefix("What is ").rstrip("?").split()
    assert int(p.answer) == (int(x) + int(y) if op == "+" else int(x) - int(y))
    assert a.score(p, f"<answer>{p.answer}</answer>").correct is True
    assert a.score(p, "<answer>banana</answer>").correct is not True


def test_arith_difficulty_knob_and_bad_options():
    hard = get_task("arith", max_number=1000).load("test", 200)
    assert max(abs(int(p.answer)) for p in hard) > 40
    with pytest.raises(DataError):
        get_task("arith", max_number=0)
    with pytest.raises(RegistryError, match="does not take option"):
        get_task("arith", data="x.jsonl")
    with pytest.raises(RegistryError, match="valid: .*arith"):
        get_task("nope")


def test_gsm8k_and_math500_from_shared_data():
    g = get_task("gsm8k").load("test", 3)
    assert g[0].id == "gsm8k/test/0" and g[0].answer == "18"
    m = get_task("math500")
    first = m.load("test", 1)[0]
    assert m.score(first, f"\\boxed{{{first.answer}}}").correct is True


def test_file_tasks_from_a_given_path_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "gsm8k_test.jsonl"
    f.write_text(json.dumps({"question": "1+1?", "answer": "so\n#### 1,002"}) + "\n")
    task = get_task("gsm8k", data=str(f))
    assert task.load("test")[0].answer == "1002"
    assert get_task("gsm8k", data=str(tmp_path)).load("test")[0].question == "1+1?"
    f.write_text('{"question": "a", "answer": "#### 1"}\n{"question": \n')
    with pytest.raises(DataError, match=r"gsm8k_test.jsonl:2: malformed JSON"):
        get_task("gsm8k", data=str(f)).load("test")
    with pytest.raises(DataError, match="no such file"):
        get_task("gsm8k", data=str(tmp_path / "missing.jsonl")).load("test")


def test_missing_data_says_where_it_looked(tmp_path, monkeypatch):
    import reasonlab.tasks.files as files

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(files, "candidate_dirs", lambda data: [tmp_path])
    with pytest.raises(DataError, match=r"looked in: .*--data PATH"):
        get_task("math500").load("test")


def test_jsonl_task_fields(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text('{"q": "2+2?", "a": 4, "k": "x1"}\n\n{"q": "3+3?", "a": 6, "k": "x2"}\n')
    t = get_task("jsonl", data=str(f), question_field="q", answer_field="a", id_field="k")
    probs = t.load()
    assert [p.id for p in probs] == ["mine/x1", "mine/x2"] and probs[1].answer == "6"
    bad = get_task("jsonl", data=str(f), question_field="question", answer_field="a")
    with pytest.raises(DataError, match=r"mine.jsonl:1: missing field 'question'"):
        bad.load()


def test_countdown_scores_with_reasoning_gym():
    t = get_task("countdown", size=5)
    p = t.load("test", 1)[0]
    assert t.score(p, f"<answer>{p.answer}</answer>").correct is True
    assert t.score(p, "<answer>1+1</answer>").correct is False
    assert t.load("test", 5) != t.load("train", 5)
