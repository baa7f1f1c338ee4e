"""Issue 23: every numeric option's range is checked up front: a value out of range is one line
``error: ...`` naming the option, exit code 2, before any model loads or any file is written.
(Before: ``eval --n 0`` sampled, wrote its state and died in pass@k; ``eval --limit -1``
evaluated the whole split.)"""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from cli_run import assert_one_line, no_model_load, run  # noqa: F401 (no_model_load: a fixture)
from reasonlab.cli.main import app

OUT = "OUT"  # replaced by a fresh directory per test

BASE = {
    "eval": ["eval", "--task", "arith", "--out", OUT],
    "generate": ["generate", "--task", "arith", "--model", "teacher", "--out", OUT],
    "scale": ["scale", "--task", "arith", "--out", OUT],
    "serve": ["serve", "--model", "m"],
    "demo": ["demo", "--out", OUT],
    "compare": ["compare", "--out", OUT],
}

# (command, option, a bad value); every numeric option of every command appears at least once
CASES = [
    ("eval", "--limit", "0"), ("eval", "--limit", "-1"), ("eval", "--n", "0"), ("eval", "--n", "-3"),
    ("eval", "--temperature", "-0.1"), ("eval", "--top-p", "0"), ("eval", "--top-p", "1.5"),
    ("eval", "--max-new-tokens", "0"), ("eval", "--seed", "-1"),
    ("generate", "--n", "0"), ("generate", "--limit", "0"), ("generate", "--temperature", "-1"),
    ("generate", "--top-p", "0"), ("generate", "--top-p", "2"), ("generate", "--max-new-tokens", "0"),
    ("generate", "--seed", "-1"), ("generate", "--concurrency", "0"), ("generate", "--batch", "0"),
    ("generate", "--timeout-s", "0"), ("generate", "--max-retries", "-1"), ("generate", "--backoff-s", "-0.5"),
    ("generate", "--min-language-share", "1.5"), ("generate", "--max-paragraph-chars", "0"),
    ("generate", "--near-dup-threshold", "-0.1"), ("generate", "--decontam-ngram", "0"),
    ("generate", "--select", "0"), ("generate", "--band", "0.6,0.2"), ("generate", "--band", "half"),
    ("generate", "--length-power", "-1"), ("generate", "--max-per-problem", "-1"),
    ("scale", "--n", "0"), ("scale", "--n", "1,0,4"), ("scale", "--n", "1,two"), ("scale", "--limit", "0"),
    ("scale", "--temperature", "-0.5"), ("scale", "--max-new-tokens", "0"), ("scale", "--seed", "-1"),
    ("serve", "--port", "0"), ("serve", "--port", "65536"), ("serve", "--max-concurrency", "0"),
    ("serve", "--timeout-s", "0"), ("serve", "--max-tokens", "0"), ("serve", "--max-n", "0"),
    ("demo", "--eval-limit", "0"),
    ("compare", "--queries", "0"), ("compare", "--price-per-hour", "-1"),
]

# numeric options whose type is a string: a comma list checked by a callback
STRING_NUMERIC = {("scale", "--n"), ("generate", "--band")}


def _args(command: str, option: str, value: str, tmp_path) -> list[str]:
    return [str(tmp_path / "out") if a == OUT else a for a in BASE[command]] + [option, value]


@pytest.mark.parametrize("command,option,value", CASES, ids=[" ".join(c) for c in CASES])
def test_out_of_range_is_one_line_before_any_work(tmp_path, no_model_load, command, option, value):
    result = run(_args(command, option, value, tmp_path))
    err = assert_one_line(result, f"'{option}'")
    assert [line for line in result.output.splitlines() if line.strip()] == [err]
    assert not (tmp_path / "out").exists()  # nothing written


