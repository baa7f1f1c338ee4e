"""Issue 23: the hub's trace-set schemas (ShareGPT/Sky-T1, s1K, OpenR1, messages,
prompt/completion) read from parquet, JSONL and ``save_to_disk`` folders; each trains one SFT step
on a tiny model with exactly the assistant's think + answer + end of turn as targets; bad rows
named with their row numbers; bad input refused in one line before any model loads."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reasonlab.config import ConfigError, from_dict
from reasonlab.errors import DataError
from reasonlab.models import tiny_llama
from reasonlab.registry import RegistryError
from reasonlab.train.sft_data import load_sft_data
from reasonlab.train.sft_formats import ReadSpec
from test_sft_data import CHATML, make_tokenizer

THOUGHT, ANSWER = "2 and 2 make 4", "The answer is 4."
TARGET = f"<think>\n{THOUGHT}\n</think>\n{ANSWER}<|im_end|>"
SKY_SYSTEM = ("Your role as an assistant involves thoroughly exploring questions. Structure your "
              "response in two sections: Thought and Solution, <|begin_of_thought|> ...")

ROWS = {
    "sharegpt": {"system": SKY_SYSTEM, "conversations": [
        {"from": "user", "value": "What is 2+2?"},
        {"from": "assistant", "value": f"<|begin_of_thought|>\n\n{THOUGHT}\n\n<|end_of_thought|>\n\n"
                                       f"<|begin_of_solution|>\n\n{ANSWER}\n\n<|end_of_solution|>"}]},
    "s1k": {"question": "What is 2+2?", "solution": "4", "cot_type": "math",
            "gemini_thinking_trajectory": "gemini thinks", "gemini_attempt": "gemini says 4",
            "deepseek_thinking_trajectory": THOUGHT, "deepseek_attempt": ANSWER},
    "openr1": {"problem": "What is 2+2?", "answer": "4",
               "messages": [{"role": "user", "content": "What is 2+2?"},
                            {"role": "assistant", "content": f"<think>\n{THOUGHT}\n</think>\n\n{ANSWER}"}],
               "generations": [f"<think>wrong</think>5", f"<think>\n{THOUGHT}\n</think>\n\n{ANSWER}"],
               "correctness_math_verify": [False, True], "is_reasoning_complete": [True, True]},
    "messages": {"messages": [{"role": "user", "content": "What is 2+2?"},
                              {"role": "assistant", "content": f"<think>{THOUGHT}</think>{ANSWER}"}]},
    "prompt_completion": {"prompt": [{"role": "user", "content": "What is 2+2?"}],
                          "completion": [{"role": "assistant", "content": f"<think>\n{THOUGHT}\n</think>\n{ANSWER}"}]},
}
# one malformed row per schema and the reason it must be reported with
BAD = {
    "sharegpt": ({"conversations": [{"from": "human", "value": "q"},
                                    {"from": "gpt", "value": "<|begin_of_thought|> never closed"}]},
                 "is never closed by <|end_of_thought|>"),
    "s1k": ({"question": "q", "deepseek_thinking_trajectory": "t", "deepseek_attempt": ""},
            "deepseek_attempt: expected non-empty text"),
    "openr1": ({"problem": "q", "generations": [], "correctness_math_verify": []},
               "generations: expected a non-empty list"),
    "messages": ({"messages": [{"role": "wizard", "content": "x"}]}, "unknown role 'wizard'"),
    "prompt_completion": ({"prompt": [{"role": "user", "content": "q"}], "completion": []},
                          "completion: expected a non-empty list of messages"),
}


def write(kind: str, path, rows: list[dict]):
    """A file of ``rows`` as JSONL, parquet or a datasets save_to_disk folder."""
    if kind == "jsonl":
        path = path.with_suffix(".jsonl")
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = path.with_suffix(".parquet")
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        import datasets

        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def targets(tok, example) -> list[int]:
    return [i for i, m in zip(example.ids, example.mask) if m]


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "save_to_disk"])
@pytest.mark.parametrize("schema", list(ROWS))
def test_each_schema_trains_on_exactly_think_answer_and_end_of_turn(tmp_path, schema, kind):
    from reasonlab.train.sft import SFTConfig, SFTTrainer

    tok = make_tokenizer(CHATML)
    path = write(kind, tmp_path / "traces", [ROWS[schema]] * 2)
    cfg = from_dict(SFTConfig, {"data": str(path), "dtype": "fp32", "max_len": 256, "batch_size": 2,
                                "save_every": 0, "max_steps": 1, "optim": {"lr": 1e-3, "micro_batch": 2}})
    trainer = SFTTrainer(cfg, tmp_path / "run", model=tiny_llama(), tokenizer=tok)
    assert trainer.stats.formats == {schema: 2}
    want = tok.encode(TARGET, add_special_tokens=False)
    assert [targets(tok, e) for e in trainer.examples] == [want, want]
    prompt = tok.decode(list(trainer.examples[0].ids[:trainer.examples[0].mask.index(1)]))
    assert prompt.endswith("What is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert "begin_of_thought" not in prompt  # Sky-T1's marker instructions dropped with the markers
    history = trainer.train(progress=False)
    assert len(history) == 1 and history[0]["target_tokens"] == 2 * len(want)


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "save_to_disk"])
@pytest.mark.parametrize("schema", list(BAD))
def test_malformed_rows_are_named_by_row(tmp_path, schema, kind):
    tok = make_tokenizer(CHATML)
    bad, reason = BAD[schema]
    path = write(kind, tmp_path / "traces", [ROWS[schema], bad])
    where = f"{path}:2" if kind == "jsonl" else f"{path}:row 1"  # lines from 1, rows from 0
    with pytest.raises(DataError) as err:
        load_sft_data(path, tok, 256, spec=ReadSpec(format=schema))
    assert f"{where}: " in str(err.value) and reason in str(err.value), str(err.value)
    examples, stats = load_sft_data(path, tok, 256, on_bad_rows="skip", spec=ReadSpec(format=schema))
    assert len(examples) == 1 and stats.bad_rows == 1 and stats.bad_row_samples[0].startswith(where)


def test_openr1_generations_first_verified_all(tmp_path):
    tok = make_tokenizer(CHATML)
    good = f"<think>\n{THOUGHT}\n</think>\n{ANSWER}"
    rows = [{"problem": "p1", "generations": [good, good, "<think>x</think>y"],
             "correctness_math_verify": [True, False, False], "correctness_llama": [None, True, False],
             "is_reasoning_complete": [True, True, True]},
            {"problem": "p2", "generations": [good, good], "correctness_math_verify": [True, True],
             "is_reasoning_complete": [False, True]},
            {"problem": "p3", "generations": [good], "correctness_math_verify": [False]}]
    path = write("parquet", tmp_path / "openr1", rows)
    counts = {}
    for mode in ("first", "verified", "all"):
        examples, stats = load_sft_data(path, tok, 256, spec=ReadSpec(generations=mode))
        counts[mode] = (len(examples), stats.unverified)
    # p1: gens 0 (math-verify) and 1 (llama judge) verified; p2: gen 0 incomplete; p3: none
    assert counts == {"first": (2, 1), "verified": (3, 1), "all": (6, 0)}
    sources = [e.source for e in load_sft_data(path, tok, 256, spec=ReadSpec(generations="verified"))[0]]
    assert sources[0] == f"{path}:row 0 (trace 1 of 2)" and sources[2] == f"{path}:row 1"


def test_s1k_pairs_and_field_renames(tmp_path):
    tok = make_tokenizer(CHATML)
    original = {"question": "What is 2+2?", "thinking_trajectories": [THOUGHT], "attempt": ANSWER}
    path = write("jsonl", tmp_path / "s1k", [original, ROWS["s1k"]])
    examples, stats = load_sft_data(path, tok, 256)
    want = tok.encode(TARGET, add_special_tokens=False)
    assert stats.formats == {"s1k": 2} and [targets(tok, e) for e in examples] == [want, want]
    gemini = ReadSpec(fields={"thinking": "gemini_thinking_trajectory", "attempt": "gemini_attempt"})
    ex = load_sft_data(write("jsonl", tmp_path / "g", [ROWS["s1k"]]), tok, 256, spec=gemini)[0][0]
    assert tok.decode(targets(tok, ex)) == "<think>\ngemini thinks\n</think>\ngemini says 4<|im_end|>"
    # a set with its own column names, read as prompt/completion (NuminaMath's problem/solution)
    numina = write("jsonl", tmp_path / "n", [{"problem": "What is 2+2?", "solution": f"<think>{THOUGHT}</think>{ANSWER}"}])
    spec = ReadSpec(format="prompt_completion", fields={"prompt": "problem", "completion": "solution"})
    assert targets(tok, load_sft_data(numina, tok, 256, spec=spec)[0][0]) == want


def test_unknown_shape_and_bad_files(tmp_path):
    tok = make_tokenizer(CHATML)
    gsm = write("jsonl", tmp_path / "gsm", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError, match=r"gsm.jsonl:1: matches no known format \(fields present: question, answer; expected openr1"):
        load_sft_data(gsm, tok, 256)
    fake = tmp_path / "fake.parquet"
    fake.write_text('{"messages": []}\n')
    with pytest.raises(DataError, match=r"fake.parquet: not a readable parquet file"):
        load_sft_data(fake, tok, 256)
    import pyarrow as pa
    import pyarrow.parquet as pq

    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"messages": pa.array([], pa.string())}), empty)
    with pytest.raises(DataError, match=r"empty.parquet: no records \(empty dataset\)"):
        load_sft_data(empty, tok, 256)
    with pytest.raises(RegistryError, match="unknown SFT data format 'alpaca'"):
        ReadSpec(format="alpaca").check()
    with pytest.raises(ConfigError, match=r"fields.thinking: no such field in format sharegpt"):
        ReadSpec(format="sharegpt", fields={"thinking": "x"}).check()
    renamed = ReadSpec(format="s1k", fields={"question": "problem"})
    with pytest.raises(DataError, match=r"s1k.jsonl:1: missing field 'problem'"):
        load_sft_data(write("jsonl", tmp_path / "s1k", [ROWS["s1k"]]), tok, 256, spec=renamed)


def test_a_folder_mixes_files_and_a_datasets_dict(tmp_path):
    import datasets

    tok = make_tokenizer(CHATML)
    folder = tmp_path / "mixed"
    folder.mkdir()
    write("parquet", folder / "a", [ROWS["sharegpt"]])
    write("jsonl", folder / "b", [ROWS["messages"]])
    datasets.DatasetDict({"train": datasets.Dataset.from_list([ROWS["s1k"]]),
                          "test": datasets.Dataset.from_list([ROWS["s1k"]] * 5)}).save_to_disk(str(folder / "c"))
    examples, stats = load_sft_data(folder, tok, 256)
    assert stats.formats == {"sharegpt": 1, "messages": 1, "s1k": 1}  # DatasetDict: its train split
    assert examples[2].source == f"{folder / 'c' / 'train'}:row 0"


@pytest.mark.parametrize("args, words", [
    (["--format", "alpaca"], ["unknown SFT data format 'alpaca'", "sharegpt"]),
    (["--field", "colour=red"], ["fields.colour: no such field"]),
    (["--field", "oops"], ["--field", "NAME=COLUMN"]),
    (["--openr1-generations", "best"], ["openr1_generations", "first, verified, all"]),
])
def test_cli_refuses_bad_read_options_in_one_line(tmp_path, args, words, monkeypatch):
    import reasonlab.models as models

    monkeypatch.setattr(models, "load", lambda *a, **k: pytest.fail("model loaded"))
    from reasonlab.cli.main import app

    data = write("jsonl", tmp_path / "d", [ROWS["messages"]])
    result = CliRunner().invoke(app, ["train", "sft", "--data", str(data), "--out", str(tmp_path / "o"), *args],
                                env={"REASONLAB_DEBUG": None})
    assert result.exit_code == 2, result.output
    for w in words:
        assert w in result.output, result.output


def test_eval_jsonl_task_reads_parquet_and_datasets_folders(tmp_path):
    import datasets

    from reasonlab.tasks.base import get_task

    rows = [{"problem": f"{i}+1?", "solution": str(i + 1)} for i in range(3)]
    pq_path = write("parquet", tmp_path / "bench", rows)
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "disk"))
    for data in (pq_path, tmp_path / "disk"):
        task = get_task("jsonl", data=str(data), question_field="problem", answer_field="solution")
        problems = task.load("test")
        assert [(p.question, p.answer) for p in problems] == [(r["problem"], r["solution"]) for r in rows]
        assert problems[2].id.endswith("/row2")
    with pytest.raises(DataError, match=r"bench.parquet:row 0: missing field 'question'"):
        get_task("jsonl", data=str(pq_path)).load("test")
