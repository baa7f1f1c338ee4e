"""``reasonlab eval``: sample a model on a task and write samples.jsonl + summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import above, friendly_errors, print_summary, task_options


def eval_command(
    model: str = typer.Option("smollm2-135m", help="Embedded name, HF dir, hub id or .gguf."),
    task: str = typer.Option(..., help="Task name (arith, countdown, gsm8k, math500, jsonl, ...)."),
    out: Path = typer.Option(..., help="Run directory; re-running with it resumes."),
    split: str = typer.Option("test"),
    limit: Optional[int] = typer.Option(None, min=1, help="First N problems only."),
    n: int = typer.Option(1, min=1, help="Samples per problem (pass@n, maj@n)."),
    temperature: Optional[float] = typer.Option(None, min=0, help="Default: 0 for n=1, else 0.7."),
    top_p: float = typer.Option(1.0, min=0, max=1, callback=above(0, 1)),
    max_new_tokens: int = typer.Option(256, min=1),
    prompt: str = typer.Option("r1", help="Prompt format: r1 | cot | plain."),
    seed: int = typer.Option(0, min=0),
    data: Optional[str] = typer.Option(None, help="Data for file tasks: for --task jsonl a JSONL, JSON or parquet file, a datasets save_to_disk folder, or a folder of them."),
    question_field: Optional[str] = typer.Option(None),
    answer_field: Optional[str] = typer.Option(None),
    task_option: Optional[List[str]] = typer.Option(None, help="Task knob KEY=VALUE, repeatable (e.g. max_number=50)."),
    backend: str = typer.Option("hf", help="Generation backend: hf | vllm | openai | transformers "
                                 "(plain model.generate through the checkpoint's own chat template)."),
    base_url: Optional[str] = typer.Option(None, help="Server URL for the openai backend."),
    dtype: Optional[str] = typer.Option(None, help="auto | bf16 | fp32 (hf backend)."),
) -> None:
    """Evaluate MODEL on TASK: pass@1, unbiased pass@n, maj@n, format rate, tokens spent.

    Re-running with the same --out resumes; a larger --n adds samples; any other setting that
    differs from OUT/run.json is refused before the model loads (see eval/runner.py)."""
    from reasonlab.backends.factory import make_backend
    from reasonlab.eval.runner import evaluate, open_run, run_settings
    from reasonlab.io import check_writable_dir
    from reasonlab.prompts import PROMPTS
    from reasonlab.tasks.base import get_task
    from reasonlab.types import SamplingParams

    temp = temperature if temperature is not None else (0.0 if n == 1 else 0.7)
    params = SamplingParams(n=n, temperature=temp, top_p=top_p, max_new_tokens=max_new_tokens,
                            seed=seed)
    with friendly_errors():
        check_writable_dir(out)  # before any work: a read-only --out must not cost a model load
        PROMPTS.get(prompt)
        options = task_options(task_option)
        the_task = get_task(task, data=data, question_field=question_field,
                            answer_field=answer_field, **options)
        settings = {"backend": backend, "dtype": dtype, "base_url": base_url, "split": split,
                    "data": _as_path(data), "question_field": question_field,
                    "answer_field": answer_field, "task_options": options}
        open_run(out, run_settings(the_task.name, _as_path(model), prompt, params, **settings), n)
        problems = the_task.load(split, limit)
        backend_options = {"dtype": dtype} if backend in ("hf", "transformers", "vllm") and dtype else {}
        if base_url:
            backend_options["base_url"] = base_url
        generator = make_backend(backend, model, **backend_options)
        summary = evaluate(generator, the_task, problems, prompt_format=prompt, params=params,
                           out_dir=out, model_name=_as_path(model), settings=settings)
    print_summary(summary)
    typer.echo(f"wrote {out / 'summary.json'} and {out / 'samples.jsonl'}")


def _as_path(spec: str | None) -> str | None:
    """A local path as an absolute one (so ``./m`` and ``m`` are the same run setting)."""
    return str(Path(spec).expanduser().resolve()) if spec and Path(spec).expanduser().exists() else spec


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    app.command("eval")(eval_command)
