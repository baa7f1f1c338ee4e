"""Journey vs shortcut learning at equal tokens (O1 Replication Journey, Qin et al. 2024).

Stages (``OUT/<stage>/``): eval_start -> generate -> journey_data (``journey_data.py``: two SFT
sets from the same sampled problems, equal token budgets) -> sft_shortcut -> eval_shortcut ->
sft_journey -> eval_journey, then ``OUT/report.html`` with both accuracies and their standard
errors side by side. Both students start from ``sft.model`` with the same SFT settings.
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
from reasonlab.recipes.stages import Result, Stages, ref
from reasonlab.train.sft import SFTConfig


@dataclass
class JourneyConfig:
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)  # sft.model: where both students start
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0  # the journey builder's choices
    token_budget: int = 0  # assistant tokens per set; 0 = the smaller set's total

    def check(self) -> None:
        check_trainer(self.sft, "sft")
        require(not self.sft.data, "sft.data", "is set by the recipe (the journey_data stage's files)")
        require(self.token_budget >= 0, "token_budget", f"must be >= 0, got {self.token_budget}")


def run(cfg: JourneyConfig, out: str | Path, progress: bool = True, say: Callable[[str], None] = print) -> dict:
    out = Path(out)
    st = Stages(out, say)
    task, start = cfg.generate.task, cfg.sft.model
    ev = {"eval": cfg.eval, "task": task}
    evals: dict[str, dict[str, Any]] = {}
    evals["start"] = st.run("eval_start", ev, {"model": start}, eval_stage(
        cfg.eval, task, lambda: local_backend(start), start, progress))
    gen = st.run("generate", cfg.generate, teacher_inputs(cfg.teacher), generate_stage(
        cfg.generate, lambda: teacher_backend(cfg.teacher), bool(cfg.teacher.base_url), progress), reuse=True)
    data = st.run("journey_data", {"seed": cfg.seed, "token_budget": cfg.token_budget, "tokenizer": start},
                  {"traces": ref(gen, "traces")}, _data_stage(st.output(gen, "traces").parent, cfg))
    for kind in ("shortcut", "journey"):
        sft = st.run(f"sft_{kind}", cfg.sft, {"data": ref(data, kind)},
                     sft_stage(cfg.sft, start, st.output(data, kind), progress))
        model = st.output(sft, "model")
        evals[kind] = st.run(f"eval_{kind}", ev, {"model": ref(sft, "model")}, eval_stage(
            cfg.eval, task, lambda m=model: local_backend(m), ref(sft, "model")["path"], progress))

    d = data["metrics"]
    stages = {k: m["stage"] for k, m in evals.items()}
    gains = paired_gains(out, stages, "start")
    versus = paired_gains(out, {"shortcut": stages["shortcut"], "journey": stages["journey"]}, "shortcut")["journey"]
    summary = {"evals": {k: m["metrics"] for k, m in evals.items()}, "gains_over_base": gains,
               "journey_minus_shortcut": versus, "data": d}
    atomic_write_json(out / "summary.json", summary)
    sections = [
        {"heading": "Held-out evaluation: journey vs shortcut", "table": eval_table(evals, gains),
         "text": f"journey - shortcut pass@1 = {versus['gain']:+.3f}, 95% paired bootstrap interval "
                 f"[{versus['ci95'][0]:+.3f}, {versus['ci95'][1]:+.3f}] over the same problems. "
                 f"Both sets come from the same {d['problems']} problems with a budget of {d['token_budget']} "
                 f"assistant tokens: shortcut {d['shortcut']['examples']} examples / {d['shortcut']['tokens']} "
                 f"tokens, journey {d['journey']['examples']} examples / {d['journey']['tokens']} tokens."},
        {"heading": "SFT curves", "images": curves(out, {"sft_shortcut": "sft", "sft_journey": "sft"})},
    ]
    from reasonlab.eval.report import write_html

    write_html(out / "report.html", "Journey vs shortcut learning", sections)
    return summary


def _data_stage(gen_dir: Path, cfg: JourneyConfig) -> Callable[[Path], Result]:
    def fn(folder: Path) -> Result:
        from reasonlab.errors import DataError
        from reasonlab.models import load_tokenizer
        from reasonlab.recipes.journey_data import build

        stats = build(gen_dir, folder, load_tokenizer(cfg.sft.model), cfg.seed, cfg.token_budget)
        if not stats["journey"]["examples"] or not stats["shortcut"]["examples"]:
            raise DataError(f"{gen_dir}: no problem has both a correct trace and a wrong attempt "
                            f"({stats['problems']} shared problems); sample more (generate.n, "
                            f"generate.temperature) or use a weaker teacher")
        return Result({"journey": folder / "journey.jsonl", "shortcut": folder / "shortcut.jsonl"}, stats)

    return fn
