"""Helpers for tests that run the real ``reasonlab`` command line in-process (CliRunner)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from reasonlab.cli.main import app


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if a command gets as far as building a backend or loading a model."""
    import reasonlab.backends.factory as backends
    import reasonlab.models as models

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr(backends, "make_backend", refuse)
    monkeypatch.setattr(models, "load", refuse)
    monkeypatch.setattr(models, "load_tokenizer", refuse)


def run(args: list[str], env: dict | None = None):
    # a key in ``env`` is restored afterwards (None: unset meanwhile), so --debug cannot leak
    return CliRunner().invoke(app, args, env={"REASONLAB_DEBUG": None, **(env or {})})


def assert_one_line(result, *words: str) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in result.output, err
    for w in words:
        assert w in err, err
    return err
