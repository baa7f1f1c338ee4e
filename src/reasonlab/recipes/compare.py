"""``reasonlab compare``: the four ways of making a model reason, on one task and base model, in
one report (accuracy against what each one costs).

Methods (``compare_methods.METHODS``, run in their registration order, each under ``OUT/<method>/``
with its own stage runner, so one method's settings never redo another's stages):
- ``scaling``: inference-time scaling of the base model (vote and best-of-N at several n,
  budget forcing at several thinking budgets), through ``search.runner.run_scale``;
- ``r1_zero``: GRPO from the base (``parts.grpo_stage``), then the held-out eval;
- ``r1``: the R1 recipe itself (``recipes/r1.py``: worked or teacher cold start -> SFT -> GRPO ...);
- ``distill``: the distillation recipe (``recipes/distill.py``) with a teacher: this run's R1
  model unless ``distill.teacher`` names one (a model, a checkpoint, or a server).

Every stage is a recipe stage (``stages.Stages``): finished ones are skipped on a rerun, the
interrupted one resumes, so a ``kill -9`` followed by the same command finishes what is left.
``model``, ``task`` and ``eval`` are given once here and set into every method's configs, so every
row is measured on the same held-out problems. Compute comes from the tokens each stage recorded
(``eval/compute.py``); the report is ``compare_report.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reasonlab.config import require, require_name
from reasonlab.errors import DataError
from reasonlab.recipes.parts import EvalConfig, GenerateConfig, TeacherConfig, check_trainer
from reasonlab.recipes.r1 import R1Config
from reasonlab.train.grpo_config import GRPOConfig, TaskConfig
from reasonlab.train.sft import SFTConfig


@dataclass
class ScalingConfig:
    """Inference-time scaling of the base model on the eval problems (``eval``'s split and limit,
    its ``max_new_tokens``); ``think_budgets`` are budget forcing's budgets, ``n`` the others'."""

    strategies: list[str] = field(default_factory=lambda: ["vote", "best_of_n", "budget"])
    n: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    think_budgets: list[int] = field(default_factory=lambda: [32, 64])
    temperature: float = 0.7
    scorer: str | None = None  # best_of_n / weighted_vote: `verifier` (tasks that check themselves) or a PRM dir
    seed: int = 0

    def check(self) -> None:
        from reasonlab.search.base import STRATEGIES, get_strategy

        get_strategy("vote")  # fills the registry
        for i, name in enumerate(self.strategies):
            require_name(STRATEGIES, name, f"strategies[{i}]")
        require(all(n >= 1 for n in self.n), "n", f"each n must be >= 1, got {self.n}")
        require(all(b >= 1 for b in self.think_budgets), "think_budgets",
                f"each budget must be >= 1, got {self.think_budgets}")
        require(self.temperature >= 0, "temperature", f"must be >= 0, got {self.temperature}")


@dataclass
class DistillMethodConfig:
    """``teacher``: None distils this run's R1 model (the ``r1`` method must be in ``methods``)."""

    teacher: TeacherConfig | None = None
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)

    def check(self) -> None:
        check_trainer(self.sft, "sft")
        require(not self.sft.data, "sft.data", "is set by compare (the generate stage's traces)")
        require(self.sft.model == SFTConfig().model, "sft.model", "is set by compare (the base model); set model:")


@dataclass
class CompareConfig:
    model: str = "smollm2-135m"  # the base model every method starts from
    task: TaskConfig = field(default_factory=TaskConfig)  # the training split; eval.split is held out
    eval: EvalConfig = field(default_factory=EvalConfig)
    methods: list[str] = field(default_factory=lambda: ["scaling", "r1_zero", "r1", "distill"])
    queries: int = 10000  # answered problems the inference cost is counted for in the chart
    price_per_hour: float = 0.0  # money per machine hour; 0: wall time only
    plain_eval: bool = True  # the outside check: each trained model loaded with plain transformers
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    r1_zero: GRPOConfig = field(default_factory=GRPOConfig)
    r1: R1Config = field(default_factory=R1Config)
    distill: DistillMethodConfig = field(default_factory=DistillMethodConfig)

    def check(self) -> None:
        from reasonlab.recipes.compare_methods import METHODS

        require(bool(self.methods), "methods", "give at least one method")
        for i, name in enumerate(self.methods):
            require(name in METHODS, f"methods[{i}]",
                    f"unknown method {name!r}; valid: {', '.join(METHODS.ordered())}")
        require(self.queries >= 1, "queries", f"must be >= 1, got {self.queries}")
        require(self.price_per_hour >= 0, "price_per_hour", f"must be >= 0, got {self.price_per_hour}")
        check_trainer(self.r1_zero, "r1_zero")
        require(self.r1_zero.model == GRPOConfig().model, "r1_zero.model", "is set by compare; set model:")
        require(self.r1.model == R1Config().model, "r1.model", "is set by compare; set model:")
        if "distill" in self.methods and self.distill.teacher is None:
            require("r1" in self.methods, "distill.teacher",
                    "give a teacher (distill.teacher.model=PATH or distill.teacher.base_url=URL), or add r1 "
                    "to methods so that its model is the teacher")


def preflight(cfg: CompareConfig) -> None:
    """Before any work: every teacher the chosen methods ask must be reachable (a server answers
    ``/models``; a model spec resolves). A DataError / ModelError is one line."""
    teachers = []
    if "distill" in cfg.methods and cfg.distill.teacher is not None:
        teachers.append(("distill.teacher", cfg.distill.teacher))
    if "r1" in cfg.methods and cfg.r1.cold_start.teacher is not None:
        teachers.append(("r1.cold_start.teacher", cfg.r1.cold_start.teacher))
    for key, t in teachers:
        if t.base_url:
            _reach(key, t.base_url)
        elif t.backend in ("hf", "transformers"):
            from reasonlab.models import resolve

            resolve(t.model)


def _reach(key: str, base_url: str) -> None:
    import httpx

    url = base_url.rstrip("/") + "/models"
    try:
        r = httpx.get(url, timeout=10.0)
    except httpx.HTTPError as exc:
        raise DataError(f"{key}.base_url: {url} cannot be reached ({type(exc).__name__}: {exc})") from None
    if r.status_code >= 400 and r.status_code not in (401, 403):  # a key problem is the server's to report
        raise DataError(f"{key}.base_url: {url} answered HTTP {r.status_code}; is it an OpenAI-compatible server?")


def run(cfg: CompareConfig, out: str | Path, progress: bool = True, say: Callable[[str], None] = print) -> dict:
    """Run the chosen methods (each skipped where finished), then write ``OUT/summary.json`` and
    ``OUT/report.html``; returns the summary."""
    from reasonlab.io import check_writable_dir
    from reasonlab.recipes.compare_methods import run_methods
    from reasonlab.recipes.compare_report import write_report

    out = check_writable_dir(out)
    rows = run_methods(cfg, out, progress, say)
    return write_report(cfg, out, rows)
