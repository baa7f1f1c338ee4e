"""``reasonlab demo``: the R1-Zero run on the embedded model (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors


def demo_command(
    overrides: Optional[List[str]] = typer.Argument(None, help="key.path=value overrides of the recipe"),
    out: Path = typer.Option(Path("runs/demo"), help="Run directory; re-running resumes."),
    config: str = typer.Option("r1_zero_arith", help="Recipe name or YAML path."),
    eval_limit: int = typer.Option(100, help="Held-out problems for the before/after evaluation."),
) -> None:
    """Baseline eval -> GRPO (accuracy + format rewards) -> eval -> OUT/report.html."""
    from reasonlab.config import load_config
    from reasonlab.recipes.r1_zero import run
    from reasonlab.train.grpo_config import GRPOConfig

    with friendly_errors():
        cfg = load_config(GRPOConfig, config, list(overrides or []))
    summary = run(cfg, out, eval_limit=eval_limit)
    b, a = summary["before"], summary["after"]
    console.print(f"pass@1 {b['pass@1']:.3f} -> {a['pass@1']:.3f}; format rate "
                  f"{b['format_rate']:.3f} -> {a['format_rate']:.3f} after {summary['steps']} steps")
    console.print(f"report: {out / 'report.html'}; model: {summary['final_checkpoint']}")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    app.command("demo")(demo_command)
