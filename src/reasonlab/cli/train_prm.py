"""``reasonlab train prm``: a process (or outcome) reward model from the model's own rollouts."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors, task_options


def prm_command(
    overrides: Optional[List[str]] = typer.Argument(None, help="PRMConfig overrides, e.g. rollouts=8"),
    config: Optional[str] = typer.Option(None, help="YAML file of PRMConfig fields (overrides win)."),
    model: Optional[str] = typer.Option(None, help="Policy that writes the rollouts, and the backbone."),
    task: str = typer.Option("arith"),
    task_option: Optional[List[str]] = typer.Option(None, help="Task knob KEY=VALUE, repeatable (e.g. max_number=50)."),
    data: Optional[str] = typer.Option(None, help="Data for file tasks: for --task jsonl a JSONL, JSON or parquet file, a datasets save_to_disk folder, or a folder of them."),
    out: Path = typer.Option(..., help="Run directory: labels.jsonl, metrics.jsonl, checkpoints/, model/."),
    kind: Optional[str] = typer.Option(None, help="prm (Monte Carlo step labels) | orm (outcome labels)."),
    report_to: Optional[str] = typer.Option(None, help="Experiment trackers, comma-separated: tensorboard (default) | wandb | mlflow | trackio | none, or an import path 'pkg.module:TrackerClass'."),
    resume: bool = typer.Option(True, help="Reuse labels and continue from the latest checkpoint in --out."),
) -> None:
    """Label steps by Monte Carlo rollouts (Math-Shepherd), then train a value head.

    Everything is written inside --out's own layout (nothing else there is touched): labels.jsonl
    (resumable), metrics.jsonl, checkpoints/step-N/ and the final scorer in model/."""
    from reasonlab import models
    from reasonlab.backends.factory import make_backend
    from reasonlab.config import load_config
    from reasonlab.io import append_jsonl, atomic_write_json
    from reasonlab.search.ranking import evaluate_ranking, split_by_problem
    from reasonlab.search.scorers import AGGREGATIONS, RewardModelScorer, ValueModel
    from reasonlab.tasks.base import get_task
    from reasonlab.train.prm import PRMConfig, PRMTrainer, mc_labels

    extra = [f"kind={kind}"] * bool(kind) + [f"model={model}"] * bool(model) + \
        [f"report_to={report_to}"] * bool(report_to)
    with friendly_errors():
        from reasonlab.io import check_writable_dir

        check_writable_dir(out)
        cfg = load_config(PRMConfig, config, list(overrides or []) + extra)
        the_task = get_task(task, data=data, **task_options(task_option))
        problems = the_task.load("train", cfg.problems)
        lm, tok = models.load(cfg.model, dtype="fp32")
    labels_path = out / "labels.jsonl"
    if not resume and labels_path.exists():
        labels_path.unlink()
    sampler = make_backend("hf", cfg.model, live_model=lm, tokenizer=tok)
    labelled = mc_labels(problems, sampler, the_task, cfg, out=labels_path)
    train_rows, held_out = split_by_problem(labelled, cfg.held_out, cfg.seed)
    trainer = PRMTrainer(cfg, out, train_rows, ValueModel(lm, cfg.kind), tok)
    if resume and trainer.resume_if_possible(warn=console.print):
        console.print(f"resumed from step {trainer.step}")
    history = trainer.train()
    trainer.save_model(out / "model")
    final = history[-1]["loss"] if history else None
    console.print(f"{cfg.kind}: {len(train_rows)} labelled solutions trained on, final loss {final}; "
                  f"scorer saved to {out / 'model'}")
    if held_out:  # how well the verifier ranks solutions of problems it never saw
        scorer = RewardModelScorer(trainer.inner_model().eval(), tok, cfg.step_delimiter, cfg.prompt)
        ranking = {agg: evaluate_ranking(scorer, held_out, agg) for agg in AGGREGATIONS}
        atomic_write_json(out / "ranking.json", {"held_out_solutions": len(held_out), **ranking})
        append_jsonl(out / "metrics.jsonl", [{"held_out_ranking": ranking}])
        r = ranking["last"]
        console.print(f"held-out ranking ({len(held_out)} solutions): AUC {r.get('auc')} (within problems "
                      f"{r.get('auc_within')}), "
                      f"best-of-n {r.get('best_of_n')} vs pass@1 {r.get('pass@1')} and pass@n {r.get('pass@n')}; "
                      f"{out / 'ranking.json'}")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    train_app.command("prm")(prm_command)
