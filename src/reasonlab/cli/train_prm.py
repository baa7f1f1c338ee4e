"""``reasonlab train prm``: a process (or outcome) reward model from the model's own rollouts."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors, task_options


def prm_command(
    overrides: Optional[List[str]] = typer.Argument(None, help="PRMConfig overrides, e.g. rollouts=8"),
    model: str = typer.Option("smollm2-135m", help="Policy that writes the rollouts, and the backbone."),
    task: str = typer.Option("arith"),
    task_option: Optional[List[str]] = typer.Option(None, help="Task knob KEY=VALUE, repeatable (e.g. max_number=50)."),
    data: Optional[str] = typer.Option(None, help="Data file or directory for file tasks."),
    out: Path = typer.Option(..., help="Directory for the scorer (HF backbone + value head)."),
    kind: str = typer.Option("prm", help="prm (Monte Carlo step labels) | orm (outcome labels)."),
) -> None:
    """Label steps by Monte Carlo rollouts (Math-Shepherd), then train a value head."""
    import json

    from reasonlab import models
    from reasonlab.backends.hf import HFGenerator
    from reasonlab.config import apply_overrides, from_dict
    from reasonlab.search.scorers import ValueModel
    from reasonlab.tasks.base import get_task
    from reasonlab.train.prm import PRMConfig, mc_labels, train_value_model

    with friendly_errors():
        cfg = from_dict(PRMConfig, apply_overrides({"kind": kind}, list(overrides or [])))
        the_task = get_task(task, data=data, **task_options(task_option))
        problems = the_task.load("train", cfg.problems)
        lm, tok = models.load(model, dtype="fp32")
    out.mkdir(parents=True, exist_ok=True)
    data = mc_labels(problems, HFGenerator(lm, tok), the_task, cfg)
    with (out / "labels.jsonl").open("w") as f:
        for d in data:
            f.write(json.dumps({"problem_id": d["problem"].id, "steps": d["steps"], "labels": d["labels"]}) + "\n")
    value = ValueModel(lm, cfg.kind)
    history = train_value_model(value, tok, data, cfg, out)
    value.save(out, tok, {"step_delimiter": cfg.step_delimiter, "prompt": cfg.prompt, "base": model,
                          "examples": len(data)})
    console.print(f"{cfg.kind}: {len(data)} labelled solutions, final loss {history[-1]['loss']}; saved to {out}")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    train_app.command("prm")(prm_command)
