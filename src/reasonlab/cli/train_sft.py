"""``reasonlab train sft``: supervised fine-tuning on conversations or reasoning traces."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors
from reasonlab.train.sft_formats import GENERATIONS, SFT_FORMATS


def sft_command(
    overrides: Optional[List[str]] = typer.Argument(None, help="key.path=value overrides, e.g. optim.lr=2e-5 epochs=3"),
    data: Optional[str] = typer.Option(None, help="Traces: a JSONL, JSON or parquet file, a datasets save_to_disk folder, or a folder of such files."),
    format: Optional[str] = typer.Option(None, "--format", help="Data schema: auto (default: detected per record) | " + " | ".join(SFT_FORMATS.ordered()) + "."),
    field: Optional[List[str]] = typer.Option(None, "--field", help="Rename a schema field, NAME=COLUMN (repeatable), e.g. --field question=problem --field thinking=gemini_thinking_trajectory."),
    openr1_generations: Optional[str] = typer.Option(None, help=" | ".join(GENERATIONS) + ": which traces of an openr1 record train (default first: the first verified one; verified: each verified one; all: every one, flags ignored)."),
    out: Path = typer.Option(..., help="Run directory (metrics.jsonl, checkpoints/, config.yaml)."),
    config: Optional[str] = typer.Option(None, help="YAML file of SFTConfig fields (overrides win)."),
    model: Optional[str] = typer.Option(None, help="Embedded name, HF directory, .gguf, or a checkpoint of ours."),
    on_bad_rows: Optional[str] = typer.Option(None, help="fail (default: list the first bad rows, train nothing) | skip (skip and count)."),
    chat_template: Optional[str] = typer.Option(None, help="auto (default: the model's own template unless it rewrites reasoning traces, then verbatim) | own (refuse rows it rewrites) | verbatim (a ChatML template from the tokenizer's own <|im_start|>/<|im_end|> that keeps every turn as given, saved as the checkpoint's chat template; for Qwen3 and others whose template rewrites earlier thinking)."),
    report_to: Optional[str] = typer.Option(None, help="Experiment trackers, comma-separated: tensorboard (default) | wandb | mlflow | trackio | none, or an import path 'pkg.module:TrackerClass'."),
    resume: bool = typer.Option(True, help="Continue from the latest intact checkpoint in --out."),
) -> None:
    """Fine-tune on assistant tokens only (the whole <think> block, the answer, end of turn)."""
    from reasonlab.config import load_config
    from reasonlab.io import check_writable_dir
    from reasonlab.train.sft import SFTConfig, SFTTrainer

    extra = [f"data={data}"] * bool(data) + [f"model={model}"] * bool(model) + \
        [f"on_bad_rows={on_bad_rows}"] * bool(on_bad_rows) + [f"format={format}"] * bool(format) + \
        [f"openr1_generations={openr1_generations}"] * bool(openr1_generations) + \
        [f"chat_template={chat_template}"] * bool(chat_template) + [f"report_to={report_to}"] * bool(report_to) + \
        field_overrides(field)
    with friendly_errors():
        check_writable_dir(out)
        cfg = load_config(SFTConfig, config, list(overrides or []) + extra)
        trainer = SFTTrainer(cfg, out)
    s = trainer.stats
    console.print("records read as " + ", ".join(f"{n}: {k}" for n, k in sorted(s.formats.items()))
                  + (f"; {s.unverified} with no verified trace" if s.unverified else ""))
    console.print(f"{s.examples} examples ({s.target_tokens:,} target tokens) from {cfg.data}; "
                  f"dropped {s.too_long} longer than max_len={cfg.max_len}, skipped {s.bad_rows} bad rows; "
                  f"{trainer.total_steps} steps")
    if resume and trainer.resume_if_possible(warn=console.print):
        console.print(f"resumed from step {trainer.step}")
    history = trainer.train()
    if history:
        console.print(f"step {history[-1]['step']}: loss {history[-1]['loss']}")
    console.print(f"wrote {out}/metrics.jsonl and {out}/checkpoints/step-{trainer.step}")


def field_overrides(items: list[str] | None) -> list[str]:
    """``--field question=problem`` -> the config override ``fields.question=problem``."""
    out = []
    for item in items or []:
        name, sep, column = item.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise typer.BadParameter(f"expected NAME=COLUMN, got {item!r}", param_hint="--field")
        out.append(f"fields.{name.strip()}={column.strip()}")
    return out


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    train_app.command("sft")(sft_command)
