"""``reasonlab demo``: the main job on the embedded model, in one resumable command."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors

DEFAULT_CONFIGS = {"r1": "r1_demo", "r1-zero": "r1_zero_arith"}


def demo_command(
    overrides: Optional[List[str]] = typer.Argument(None, help="key.path=value overrides of the recipe"),
    out: Path = typer.Option(Path("runs/demo"), help="Run directory; re-running resumes."),
    recipe: str = typer.Option("r1", help="r1: cold-start SFT on worked solutions, then GRPO (default); "
                                          "r1-zero: GRPO from the base model alone."),
    config: Optional[str] = typer.Option(None, help="Recipe name or YAML path (default: r1_demo or r1_zero_arith)."),
    eval_limit: int = typer.Option(100, min=1, help="Held-out problems for the evaluations."),
) -> None:
    """Base eval -> (cold-start SFT ->) GRPO -> eval of the saved model, also with plain transformers
    -> OUT/report.html. Re-running the same command resumes."""
    from reasonlab.config import ConfigError, load_config

    with friendly_errors():
        if recipe not in DEFAULT_CONFIGS:
            raise ConfigError(f"--recipe {recipe!r}: unknown; valid: {', '.join(DEFAULT_CONFIGS)}")
        name = config or DEFAULT_CONFIGS[recipe]
        if recipe == "r1-zero":
            from reasonlab.recipes.r1_zero import run
            from reasonlab.train.grpo_config import GRPOConfig

            cfg = load_config(GRPOConfig, name, list(overrides or []))
        else:
            from reasonlab.recipes.r1 import R1Config, run as run_r1

            cfg = load_config(R1Config, name, list(overrides or []) + [f"eval.limit={eval_limit}"])
    if recipe == "r1-zero":
        summary = run(cfg, out, eval_limit=eval_limit)
        b, a = summary["before"], summary["after"]
        console.print(f"pass@1 {b['pass@1']:.3f} -> {a['pass@1']:.3f}; format rate "
                      f"{b['format_rate']:.3f} -> {a['format_rate']:.3f} after {summary['steps']} steps")
        console.print(f"report: {out / 'report.html'}; model: {summary['final_checkpoint']}")
        return
    summary = run_r1(cfg, out, say=lambda line: console.print(f"[bold]demo[/bold] {line}", highlight=False))
    from reasonlab.recipes.parts import summary_lines

    for line in summary_lines(summary):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"wall {summary['wall_s'] / 60:.1f} min; report: {out / 'report.html'}; "
                  f"model: {summary['final_model']}", highlight=False)


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    app.command("demo")(demo_command)
