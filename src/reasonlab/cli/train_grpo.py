"""``reasonlab train grpo``: R1-Zero-style RL from a YAML recipe plus dotted overrides."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors


def load_grpo_config(config: str, overrides: list[str]):
    from reasonlab.config import apply_overrides, from_dict, load_yaml
    from reasonlab.recipes import config_path
    from reasonlab.train.grpo_config import GRPOConfig

    data = load_yaml(config_path(config)) if config else {}
    return from_dict(GRPOConfig, apply_overrides(data, overrides))


def grpo_command(
    overrides: Optional[List[str]] = typer.Argument(None, help="key.path=value overrides, e.g. optim.lr=2e-5"),
    config: str = typer.Option("r1_zero_arith", help="Recipe name or YAML path."),
    out: Path = typer.Option(..., help="Run directory (metrics.jsonl, checkpoints/, config.yaml)."),
    model: Optional[str] = typer.Option(None, help="Override the recipe's model."),
    resume: bool = typer.Option(True, help="Continue from the latest checkpoint in --out."),
) -> None:
    """Train with GRPO / Dr. GRPO / DAPO and rule-based rewards."""
    from reasonlab.train.grpo import GRPOTrainer

    with friendly_errors():
        cfg = load_grpo_config(config, list(overrides or []) + ([f"model={model}"] if model else []))
        trainer = GRPOTrainer(cfg, out)
    if resume and trainer.resume_if_possible():
        console.print(f"resumed from step {trainer.step}")
    history = trainer.train()
    if history:
        last = history[-1]
        console.print(f"step {last['step']}: reward {last['reward']}, accuracy {last['accuracy']}, "
                      f"format {last['format_rate']}")
    console.print(f"wrote {out}/metrics.jsonl and {out}/checkpoints/")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    train_app.command("grpo")(grpo_command)
