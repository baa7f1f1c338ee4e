"""``reasonlab scale``: accuracy against tokens for inference-time strategies at several n."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from reasonlab.cli.common import console, friendly_errors, task_options


def _budgets(text: str) -> list[int]:
    """``--n 1,2,4`` -> ``[1, 2, 4]``; each budget an integer >= 1 (checked before any work)."""
    try:
        ns = [int(x) for x in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}",
                                 param_hint="'--n'") from None
    for value in ns:
        if value < 1:
            raise typer.BadParameter(f"each budget must be >= 1, got {value} in {text!r}",
                                     param_hint="'--n'")
    return ns


def _check_budgets(text: str) -> str:
    _budgets(text)  # up front, before any work
    return text


def scale_command(
    task: str = typer.Option(..., help="Task name."),
    out: Path = typer.Option(..., help="Output directory (summary.json, results.jsonl, scaling.png, report.html)."),
    model: str = typer.Option("smollm2-135m"),
    strategy: str = typer.Option("vote", help="Comma-separated: cot, vote, weighted_vote, best_of_n, beam, dvts, budget."),
    n: str = typer.Option("1,2,4,8,16", callback=_check_budgets,
                          help="Comma-separated budgets, each >= 1."),
    scorer: Optional[str] = typer.Option(None, help="Reward model dir from `reasonlab train prm`, or `verifier`: "
                                         "the task checks its own candidates (countdown, humaneval)."),
    limit: int = typer.Option(64, min=1),
    split: str = typer.Option("test"),
    prompt: str = typer.Option("cot"),
    temperature: float = typer.Option(0.8, min=0),
    max_new_tokens: int = typer.Option(128, min=1),
    seed: int = typer.Option(0, min=0),
    data: Optional[str] = typer.Option(None, help="Data for file tasks: for --task jsonl a JSONL, JSON or parquet file, a datasets save_to_disk folder, or a folder of them."),
    task_option: Optional[List[str]] = typer.Option(None, help="Task knob KEY=VALUE, repeatable (e.g. max_number=50)."),
    backend: str = typer.Option("hf"),
) -> None:
    """Run STRATEGY at each N; plot accuracy vs tokens generated, several strategies in one chart."""
    from reasonlab.backends.factory import make_backend
    from reasonlab.io import check_writable_dir
    from reasonlab.prompts import PROMPTS
    from reasonlab.search.base import SearchConfig, get_strategy
    from reasonlab.search.runner import run_scale, scorer_from_spec
    from reasonlab.tasks.base import get_task

    with friendly_errors():
        check_writable_dir(out)  # before any work: a read-only --out must not cost a model load
        names = [s.strip() for s in strategy.split(",") if s.strip()]
        for s in names:
            get_strategy(s)
        PROMPTS.get(prompt)
        ns = _budgets(n)
        the_task = get_task(task, data=data, **task_options(task_option))
        problems = the_task.load(split, limit)
        rm = scorer_from_spec(scorer, the_task)
        gen = make_backend(backend, model)
    cfg = SearchConfig(prompt=prompt, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    summary = run_scale(problems, the_task, gen, rm, names, ns, cfg, out)
    base = summary["baseline"]
    if base:
        console.print(f"pass@1 {base['pass@1']:.3f} {_ci(base['pass@1_ci'])} (from {base['from']}); 95% bootstrap "
                      "intervals over problems, gains paired against pass@1")
    for name, rows in summary["strategies"].items():
        console.print(name + ":")
        for r in rows:
            gain = f", gain {r['gain']:+.3f} {_ci(r['gain_ci'])}" if "gain" in r else ""
            console.print(f"  n={r['n']} acc {r['accuracy']:.3f} {_ci(r['accuracy_ci'])}{gain} "
                          f"({r['tokens_per_problem']:.0f} tok)")
    console.print(f"wrote {out}/summary.json and {out}/report.html")


def _ci(ci: list[float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def register(app: typer.Typer, train_app: typer.Typer) -> None:
    app.command("scale")(scale_command)
