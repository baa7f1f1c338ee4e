"""``reasonlab generate``: traces with rejection sampling (see ``reasonlab.traces``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import above, console, dumps, friendly_errors, task_options
from reasonlab.traces.select import valid_band


def _band(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected LO,HI (e.g. 0,0.5), got {text!r}", param_hint="'--band'") from None
    if not valid_band((lo, hi)):
        raise typer.BadParameter(f"needs 0 <= LO <= HI <= 1, got {text!r}", param_hint="'--band'")
    return lo, hi


def _check_band(text: str) -> str:
    _band(text)  # up front, before any model loads
    return text


def _api_key(var: Optional[str], flag: str) -> Optional[str]:
    if var is None:
        return None
    if not os.environ.get(var):
        raise typer.BadParameter(f"{flag} {var}: that environment variable is not set")
    return os.environ[var]


def generate_command(
    task: str = typer.Option(..., help="Task whose problems to sample (arith, gsm8k, math500, jsonl, ...)."),
    out: Path = typer.Option(..., help="Output directory; rerunning the same command resumes."),
    n: int = typer.Option(4, min=1, help="Samples per problem."),
    model: Optional[str] = typer.Option(None, help="Teacher: a model spec (local backends) or the served "
                                        "model name (--base-url; default: the server's first model)."),
    base_url: Optional[str] = typer.Option(None, help="An OpenAI-compatible server (implies --backend openai)."),
    api_key_env: Optional[str] = typer.Option(None, help="Environment variable holding the server's API key."),
    backend: str = typer.Option("hf", help="hf | vllm | openai (with --base-url)."),
    split: str = typer.Option("train"), limit: Optional[int] = typer.Option(None, min=1, help="First N problems."),
    data: Optional[str] = typer.Option(None, help="Data for file tasks: for --task jsonl a JSONL, JSON or parquet file, a datasets save_to_disk folder, or a folder of them."),
    task_option: Optional[List[str]] = typer.Option(None, help="Task knob KEY=VALUE, repeatable."),
    prompt: str = typer.Option("r1", help="Prompt format: r1 (pre-filled <think>), or r1_noprefill for "
                               "servers that refuse pre-fills or return reasoning_content."),
    temperature: float = typer.Option(0.7, min=0),
    top_p: float = typer.Option(1.0, min=0, max=1, callback=above(0, 1)),
    max_new_tokens: int = typer.Option(1024, min=1), seed: int = typer.Option(0, min=0),
    concurrency: int = typer.Option(8, min=1, help="Requests in flight (remote teachers)."),
    batch: int = typer.Option(8, min=1, help="Problems per call of a local backend."),
    timeout_s: float = typer.Option(300.0, min=0, callback=above(0), help="Per-request timeout (remote); stalls are retried."),
    max_retries: int = typer.Option(6, min=0, help="Retries per request on 429/5xx/timeouts/malformed JSON."),
    backoff_s: float = typer.Option(0.5, min=0, help="First retry's wait; doubles per retry (capped at 30 s)."),
    dtype: Optional[str] = typer.Option(None, help="auto | bf16 | fp32 (hf backend)."),
    filter_format: bool = typer.Option(True, help="Drop bad format or empty thinking."),
    filter_language: bool = typer.Option(True, help="Drop mixed-language chains of thought."),
    lang: str = typer.Option("en"), min_language_share: float = typer.Option(0.95, min=0, max=1),
    filter_code_blocks: bool = typer.Option(True, help="Drop code blocks inside a non-code CoT."),
    filter_long_paragraphs: bool = typer.Option(True), max_paragraph_chars: int = typer.Option(3000, min=1),
    dedup: bool = typer.Option(True, help="Drop exact duplicates (per question)."),
    near_dup: bool = typer.Option(True, help="Drop near duplicates (shingle Jaccard, per question)."),
    near_dup_threshold: float = typer.Option(0.8, min=0, max=1),
    decontam: bool = typer.Option(True, help="Drop questions sharing an n-gram with gsm8k/math500 test."),
    decontam_ngram: int = typer.Option(8, min=1),
    judge_backend: Optional[str] = typer.Option(None, help="LLM judge fallback when the verifier cannot judge."),
    judge_model: Optional[str] = typer.Option(None), judge_base_url: Optional[str] = typer.Option(None),
    judge_api_key_env: Optional[str] = typer.Option(None),
    select: Optional[int] = typer.Option(None, min=1, help="Keep N problems, s1-style (band, diversity, length)."),
    band: str = typer.Option("0,1", callback=_check_band, help="Pass-rate band LO,HI of eligible problems."),
    length_power: float = typer.Option(1.0, min=0, help="Selection weight = mean trace tokens ** this."),
    max_per_problem: int = typer.Option(0, min=0, help="Traces kept per problem (0 = all)."),
    progress: bool = typer.Option(True),
) -> None:
    """Sample a teacher on TASK, keep verified and filtered traces: OUT/traces.jsonl for `train sft`."""
    from reasonlab.backends.factory import make_backend
    from reasonlab.backends.openai import OpenAIError
    from reasonlab.prompts import PROMPTS
    from reasonlab.rewards.judge import backend_from_spec
    from reasonlab.tasks.base import get_task
    from reasonlab.traces.filters import FilterConfig
    from reasonlab.traces.generate import GenerationError, SamplingSettings
    from reasonlab.traces.run import run
    from reasonlab.traces.select import SelectConfig

    remote = base_url is not None or backend == "openai"
    with friendly_errors():
        if not remote and model is None:
            raise typer.BadParameter("give --model (a local teacher) or --base-url (a server)")
        PROMPTS.get(prompt)
        the_task = get_task(task, data=data, **task_options(task_option))
        problems = the_task.load(split, limit)
        if remote:
            gen = make_backend("openai", model, base_url=base_url or "http://127.0.0.1:8000/v1",
                               api_key=_api_key(api_key_env, "--api-key-env"), concurrency=1,
                               timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s)
        else:
            gen = make_backend(backend, model, **({"dtype": dtype} if dtype and backend == "hf" else {}))
        judge = None
        if judge_backend:
            judge = backend_from_spec(judge_backend, judge_model, judge_base_url, judge_api_key_env)
    try:
        teacher = gen.model if remote else model
        settings = SamplingSettings(teacher=teacher, prompt=prompt, temperature=temperature, top_p=top_p,
                                    max_new_tokens=max_new_tokens, seed=seed)
        filters = FilterConfig(format=filter_format, language=filter_language, lang=lang,
                               min_language_share=min_language_share, code_blocks=filter_code_blocks,
                               long_paragraphs=filter_long_paragraphs, max_paragraph_chars=max_paragraph_chars,
                               dedup=dedup, near_dup=near_dup, near_dup_threshold=near_dup_threshold,
                               decontam=decontam, decontam_ngram=decontam_ngram)
        selection = SelectConfig(select, _band(band), length_power, max_per_problem, seed)
        stats = run(the_task, gen, problems, settings, n, out, filters=filters, selection=selection,
                    judge_backend=judge, batch=1 if remote else batch, workers=concurrency if remote else 1,
                    progress=progress)
    except (GenerationError, OpenAIError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(dumps({k: stats[k] for k in ("problems", "samples", "rejected", "kept", "written")}))
    typer.echo(f"wrote {out / 'traces.jsonl'} ({stats['written']} rows) and {out / 'stats.json'}")


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    app.command("generate")(generate_command)
