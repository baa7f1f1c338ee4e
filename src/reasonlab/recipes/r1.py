"""The DeepSeek-R1 pipeline (DeepSeek-AI 2025, §2.3) as one resumable run.

Stages (``OUT/<stage>/``):
1. eval_base: the base model on the held-out problems;
2. cold_traces: ``generate`` from a teacher or an R1-Zero checkpoint (``cold_start.teacher``), or
   the task's own worked solutions (``cold_start.worked``: a program as the teacher, arith);
   otherwise ``cold_start.traces`` is a traces file made earlier;
3. cold_data: the well-formed correct traces of either (one think block with real work, then
   one answer; rows whose provenance says the verdict was wrong are dropped);
4. sft_cold: cold-start SFT of the base model; with ``difficulty`` set, ``difficulty``:
   ``generate`` from that checkpoint on GRPO's prompts, whose per-problem pass rates
   (``problems.jsonl``) pick the prompts in ``grpo.difficulty.band``;
5. grpo: RL from the cold-start checkpoint (accuracy + format + language consistency: R1 adds
   the language reward to the accuracy reward, §2.3.2);
6. eval_grpo; 7. rejection: rejection sampling from the RL checkpoint (``generate``);
8. sft_data: those traces plus ``rejection.plain_examples`` non-reasoning rows (the question,
   a plain answer: R1's "non-reasoning data", here from the same task);
9. sft: SFT of the *base* model on that mix (R1 retrains from the base, §2.3.3);
10. grpo_final: the last RL stage; 11. eval_final; 12. eval_sft_cold (the cold start alone, for
comparison); then ``OUT/report.html``.

``stop_after: grpo`` ends after stage 6 (cold start + one RL stage: the demo, which must fit in
20 CPU minutes). ``plain_eval: true`` adds ``eval_plain``: the final checkpoint loaded with plain
transformers through its own chat template, a bare user turn, as an outside check would run it.

The trainers' ``model`` and ``data`` fields are set by the recipe (the base model, the previous
stage's checkpoint or data), so they must be left out of the YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reasonlab.config import require
from reasonlab.io import atomic_write_json, atomic_write_jsonl, read_jsonl_rows
from reasonlab.recipes.parts import (
    EvalConfig,
    GenerateConfig,
    TeacherConfig,
    check_trainer,
    curves,
    eval_stage,
    eval_table,
    examples,
    paired_gains,
    plain_eval_stage,
    generate_stage,
    grpo_stage,
    local_backend,
    sft_stage,
    teacher_backend,
    teacher_inputs,
)
from reasonlab.recipes.stages import Result, Stages, ref
from reasonlab.train.grpo_config import GRPOConfig, TaskConfig
from reasonlab.train.sft import SFTConfig


STOPS = ("grpo", "grpo_final")


@dataclass
class WorkedConfig:
    """Cold-start traces written by the task itself (``task.worked``), on ``limit`` problems."""

    task: TaskConfig = field(default_factory=TaskConfig)
    limit: int = 300

    def check(self) -> None:
        require(self.limit >= 1, "limit", f"must be >= 1, got {self.limit}")


@dataclass
class ColdStartConfig:
    traces: str = ""  # a traces.jsonl made before (reasonlab generate), or:
    teacher: TeacherConfig | None = None  # a teacher (or R1-Zero checkpoint) sampled by `generate`, or:
    worked: WorkedConfig | None = None  # the task's worked solutions (a program as the teacher)
    generate: GenerateConfig = field(default_factory=GenerateConfig)

    def check(self) -> None:
        sources = [bool(self.traces), self.teacher is not None, self.worked is not None]
        require(sum(sources) == 1, "traces",
                "give exactly one source of cold-start traces: traces (a file), teacher or worked")


@dataclass
class RejectionConfig:
    generate: GenerateConfig = field(default_factory=GenerateConfig)  # sampled from the RL checkpoint
    plain_examples: int = 100  # non-reasoning rows: question -> plain answer

    def check(self) -> None:
        require(self.plain_examples >= 0, "plain_examples", f"must be >= 0, got {self.plain_examples}")


@dataclass
class R1Config:
    model: str = "smollm2-135m"  # the base model
    cold_start: ColdStartConfig = field(default_factory=ColdStartConfig)
    sft_cold: SFTConfig = field(default_factory=SFTConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    # pass rates of the cold-start model on GRPO's prompts (its task is grpo.task, set by the recipe)
    difficulty: GenerateConfig | None = None
    rejection: RejectionConfig = field(default_factory=RejectionConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    grpo_final: GRPOConfig = field(default_factory=GRPOConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    stop_after: str = "grpo_final"  # or "grpo": cold start + one RL stage
    plain_eval: bool = False  # also evaluate the final model with plain transformers (eval_plain)

    def check(self) -> None:
        require(self.stop_after in STOPS, "stop_after", f"must be one of {', '.join(STOPS)}, got {self.stop_after!r}")
        for key in ("sft_cold", "grpo", "sft", "grpo_final"):
            trainer = getattr(self, key)
            check_trainer(trainer, key)
            require(trainer.model == type(trainer)().model, f"{key}.model",
                    "is set by the recipe (the base model or the previous stage's checkpoint); set model: instead")
        for key in ("sft_cold", "sft"):
            require(not getattr(self, key).data, f"{key}.data", "is set by the recipe (an earlier stage's output)")
        require(self.grpo.difficulty.problems is None or self.difficulty is None, "grpo.difficulty.problems",
                "is set by the recipe's difficulty stage; give one or the other")


def run(cfg: R1Config, out: str | Path, progress: bool = True, say: Callable[[str], None] = print) -> dict:
    out = Path(out)
    st = Stages(out, say)
    task, base = cfg.grpo.task, cfg.model
    ev = {"eval": cfg.eval, "task": task}
    evals: dict[str, dict[str, Any]] = {}

    def evaluate(name: str, label: str, model: dict | str, path: str | Path) -> None:
        """``model``: the stage input (a model spec, or an earlier stage's output ``ref``)."""
        shown = model["path"] if isinstance(model, dict) else model  # relative: a moved run still resumes
        evals[label] = st.run(name, ev, {"model": model}, eval_stage(
            cfg.eval, task, lambda: local_backend(path), shown, progress))

    evaluate("eval_base", "base", base, base)
    cold = cfg.cold_start
    if cold.worked is not None:
        gen = st.run("cold_traces", cold.worked, {}, _worked(cold.worked))
        traces, source = ref(gen, "traces"), st.output(gen, "traces")
    elif cold.teacher is not None:
        gen = st.run("cold_traces", cold.generate, teacher_inputs(cold.teacher), generate_stage(
            cold.generate, lambda: teacher_backend(cold.teacher), bool(cold.teacher.base_url), progress), reuse=True)
        traces, source = ref(gen, "traces"), st.output(gen, "traces")
    else:
        traces, source = cold.traces, Path(cold.traces)
    data = st.run("cold_data", {}, {"traces": traces}, _well_formed(source))
    sft_cold = st.run("sft_cold", cfg.sft_cold, {"data": ref(data, "data"), "model": base},
                      sft_stage(cfg.sft_cold, base, st.output(data, "data"), progress))
    grpo_cfg, rl_inputs = cfg.grpo, {"model": ref(sft_cold, "model")}
    if cfg.difficulty is not None:  # the stage key holds the file as an input (content, relative path)
        diff = _difficulty(cfg, st, sft_cold, progress)
        grpo_cfg = replace(cfg.grpo, difficulty=replace(cfg.grpo.difficulty, problems=str(st.output(diff, "problems"))))
        rl_inputs["problems"] = ref(diff, "problems")
    rl = st.run("grpo", cfg.grpo, rl_inputs, grpo_stage(grpo_cfg, st.output(sft_cold, "model"), progress))
    evaluate("eval_grpo", "cold-start SFT + GRPO", ref(rl, "model"), st.output(rl, "model"))
    if cfg.stop_after == "grpo":
        final, stages = rl, {"sft_cold": "sft", "grpo": "grpo"}
    else:
        final = _second_round(cfg, st, rl, evaluate, progress)
        stages = {"sft_cold": "sft", "grpo": "grpo", "sft": "sft", "grpo_final": "grpo"}
    # After the RL stages, so adding it never redoes them (a stage's key chains on the one before):
    # how much of the gain the cold start alone gives, beside what RL adds.
    evaluate("eval_sft_cold", "cold-start SFT", ref(sft_cold, "model"), st.output(sft_cold, "model"))
    evals = {k: evals[k] for k in ("base", "cold-start SFT", *(k for k in evals if k not in ("base", "cold-start SFT")))}
    last = {"grpo": "eval_grpo", "grpo_final": "eval_final"}[cfg.stop_after]
    if cfg.plain_eval:
        last, final_model = "eval_plain", st.output(final, "model")
        evals["final, plain transformers"] = st.run("eval_plain", ev, {"model": ref(final, "model")}, plain_eval_stage(
            cfg.eval, task, final_model, ref(final, "model")["path"], progress))

    gains = paired_gains(out, {k: m["stage"] for k, m in evals.items()}, "base")
    summary = {"evals": {k: m["metrics"] for k, m in evals.items()}, "gains_over_base": gains,
               "stages": {k: m["metrics"] for k, m in st.manifests.items()},
               "final_model": str(st.output(final, "model")),
               "wall_s": round(sum(m["wall_s"] for m in st.manifests.values()), 1)}
    atomic_write_json(out / "summary.json", summary)
    sections = [
        {"heading": "Held-out evaluation", "table": eval_table(evals, gains),
         "text": f"{evals['base']['metrics']['problems']} held-out {task.name} problems ({cfg.eval.split} "
                 f"split), prompt '{task.prompt}'; ± se is the standard error of pass@1 over problems; the gain "
                 f"is over the base on the same problems, with a 95% paired bootstrap interval."},
        {"heading": "Stages", "table": [{"stage": k, "wall s": m["wall_s"], "metrics": _short(m["metrics"])}
                                        for k, m in st.manifests.items()]},
        {"heading": "Training curves", "images": curves(out, stages)},
        {"heading": "What the final model writes", "pre": examples(out / last / "samples.jsonl", 4)},
    ]
    from reasonlab.eval.report import write_html

    write_html(out / "report.html", "The R1 recipe", sections)
    return summary


def _second_round(cfg: R1Config, st: Stages, rl: dict, evaluate, progress: bool) -> dict:
    """Rejection sampling from the RL checkpoint (+ plain answers) -> SFT of the base -> final RL."""
    rl_model, rl_name = st.output(rl, "model"), ref(rl, "model")["path"]  # the name keys raw.jsonl: relative
    rej = st.run("rejection", cfg.rejection.generate, {"model": ref(rl, "model")}, generate_stage(
        cfg.rejection.generate, lambda: (local_backend(rl_model), rl_name), False, progress), reuse=True)
    mix = st.run("sft_data", {"plain_examples": cfg.rejection.plain_examples, "task": cfg.grpo.task},
                 {"traces": ref(rej, "traces")}, _mix(st.output(rej, "traces"), cfg))
    sft = st.run("sft", cfg.sft, {"data": ref(mix, "data"), "model": cfg.model},
                 sft_stage(cfg.sft, cfg.model, st.output(mix, "data"), progress))
    final = st.run("grpo_final", cfg.grpo_final, {"model": ref(sft, "model")},
                   grpo_stage(cfg.grpo_final, st.output(sft, "model"), progress))
    evaluate("eval_final", "final (R1 recipe)", ref(final, "model"), st.output(final, "model"))
    return final


def _difficulty(cfg: R1Config, st: Stages, sft_cold: dict, progress: bool) -> dict:
    """Sample the cold-start model on GRPO's prompts (the stage's manifest; its ``problems``
    output holds the per-problem pass rates GRPO's ``difficulty.band`` picks from)."""
    gen = replace(cfg.difficulty, task=cfg.grpo.task, min_written=0)
    model, model_ref = st.output(sft_cold, "model"), ref(sft_cold, "model")
    return st.run("difficulty", gen, {"model": model_ref}, generate_stage(
        gen, lambda: (local_backend(model), model_ref["path"]), False, progress), reuse=True)


def _worked(cfg: WorkedConfig) -> Callable[[Path], Result]:
    def fn(folder: Path) -> Result:
        from reasonlab.tasks.base import get_task
        from reasonlab.traces.worked import worked_rows

        task = get_task(cfg.task.name, **cfg.task.options)
        rows = worked_rows(task, task.load(cfg.task.split, cfg.limit))
        atomic_write_jsonl(folder / "traces.jsonl", rows)
        return Result({"traces": folder / "traces.jsonl"}, {"written": len(rows)})

    return fn


def _well_formed(traces: Path) -> Callable[[Path], Result]:
    """Keep rows whose answer turn is one think block with real work, then one answer."""

    def fn(folder: Path) -> Result:
        from reasonlab.errors import DataError
        from reasonlab.eval.metrics import well_formed

        if not traces.is_file():
            raise DataError(f"cold_start.traces: {traces} is not a file (give a traces.jsonl)")
        rows = read_jsonl_rows(traces)
        keep = [r for r in rows if isinstance(r.get("messages"), list) and r["messages"]
                and r["messages"][-1].get("role") == "assistant"
                and well_formed(r["messages"][-1].get("content", ""))
                and (r.get("provenance") or {}).get("verdict", {}).get("correct", True) is not False]
        if not keep:
            raise DataError(f"{traces}: none of its {len(rows)} rows is a well-formed correct trace")
        atomic_write_jsonl(folder / "data.jsonl", keep)
        return Result({"data": folder / "data.jsonl"}, {"rows": len(rows), "kept": len(keep)})

    return fn


def _mix(traces: Path, cfg: R1Config) -> Callable[[Path], Result]:
    """Rejection-sampled traces first (SFT detects the prompt format from the first row), then
    the plain-answer rows, on train problems after those the rejection stage sampled."""

    def fn(folder: Path) -> Result:
        from reasonlab.tasks.base import get_task

        gen = cfg.rejection.generate
        n_plain = cfg.rejection.plain_examples
        problems = get_task(gen.task.name, **gen.task.options).load(gen.task.split, gen.limit + n_plain)[gen.limit:]
        plain = [{"messages": [{"role": "user", "content": p.question}, {"role": "assistant", "content": p.answer}],
                  "problem_id": p.id, "provenance": {"set": "non-reasoning"}} for p in problems]
        rows = read_jsonl_rows(traces)
        atomic_write_jsonl(folder / "data.jsonl", rows + plain)
        return Result({"data": folder / "data.jsonl"}, {"reasoning": len(rows), "plain": len(plain)})

    return fn


def _short(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
                     if not isinstance(v, dict))
