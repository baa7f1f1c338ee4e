"""The DeepSeek-R1 pipeline (DeepSeek-AI 2025, §2.3) as one resumable run.

Stages (``OUT/<stage>/``):
1. eval_base: the base model on the held-out problems;
2. cold_traces (when ``cold_start.teacher`` is set): ``generate`` from a teacher or an R1-Zero
   checkpoint; otherwise ``cold_start.traces`` is a traces file made earlier;
3. cold_data: the well-formed correct traces of either (one think block with real work, then
   one answer; rows whose provenance says the verdict was wrong are dropped);
4. sft_cold: cold-start SFT of the base model;
5. grpo: RL from the cold-start checkpoint (accuracy + format + language consistency: R1 adds
   the language reward to the accuracy reward, §2.3.2);
6. eval_grpo; 7. rejection: rejection sampling from the RL checkpoint (``generate``);
8. sft_data: those traces plus ``rejection.plain_examples`` non-reasoning rows (the question,
   a plain answer: R1's "non-reasoning data", here from the same task);
9. sft: SFT of the *base* model on that mix (R1 retrains from the base, §2.3.3);
10. grpo_final: the last RL stage; 11. eval_final; then ``OUT/report.html``.

The trainers' ``model`` and ``data`` fields are set by the recipe (the base model, the previous
stage's checkpoint or data), so they must be left out of the YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    generate_stage,
    grpo_stage,
    local_backend,
    sft_stage,
    teacher_backend,
    teacher_inputs,
)
from reasonlab.recipes.stages import Result, Stages, ref
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.train.sft import SFTConfig


@dataclass
class ColdStartConfig:
    traces: str = ""  # a traces.jsonl made before (reasonlab generate), or:
    teacher: TeacherConfig | None = None  # a teacher (or R1-Zero checkpoint) sampled by `generate`
    generate: GenerateConfig = field(default_factory=GenerateConfig)

    def check(self) -> None:
        require(bool(self.traces) != (self.teacher is not None), "traces",
                "give exactly one source of cold-start traces: traces (a file) or teacher")


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
    rejection: RejectionConfig = field(default_factory=RejectionConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    grpo_final: GRPOConfig = field(default_factory=GRPOConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def check(self) -> None:
        for key in ("sft_cold", "grpo", "sft", "grpo_final"):
            trainer = getattr(self, key)
            check_trainer(trainer, key)
            require(trainer.model == type(trainer)().model, f"{key}.model",
                    "is set by the recipe (the base model or the previous stage's checkpoint); set model: instead")
        for key in ("sft_cold", "sft"):
            require(not getattr(self, key).data, f"{key}.data", "is set by the recipe (an earlier stage's output)")


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
    if cold.teacher is not None:
        gen = st.run("cold_traces", cold.generate, teacher_inputs(cold.teacher), generate_stage(
            cold.generate, lambda: teacher_backend(cold.teacher), bool(cold.teacher.base_url), progress), reuse=True)
        traces, source = ref(gen, "traces"), st.output(gen, "traces")
    else:
        traces, source = cold.traces, Path(cold.traces)
    data = st.run("cold_data", {}, {"traces": traces}, _well_formed(source))
    sft_cold = st.run("sft_cold", cfg.sft_cold, {"data": ref(data, "data"), "model": base},
                      sft_stage(cfg.sft_cold, base, st.output(data, "data"), progress))
    rl = st.run("grpo", cfg.grpo, {"model": ref(sft_cold, "model")},
                grpo_stage(cfg.grpo, st.output(sft_cold, "model"), progress))
    evaluate("eval_grpo", "cold-start SFT + GRPO", ref(rl, "model"), st.output(rl, "model"))
    rl_model, rl_name = st.output(rl, "model"), ref(rl, "model")["path"]  # the name keys raw.jsonl: relative
    rej = st.run("rejection", cfg.rejection.generate, {"model": ref(rl, "model")}, generate_stage(
        cfg.rejection.generate, lambda: (local_backend(rl_model), rl_name), False, progress), reuse=True)
    mix = st.run("sft_data", {"plain_examples": cfg.rejection.plain_examples, "task": task},
                 {"traces": ref(rej, "traces")}, _mix(st.output(rej, "traces"), cfg))
    sft = st.run("sft", cfg.sft, {"data": ref(mix, "data"), "model": base},
                 sft_stage(cfg.sft, base, st.output(mix, "data"), progress))
    final = st.run("grpo_final", cfg.grpo_final, {"model": ref(sft, "model")},
                   grpo_stage(cfg.grpo_final, st.output(sft, "model"), progress))
    evaluate("eval_final", "final (R1 recipe)", ref(final, "model"), st.output(final, "model"))

    summary = {"evals": {k: m["metrics"] for k, m in evals.items()},
               "stages": {k: m["metrics"] for k, m in st.manifests.items()},
               "final_model": str(st.output(final, "model"))}
    atomic_write_json(out / "summary.json", summary)
    sections = [
        {"heading": "Held-out evaluation", "table": eval_table(evals),
         "text": f"{evals['base']['metrics']['problems']} held-out {task.name} problems ({cfg.eval.split} "
                 f"split), prompt '{task.prompt}'; ± se is the standard error of pass@1 over problems."},
        {"heading": "Stages", "table": [{"stage": k, "wall s": m["wall_s"], "metrics": _short(m["metrics"])}
                                        for k, m in st.manifests.items()]},
        {"heading": "Training curves", "images": curves(out, {"sft_cold": "sft", "grpo": "grpo", "sft": "sft",
                                                              "grpo_final": "grpo"})},
    ]
    from reasonlab.eval.report import write_html

    write_html(out / "report.html", "The R1 recipe", sections)
    return summary


def _well_formed(traces: Path) -> Callable[[Path], Result]:
    """Keep rows whose answer turn is one think block with real work, then one answer."""

    def fn(folder: Path) -> Result:
        from reasonlab.errors import DataError
        from reasonlab.eval.metrics import r1_format_ok
        from reasonlab.rewards.format import thinking_nonempty

        if not traces.is_file():
            raise DataError(f"cold_start.traces: {traces} is not a file (give a traces.jsonl)")
        rows = read_jsonl_rows(traces)
        keep = [r for r in rows if isinstance(r.get("messages"), list) and r["messages"]
                and r["messages"][-1].get("role") == "assistant"
                and r1_format_ok(text := r["messages"][-1].get("content", "")) and thinking_nonempty(text)
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
