"""Small helpers shared by CLI commands: friendly errors and summary printing."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)
DEBUG_ENV = "REASONLAB_DEBUG"  # set by `reasonlab --debug`, or by hand


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


@contextmanager
def friendly_errors():
    """Turn our own validation errors into one red line and exit code 2 (no traceback).

    With ``--debug`` (or ``REASONLAB_DEBUG=1``) they propagate with their traceback instead."""
    from reasonlab.config import ConfigError
    from reasonlab.models import ModelError
    from reasonlab.registry import RegistryError

    known: tuple[type[BaseException], ...] = (ConfigError, ModelError, RegistryError,
                                              FileNotFoundError)
    try:
        from reasonlab.tasks.errors import DataError  # noqa: PLC0415
        known += (DataError,)
    except ImportError:
        pass
    try:
        yield
    except known as exc:
        if debug_enabled():
            raise
        # soft_wrap: one line whatever the terminal width (rich would break it at 80 columns)
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


def above(low: float, high: float | None = None):
    """An option callback for an open lower bound, ``low < x`` (``min=`` is inclusive): give the
    option ``min=low`` (and ``max=high``) as well, so that --help shows the range."""
    text = f"{low}<x<={high}" if high is not None else f"x>{low}"

    def check(value):
        if value is not None and value <= low:
            raise typer.BadParameter(f"{value} is not in the range {text}.")
        return value

    return check


def print_summary(summary: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{summary.get('task')} · {summary.get('model')}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.get("metrics", {}).items():
        table.add_row(key, f"{value:.3f}")
    for key in ("problems", "tokens_generated", "wall_s"):
        if key in summary:
            table.add_row(key, str(summary[key]))
    Console().print(table)


def task_options(items: list[str] | None) -> dict:
    """``--task-option max_number=50 --task-option ops=+`` -> ``{"max_number": 50, "ops": "+"}``.

    Values are read as YAML scalars (numbers, booleans, strings), as in config overrides."""
    import yaml

    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--task-option expects KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            options[key.strip()] = value
    return options


def dumps(data: dict) -> str:
    return json.dumps(data, indent=2)
