"""Distillation: a teacher writes traces, the verifier keeps the right ones, the student is
fine-tuned on them (R1-Distill; Sky-T1; s1), evaluated before and after beside the teacher.

Stages (``OUT/<stage>/``): eval_student_before -> eval_teacher -> generate -> sft ->
eval_student_after, then ``OUT/report.html`` and ``OUT/summary.json``. Every evaluation uses the
same held-out problems (``eval.split`` of ``generate.task``), so the table compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.config import require
from reasonlab.io import atomic_write_json
from reasonlab.recipes.parts import (
    EvalConfig,
    GenerateConfig,
    TeacherConfig,
    check_trainer,
    curves,
    eval_stage,
    eval_table,
    generate_stage,
    local_backend,
    paired_gains,
    sft_stage,
    teacher_backend,
    teacher_inputs,
)
from reasonlab.recipes.stages import Stages, ref
from reasonlab.train.sft import SFTConfig


@dataclass
class DistillConfig:
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)  # sft.model is the student
    eval: EvalConfig = field(default_factory=EvalConfig)
    eval_teacher: bool = True  # evaluate the teacher on the same held-out problems

    def check(self) -> None:
        check_trainer(self.sft, "sft")
        require(not self.sft.data, "sft.data", "is set by the recipe (the generate stage's traces.jsonl)")


def run(cfg: DistillConfig, out: str | Path, progress: bool = True, say: Callable[[str], None] = print) -> dict:
    out = Path(out)
    st = Stages(out, say)
    task, student = cfg.generate.task, cfg.sft.model
    evals: dict[str, dict[str, Any]] = {}
    ev = {"eval": cfg.eval, "task": task}

    evals["student before"] = st.run("eval_student_before", ev, {"model": student}, eval_stage(
        cfg.eval, task, lambda: local_backend(student), student, progress))
    if cfg.eval_teacher:
        evals["teacher"] = st.run("eval_teacher", ev, teacher_inputs(cfg.teacher), eval_stage(
            cfg.eval, task, lambda: teacher_backend(cfg.teacher)[0], cfg.teacher.model or cfg.teacher.base_url,
            progress))
    gen = st.run("generate", cfg.generate, teacher_inputs(cfg.teacher), generate_stage(
        cfg.generate, lambda: teacher_backend(cfg.teacher), bool(cfg.teacher.base_url), progress), reuse=True)
    sft = st.run("sft", cfg.sft, {"traces": ref(gen, "traces")},
                 sft_stage(cfg.sft, student, st.output(gen, "traces"), progress))
    model = st.output(sft, "model")
    evals["student after"] = st.run("eval_student_after", ev, {"model": ref(sft, "model")}, eval_stage(
        cfg.eval, task, lambda: local_backend(model), ref(sft, "model")["path"], progress))

    gains = paired_gains(out, {k: m["stage"] for k, m in evals.items()}, "student before")
    summary = {"evals": {k: m["metrics"] for k, m in evals.items()}, "gains_over_base": gains,
               "generate": gen["metrics"],
               "sft": sft["metrics"], "final_model": str(model)}
    atomic_write_json(out / "summary.json", summary)
    g = gen["metrics"]
    sections = [
        {"heading": "Held-out evaluation", "table": eval_table(evals, gains),
         "text": f"{evals['student before']['metrics']['problems']} held-out {task.name} problems "
                 f"({cfg.eval.split} split), prompt '{task.prompt}', {cfg.eval.n} sample(s) each at "
                 f"temperature {cfg.eval.temperature}; ± se is the standard error of pass@1 over problems."},
        {"heading": "Traces", "text": f"teacher {cfg.teacher.model or cfg.teacher.base_url}: {g['samples']} "
                                      f"samples of {g['problems']} problems, {g['kept']} kept, {g['written']} "
                                      f"written after selection; rejected {g['rejected']}."},
        {"heading": "SFT of the student", "images": curves(out, {"sft": "sft"})},
    ]
    from reasonlab.eval.report import write_html

    write_html(out / "report.html", "Distillation", sections)
    return summary
