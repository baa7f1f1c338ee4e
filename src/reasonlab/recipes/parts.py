"""The pieces multi-stage recipes compose: config blocks (teacher, generation, evaluation) and
one stage function per kind of work (generate, SFT, GRPO, evaluate), each resuming from what
its stage directory already holds, plus the report shared by every recipe.

Why stage functions return closures: the stage runner (``stages.py``) decides whether a stage
runs at all; models and backends are built only inside the closure, so a skipped stage loads
nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reasonlab.config import require
from reasonlab.errors import DataError
from reasonlab.recipes.stages import Result
from reasonlab.traces.filters import FilterConfig
from reasonlab.traces.select import SelectConfig
from reasonlab.train.grpo_config import GRPOConfig, TaskConfig
from reasonlab.train.sft import SFTConfig

EVAL_COLUMNS = ("pass@1", "format_rate", "nonempty_think_rate")


@dataclass
class TeacherConfig:
    """Who writes the traces: a model spec or checkpoint directory sampled locally with
    ``backend``, or an OpenAI-compatible server (``base_url``; ``model`` is then the served name,
    default the server's first model)."""

    model: str = ""
    backend: str = "hf"  # hf | vllm | an import path 'module:function' (local teachers)
    base_url: str | None = None
    api_key_env: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # backend options (dtype, timeout_s, ...)

    def check(self) -> None:
        require(bool(self.model or self.base_url), "model",
                "give the teacher: a model spec or checkpoint path (teacher.model=PATH) or a server "
                "(teacher.base_url=URL)")


@dataclass
class GenerateConfig:
    """Rejection sampling (``reasonlab generate``): problems, samples per problem, filters, selection."""

    task: TaskConfig = field(default_factory=TaskConfig)  # split: train; prompt: r1
    limit: int = 200  # problems sampled
    n: int = 4  # samples per problem
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch: int = 8  # problems per call of a local backend
    concurrency: int = 4  # requests in flight (server teachers)
    min_written: int = 1  # fewer traces left after verification and filters fail the stage
    filters: FilterConfig = field(default_factory=FilterConfig)
    selection: SelectConfig = field(default_factory=SelectConfig)

    def check(self) -> None:
        require(self.limit >= 1, "limit", f"must be >= 1, got {self.limit}")
        require(self.n >= 1, "n", f"must be >= 1, got {self.n}")
        require(self.max_new_tokens >= 1, "max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        require(self.min_written >= 0, "min_written", f"must be >= 0, got {self.min_written}")


@dataclass
class EvalConfig:
    """Held-out evaluation of every model a recipe compares (greedy pass@1 by default)."""

    split: str = "test"
    limit: int = 100
    n: int = 1
    temperature: float = 0.0
    max_new_tokens: int = 256
    seed: int = 0

    def check(self) -> None:
        require(self.limit >= 1, "limit", f"must be >= 1, got {self.limit}")
        require(self.n >= 1, "n", f"must be >= 1, got {self.n}")
        require(self.temperature >= 0, "temperature", f"must be >= 0, got {self.temperature}")


def check_trainer(cfg: SFTConfig | GRPOConfig, key: str) -> None:
    """A recipe's next stage starts from the trainer's final checkpoint, so one must be saved."""
    require(cfg.save_every >= 1, f"{key}.save_every",
            "must be >= 1 in a recipe: the stage's output is its final checkpoint")


# ---- backends ------------------------------------------------------------------------------
def teacher_backend(t: TeacherConfig):
    """(generator, teacher name for provenance)."""
    from reasonlab.backends.factory import make_backend

    if t.base_url:
        key = None
        if t.api_key_env:
            key = os.environ.get(t.api_key_env)
            if not key:
                raise DataError(f"teacher.api_key_env: environment variable {t.api_key_env} is not set")
        gen = make_backend("openai", t.model or None, base_url=t.base_url, api_key=key, concurrency=1, **t.options)
        return gen, gen.model
    return make_backend(t.backend, t.model, **t.options), t.model


def teacher_inputs(t: TeacherConfig) -> dict[str, Any]:
    """What identifies the teacher in a stage key: its directory's content when it is one, and
    how it is reached (backend, server, options)."""
    return {"teacher": t.model, "teacher_settings": {"backend": t.backend, "base_url": t.base_url,
                                                     "api_key_env": t.api_key_env, "options": t.options}}


def local_backend(model: str | Path):
    from reasonlab.backends.factory import make_backend

    return make_backend("hf", str(model))


# ---- stage functions -------------------------------------------------------------------------
def generate_stage(gen: GenerateConfig, backend: Callable[[], tuple[Any, str]], remote: bool,
                   progress: bool) -> Callable[[Path], Result]:
    """Sample, verify, filter and select traces into ``DIR/traces.jsonl`` (resumes from raw.jsonl)."""

    def fn(folder: Path) -> Result:
        from reasonlab.tasks.base import get_task
        from reasonlab.traces.generate import SamplingSettings
        from reasonlab.traces.run import run

        task = get_task(gen.task.name, **gen.task.options)
        problems = task.load(gen.task.split, gen.limit)
        generator, name = backend()
        settings = SamplingSettings(teacher=name, prompt=gen.task.prompt, temperature=gen.temperature,
                                    top_p=gen.top_p, max_new_tokens=gen.max_new_tokens, seed=gen.seed)
        stats = run(task, generator, problems, settings, gen.n, folder, filters=gen.filters,
                    selection=gen.selection, batch=1 if remote else gen.batch,
                    workers=gen.concurrency if remote else 1, progress=progress)
        if stats["written"] < gen.min_written:
            raise DataError(f"{folder / 'traces.jsonl'}: {stats['written']} trace(s) passed verification and "
                            f"the filters, fewer than min_written={gen.min_written} "
                            f"(rejected: {_nonzero(stats['rejected'])}); see {folder / 'stats.json'}")
        return Result({"traces": folder / "traces.jsonl", "problems": folder / "problems.jsonl"},
                      {"problems": stats["problems"], "samples": stats["samples"], "kept": stats["kept"],
                       "written": stats["written"], "pass_rate_mean": stats["pass_rate"]["mean"],
                       "rejected": _nonzero(stats["rejected"])})

    return fn


def sft_stage(cfg: SFTConfig, model: str | Path, data: str | Path, progress: bool) -> Callable[[Path], Result]:
    def fn(folder: Path) -> Result:
        from reasonlab.train.sft import SFTTrainer

        trainer = SFTTrainer(replace(cfg, model=str(model), data=str(data)), folder)
        return _train(trainer, progress)

    return fn


def grpo_stage(cfg: GRPOConfig, model: str | Path, progress: bool) -> Callable[[Path], Result]:
    def fn(folder: Path) -> Result:
        from reasonlab.train.grpo import GRPOTrainer

        return _train(GRPOTrainer(replace(cfg, model=str(model)), folder), progress)

    return fn


def _train(trainer, progress: bool) -> Result:
    from reasonlab.train.checkpoint import latest_checkpoint

    trainer.resume_if_possible()
    history = trainer.train(progress=progress)
    final = latest_checkpoint(trainer.checkpoint_dir())
    last = history[-1] if history else {}
    metrics = {"steps": trainer.step, "train_wall_s": round(sum(h.get("step_s") or 0 for h in history), 1),
               **{k: last[k] for k in ("loss", "reward", "accuracy", "format_rate") if k in last}}
    return Result({"model": final}, metrics)


def eval_stage(ecfg: EvalConfig, task_cfg: TaskConfig, backend: Callable[[], Any], model_name: str,
               progress: bool) -> Callable[[Path], Result]:
    """Held-out evaluation into the stage directory (resumes from samples.jsonl)."""

    def fn(folder: Path) -> Result:
        from reasonlab.eval.runner import evaluate
        from reasonlab.tasks.base import get_task
        from reasonlab.types import SamplingParams

        task = get_task(task_cfg.name, **task_cfg.options)
        problems = task.load(ecfg.split, ecfg.limit)
        params = SamplingParams(n=ecfg.n, temperature=ecfg.temperature, max_new_tokens=ecfg.max_new_tokens,
                                seed=ecfg.seed)
        summary = evaluate(backend(), task, problems, prompt_format=task_cfg.prompt, params=params,
                           out_dir=folder, model_name=model_name, progress=progress)
        metrics = {k: summary["metrics"][k] for k in EVAL_COLUMNS}
        metrics["pass@1_se"] = pass1_se(folder / "samples.jsonl", [p.id for p in problems], ecfg.n)
        metrics["mean_tokens"] = summary["mean_completion_tokens"]
        metrics["problems"] = summary["problems"]
        return Result({"summary": folder / "summary.json"}, metrics)

    return fn


def plain_eval_stage(ecfg: EvalConfig, task_cfg: TaskConfig, model: str | Path, model_name: str,
                     progress: bool) -> Callable[[Path], Result]:
    """The outside check: ``model`` loaded with plain transformers (``AutoModelForCausalLM``, a
    bare user turn through the checkpoint's own chat template, ``model.generate``: prompt
    ``plain``), on ``ecfg``'s held-out problems, as an independent checker runs it."""
    from reasonlab.backends.factory import make_backend

    return eval_stage(ecfg, replace(task_cfg, prompt="plain"), lambda: make_backend("transformers", str(model)),
                      model_name, progress)


def per_problem_pass1(samples: Path, n: int | None = None) -> dict[str, float]:
    """Each problem's share of correct samples in an eval stage's samples.jsonl (the first ``n``
    sample indices when given, else all): the one place both the standard error and the paired
    gains read per-problem accuracy from."""
    from reasonlab.eval.runner import load_samples

    out = {}
    for pid, rows in load_samples(samples).items():
        picked = [rows[k] for k in range(n)] if n is not None else list(rows.values())
        out[pid] = sum(bool(r["correct"]) for r in picked) / len(picked)
    return out


def paired_gains(out: Path, stages: dict[str, str], base: str) -> dict[str, dict[str, Any]]:
    """Each eval's pass@1 minus the base's on the same problems, with a 95% paired bootstrap
    interval (``stages``: {label: stage dir}); a comparison is a claim only when the interval
    excludes 0."""
    from reasonlab.eval.intervals import paired_bootstrap_ci, rounded

    ref = per_problem_pass1(out / stages[base] / "samples.jsonl")
    gains = {}
    for label, stage in stages.items():
        if label == base:
            continue
        got = per_problem_pass1(out / stage / "samples.jsonl")
        ids = [i for i in ref if i in got]
        x, y = [got[i] for i in ids], [ref[i] for i in ids]
        gains[label] = {"gain": round(sum(x) / len(x) - sum(y) / len(y), 4) if ids else None,
                        "ci95": rounded(paired_bootstrap_ci(x, y)), "problems": len(ids)}
    return gains


def pass1_se(samples: Path, ids: list[str], n: int) -> float:
    """Standard error of pass@1 over problems: sd of per-problem accuracy / sqrt(problems)."""
    acc = per_problem_pass1(samples, n)
    per = [acc[i] for i in ids]
    if len(per) < 2:
        return 0.0
    mean = sum(per) / len(per)
    var = sum((x - mean) ** 2 for x in per) / (len(per) - 1)
    return round(math.sqrt(var / len(per)), 4)


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


# ---- report ----------------------------------------------------------------------------------
def summary_lines(summary: dict[str, Any]) -> list[str]:
    """One line per evaluated model of a recipe's summary (what the CLI prints)."""
    lines = []
    for label, m in summary["evals"].items():
        g = summary.get("gains_over_base", {}).get(label)
        gain = "" if not g or g["gain"] is None else f", gain {g['gain']:+.3f} [{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}]"
        lines.append(f"{label}: pass@1 {m['pass@1']:.3f} ± {m['pass@1_se']:.3f}{gain}, format {m['format_rate']:.3f}, "
                     f"non-empty thinking {m['nonempty_think_rate']:.3f}, mean tokens {m['mean_tokens']}")
    return lines


def eval_table(evals: dict[str, dict[str, Any]], gains: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Rows of the before/after table from eval stages' manifests, by label (with the paired
    gain over the base where ``gains`` has one)."""
    rows = []
    for label, m in evals.items():
        x = m["metrics"]
        g = (gains or {}).get(label)
        gain = "" if not g or g["gain"] is None else f"{g['gain']:+.2f} [{g['ci95'][0]:+.2f}, {g['ci95'][1]:+.2f}]"
        rows.append({"model": label, "pass@1": x["pass@1"], "± se": x["pass@1_se"], "gain (95% CI)": gain,
                     "format rate": x["format_rate"], "non-empty thinking": x["nonempty_think_rate"],
                     "mean tokens": x["mean_tokens"], "problems": x["problems"]})
    return rows


CURVES = {"sft": [("loss", "SFT loss")],
          "grpo": [("reward", "reward"), ("accuracy", "train accuracy (kept groups)"),
                   ("train_pass@1", "train pass@1 (every drawn group)"), ("format_rate", "format rate"),
                   ("response_length", "response length (tokens)")]}


def curves(out: Path, stages: dict[str, str]) -> list[Path]:
    """One plot per curve of each training stage (``{stage dir name: "sft" | "grpo"}``)."""
    from reasonlab.eval.report import line_plots
    from reasonlab.io import read_jsonl_rows

    images = []
    for name, kind in stages.items():
        rows = read_jsonl_rows(out / name / "metrics.jsonl")
        for key, title in CURVES[kind]:
            if any(r.get(key) is not None for r in rows):
                images.append(line_plots(out / "plots" / f"{name}_{key}.png", [r["step"] for r in rows],
                                         {key: [r.get(key) for r in rows]}, f"{name}: {title}", "step",
                                         smooth=5 if len(rows) >= 20 else 1))
    return images


def examples(samples: Path, k: int) -> str:
    """The first ``k`` samples of an eval as question, answer, verdict (a report's "what the model
    writes" section)."""
    from reasonlab.io import read_jsonl_rows

    if not samples.exists():
        return ""
    rows = read_jsonl_rows(samples)[:k]
    return "\n\n".join(f"Q: {_question(r['prompt'])}\n"
                         f"A: {r['completion']}\n-> extracted {r['extracted']!r}, reference {r['reference']!r}, "
                         f"correct: {r['correct']}" for r in rows)


def _question(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return next((m.get("content", "") for m in reversed(prompt) if m.get("role") == "user"), "")
