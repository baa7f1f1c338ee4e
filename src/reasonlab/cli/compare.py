"""``reasonlab compare --out DIR [--methods ...] [--queries Q] [--price-per-hour P] [key=value ...]``:
inference-time scaling, R1-Zero, R1 and distillation on one task and base model, in one report
(``reasonlab.recipes.compare``); resumable by rerunning the same command."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors

DEFAULT_CONFIG = "compare_arith"


def compare_command(
    overrides: Optional[List[str]] = typer.Argument(None, help="Config overrides key.path=value."),
    config: Optional[str] = typer.Option(None, help=f"YAML config (default: {DEFAULT_CONFIG}.yaml)."),
    out: Path = typer.Option(..., help="Run directory, one subdirectory per method; rerun to resume."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated: scaling, r1_zero, r1, distill "
                                          "(default: the config's, all four)."),
    queries: Optional[int] = typer.Option(None, min=1, help="Answered problems the inference cost is "
                                          "counted for in the totals (default: the config's, 10000)."),
    price_per_hour: Optional[float] = typer.Option(None, min=0, help="Money per machine hour for the "
                                                   "money column (default: wall time only)."),
    progress: bool = typer.Option(True),
) -> None:
    """Run the four methods at the config's budgets and write OUT/report.html and OUT/summary.json."""
    from reasonlab.backends.openai import OpenAIError
    from reasonlab.config import load_config
    from reasonlab.io import check_writable_dir
    from reasonlab.recipes.compare import CompareConfig, preflight, run
    from reasonlab.traces.generate import GenerationError

    extra = [f"methods={methods}"] if methods is not None else []
    extra += [f"queries={queries}"] if queries is not None else []
    extra += [f"price_per_hour={price_per_hour}"] if price_per_hour is not None else []
    with friendly_errors():
        check_writable_dir(out)
        cfg = load_config(CompareConfig, config or DEFAULT_CONFIG, [*(overrides or []), *extra])
        preflight(cfg)  # an unreachable teacher is one line, before any work
        try:
            summary = run(cfg, out, progress=progress, say=lambda line: console.print(
                f"[bold]compare[/bold] {line}", soft_wrap=True, highlight=False))
        except (GenerationError, OpenAIError) as exc:
            console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
            raise typer.Exit(1) from None
    print_table(summary)
    typer.echo(f"report: {Path(out) / 'report.html'}")


def print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = summary["table"]
    table = Table(title=f"{summary['task']} · {summary['model']} · totals at {summary['queries']} queries")
    cols = [c for c in rows[0] if c != "note"] if rows else []
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(str(r.get(c, "")) for c in cols))
    Console(width=200).print(table)
    for r in rows:
        if r["note"]:
            typer.echo(f"{r['model / point']}: {r['note']}")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    app.command("compare")(compare_command)