def test_the_two_reported_bugs(tmp_path, no_model_load):
    out = str(tmp_path / "o")
    assert_one_line(run(["eval", "--task", "arith", "--n", "0", "--out", out]), "'--n'")
    assert_one_line(run(["eval", "--task", "arith", "--limit", "-1", "--out", out]), "'--limit'")
    assert not (tmp_path / "o").exists()  # no state written, no sampling started


def test_a_real_process(tmp_path):
    """The console command (not CliRunner): the same one line on stderr, exit 2; --help exits 0."""
    cli = [sys.executable, "-m", "reasonlab.cli.main"]
    proc = subprocess.run(cli + ["eval", "--task", "arith", "--n", "0", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and "'--n'" in proc.stderr
    proc = subprocess.run(cli + ["scale", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Usage" in proc.stdout, proc.stderr


def _commands(typer_app, path=()):
    for info in typer_app.registered_commands:
        yield path + (info.name,), info.callback
    for group in typer_app.registered_groups:
        yield from _commands(group.typer_instance, path + (group.name,))


def _numeric_options():
    found = set()
    for path, callback in _commands(app):
        for name, hint in typing.get_type_hints(callback).items():
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            if hint in (int, float) or (typing.get_origin(hint) is typing.Union and args in ([int], [float])):
                found.add((" ".join(path), "--" + name.replace("_", "-")))
    return found


def test_every_numeric_option_has_a_case():
    numeric = _numeric_options()
    assert ("eval", "--n") in numeric and ("serve", "--port") in numeric  # the walk finds them
    covered = {(c, o) for c, o, _ in CASES}
    assert numeric | STRING_NUMERIC == covered, (numeric | STRING_NUMERIC) ^ covered


@pytest.mark.parametrize("command,option,value", [
    ("eval", "--top-p", "1"), ("eval", "--temperature", "0"), ("eval", "--seed", "0"),
    ("generate", "--max-retries", "0"), ("generate", "--backoff-s", "0"), ("generate", "--max-per-problem", "0"),
    ("generate", "--length-power", "0"), ("generate", "--band", "0,0.5"), ("scale", "--n", "1,2,4"),
])
def test_the_edges_of_a_range_are_accepted(tmp_path, no_model_load, command, option, value):
    """A value on the edge passes the range check: the command goes on to load the model (refused here)."""
    result = run(_args(command, option, value, tmp_path))
    assert result.exit_code == 1 and "the model was loaded" in str(result.exception), result.output


def test_help_exits_0():
    for args in (["--help"], ["eval", "--help"], ["train", "sft", "--help"]):
        result = run(args)
        assert result.exit_code == 0 and "Usage" in result.output, result.output


def test_bare_command_shows_usage():
    result = run([])
    # click >= 8.2 exits 2 after no_args_is_help's help, older click 0; either way not a one-liner
    assert result.exit_code in (0, 2) and "Usage" in result.output and "eval" in result.output, result.output
    assert not result.output.startswith("error:")


def test_other_usage_errors_are_one_line(tmp_path, no_model_load):
    out = str(tmp_path / "o")
    assert_one_line(run(["eval", "--out", out]), "Missing option", "--task")
    assert_one_line(run(["eval", "--task", "arith", "--out", out, "--no-such-flag"]), "--no-such-flag")
    assert_one_line(run(["eval", "--task", "arith", "--out", out, "--n", "many"]), "'--n'")
    # typer.BadParameter raised inside a command body
    assert_one_line(run(["train", "sft", "--data", "x", "--out", out, "--field", "nocolumn"]), "--field")


@pytest.mark.parametrize("command", [["train", "sft"], ["train", "grpo"], ["train", "prm"]])
def test_report_to_flag(command):
    result = run(command + ["--help"])
    assert result.exit_code == 0 and "--report-to" in result.output, result.output


def test_chat_template_flag(tmp_path, no_model_load):
    assert "--chat-template" in run(["train", "sft", "--help"]).output
    result = run(["train", "sft", "--chat-template", "bogus", "--data", "x", "--out", str(tmp_path / "y")])
    assert_one_line(result, "chat_template", "bogus")
