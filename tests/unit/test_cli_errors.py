"""Issue 14 item 11: bad input is one line on stderr, exit code 2, no traceback; ``--debug`` (or
REASONLAB_DEBUG=1) shows the traceback. Each case runs the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cli_run import assert_one_line, no_model_load, run  # noqa: F401 (no_model_load: a fixture)
from tiny_model_dir import save_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "m")


EVAL = ["eval", "--task", "arith", "--limit", "2", "--max-new-tokens", "4"]


def test_corrupt_safetensors(tmp_path, model_dir):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100_000])
    assert_one_line(run(EVAL + ["--model", str(bad), "--out", str(tmp_path / "o")]),
                    str(weights), "truncated safetensors")


def test_file_named_gguf_that_is_not_gguf(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("hello\n")
    assert_one_line(run(EVAL + ["--model", str(fake), "--out", str(tmp_path / "o")]),
                    str(fake), "not a GGUF file")


@pytest.mark.parametrize("command", [EVAL, ["scale", "--task", "arith", "--limit", "2", "--n", "1"]])
def test_out_that_is_a_file_or_unwritable(tmp_path, no_model_load, command):
    (tmp_path / "f").write_text("x")
    bad_outs = [(tmp_path / "f", "is a file"), (tmp_path / "f" / "sub", "cannot write there")]
    if os.geteuid() != 0:  # root writes anywhere; the chmod case runs for everyone else
        (tmp_path / "ro").mkdir(mode=0o500)
        bad_outs.append((tmp_path / "ro", "cannot write there"))
    for out, words in bad_outs:
        assert_one_line(run(command + ["--out", str(out)]), f"--out {out}", words)


def test_huge_single_line_record_is_refused_by_size(tmp_path, no_model_load):
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"question": "x" * 5_000_000, "answer": "1"}) + "\n")
    err = assert_one_line(run(["eval", "--task", "jsonl", "--data", str(big), "--out", str(tmp_path / "o")]))
    assert f"{big}:1: record of 5,000,032 bytes" in err


def test_changed_setting_is_one_line(tmp_path, model_dir):
    out = tmp_path / "o"
    ok = run(EVAL + ["--model", str(model_dir), "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert_one_line(run(EVAL + ["--model", str(model_dir), "--out", str(out), "--n", "2"]),
                    "temperature=0.0, not 0.7", "another --out")


def test_debug_shows_the_traceback(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("hello\n")
    args = EVAL + ["--model", str(fake), "--out", str(tmp_path / "o")]
    for flag, env in ((["--debug"], {}), ([], {"REASONLAB_DEBUG": "1"})):
        res = run(flag + args, env)
        assert res.exit_code == 1 and type(res.exception).__name__ == "ModelError", res.output
    assert "REASONLAB_DEBUG" not in os.environ
    # a real process: the traceback reaches stderr
    proc = subprocess.run([sys.executable, "-m", "reasonlab.cli.main", "--debug", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "not a GGUF file" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "reasonlab.cli.main", *args],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "REASONLAB_DEBUG"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
