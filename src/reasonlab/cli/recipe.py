"""``reasonlab recipe NAME --config YAML --out DIR [key=value ...]``: multi-stage recipes
(``reasonlab.recipes``: distill, journey, r1), resumable by rerunning the same command."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors

# name -> (module, config class, default config in recipes/configs/)
RECIPES = {
    "distill": ("reasonlab.recipes.distill", "DistillConfig", "distill_arith"),
    "journey": ("reasonlab.recipes.journey", "JourneyConfig", "journey_arith"),
    "r1": ("reasonlab.recipes.r1", "R1Config", "r1_arith"),
}


def recipe_command(
    name: str = typer.Argument(..., help=f"Recipe: {', '.join(RECIPES)}."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Config overrides key.path=value."),
    config: Optional[str] = typer.Option(None, help="YAML config (default: the recipe's NAME_arith.yaml)."),
    out: Path = typer.Option(..., help="Run directory, one subdirectory per stage; rerun to resume."),
    progress: bool = typer.Option(True),
) -> None:
    """Run a multi-stage recipe; a rerun skips finished stages and resumes the one in progress."""
    from reasonlab.backends.openai import OpenAIError
    from reasonlab.config import ConfigError, load_config
    from reasonlab.traces.generate import GenerationError

    with friendly_errors():
        if name not in RECIPES:
            raise ConfigError(f"recipe {name!r}: unknown; valid: {', '.join(RECIPES)}")
        module_name, cls_name, default = RECIPES[name]
        module = importlib.import_module(module_name)
        cfg = load_config(getattr(module, cls_name), config or default, overrides)
        try:
            summary = module.run(cfg, out, progress=progress, say=lambda line: console.print(
                f"[bold]{name}[/bold] {line}", soft_wrap=True, highlight=False))
        except (GenerationError, OpenAIError) as exc:
            console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
            raise typer.Exit(1) from None
    from reasonlab.recipes.parts import summary_lines

    for line in summary_lines(summary):
        typer.echo(line)
    typer.echo(f"report: {Path(out) / 'report.html'}")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    app.command("recipe")(recipe_command)
