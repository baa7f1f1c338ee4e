"""``reasonlab train grpo``: R1-Zero-style RL from a YAML recipe plus dotted overrides."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors


def grpo_command(
    overrides: Optional[List[str]] = typer.Argument(None, help="key.path=value overrides, e.g. optim.lr=2e-5"),
    config: str = typer.Option("r1_zero_arith", help="Recipe name or YAML path."),
    out: Path = typer.Option(..., help="Run directory (metrics.jsonl, checkpoints/, config.yaml)."),
    model: Optional[str] = typer.Option(None, help="Override the recipe's model."),
    report_to: Optional[str] = typer.Option(None, help="Experiment trackers, comma-separated: tensorboard (default) | wandb | mlflow | trackio | none, or an import path 'pkg.module:TrackerClass'."),
    resume: bool = typer.Option(True, help="Continue from the latest checkpoint in --out."),
) -> None:
    """Train with GRPO / Dr. GRPO / DAPO and rule-based rewards."""
    from reasonlab.config import load_config
    from reasonlab.train.grpo import GRPOTrainer
    from reasonlab.train.grpo_config import GRPOConfig

    extra = [f"model={model}"] * bool(model) + [f"report_to={report_to}"] * bool(report_to)
    with friendly_errors():
        cfg = load_config(GRPOConfig, config, list(overrides or []) + extra)
        trainer = GRPOTrainer(cfg, out)
    if resume and trainer.resume_if_possible(warn=console.print):
        console.print(f"resumed from step {trainer.step}")
    history = trainer.train()
    if history:
        last = history[-1]
        console.print(f"step {last['step']}: reward {last['reward']}, accuracy {last['accuracy']}, "
                      f"format {last['format_rate']}")
    console.print(f"wrote {out}/metrics.jsonl and {out}/checkpoints/")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    train_app.command("grpo")(grpo_command)
