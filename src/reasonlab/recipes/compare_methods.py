"""The methods ``reasonlab compare`` runs, one registered function each, sharing one signature:

    fn(cfg: CompareConfig, out: Path, progress: bool, say, done: dict[str, list[Row]]) -> list[Row]

Each runs its stages through the recipes (``Stages`` under ``OUT/<method>/``) and returns its
rows, read back from the stages' files: held-out accuracy from the eval stage, training compute
from the training stages' token counts, inference compute per answered problem from the eval's
(or the scaling point's) tokens. ``done`` holds the rows of the methods already run (distillation
reads the R1 model from it). A method whose budget is too small to run (no trace survives the
verifier, no data left for SFT, ...) raises DataError; ``run_methods`` turns that into a row that
says why, and the other methods still run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reasonlab.config import ConfigError
from reasonlab.errors import DataError
from reasonlab.eval.compute import CountingGenerator, Tokens, as_dict, flops, shape_of, stage_tokens
from reasonlab.io import atomic_write_json, read_json, read_jsonl_rows
from reasonlab.recipes.parts import TeacherConfig, eval_stage, grpo_stage, local_backend, plain_eval_stage
from reasonlab.recipes.stages import Result, Stages, ref
from reasonlab.registry import Registry


@dataclass
class Row:
    """One line of the comparison: a trained model, or one point of an inference-time strategy."""

    method: str
    label: str
    accuracy: float | None = None
    ci95: list[float] | None = None
    format_rate: float | None = None
    train_flops: float | None = 0.0  # None: not countable (a server teacher's part)
    teacher_flops: float = 0.0  # training of a teacher this run made (distillation from R1)
    infer_flops: float | None = None  # per answered problem
    infer_wall_s: float | None = None  # per answered problem
    stage_wall_s: dict[str, float] = field(default_factory=dict)  # training stages
    model: str = ""  # the final checkpoint (trained methods)
    plain_accuracy: float | None = None  # the outside check (``plain_check``) of ``model``
    plain_format_rate: float | None = None
    note: str = ""  # why it did not run, or what the numbers leave out


@dataclass(frozen=True)
class Method:
    title: str
    run: Callable[..., list[Row]]


METHODS: Registry[Method] = Registry("compare method")
UNTRAINED = ("scaling", "base")  # row kinds that train nothing (the base model, as is)


def method(name: str, title: str):
    def deco(fn):
        METHODS.register(name)(Method(title, fn))
        return fn

    return deco


def run_methods(cfg, out: Path, progress: bool, say) -> list[Row]:
    done: dict[str, list[Row]] = {}
    for name in METHODS.ordered():
        if name not in cfg.methods:
            continue
        m = METHODS.get(name)
        tell = lambda line, name=name: say(f"{name}/{line}")  # noqa: E731
        try:
            done[name] = m.run(cfg, out, progress, tell, done)
            if cfg.plain_eval:
                done[name] = [plain_check(cfg, out, r, progress, tell) if r.model and r.method not in UNTRAINED
                              else r for r in done[name]]
        except (DataError, ConfigError) as exc:  # a budget too small to run it: the row says why
            say(f"{name}: not run: {exc}")
            done[name] = [Row(name, m.title, train_flops=None, note=f"not run: {exc}")]
    return [r for rows in done.values() for r in rows]


def plain_check(cfg, out: Path, row: Row, progress: bool, say) -> Row:
    """The outside check of a trained row (``parts.plain_eval_stage``: its checkpoint with plain
    transformers, on the same held-out problems); its pass@1 and format rate go beside the row's own."""
    st = Stages(out / row.method, say)
    done = st.run("eval_plain", {"eval": cfg.eval, "task": replace(cfg.task, prompt="plain")}, {"model": row.model},
                  plain_eval_stage(cfg.eval, cfg.task, row.model, row.model, progress))
    return replace(row, plain_accuracy=done["metrics"]["pass@1"], plain_format_rate=done["metrics"]["format_rate"])


# ---- reading a finished method back -----------------------------------------------------------
def trained_row(name: str, title: str, st: Stages, training: dict[str, str], eval_name: str,
                shapes: dict[str, Any], note: str = "") -> Row:
    """A trained model's row: its eval stage's pass@1 (+ 95% interval) and format rate, the
    compute of its ``training`` stages ({stage: compute counter kind}, those that ran), and the
    eval's per-problem inference compute. ``shapes``: {stage: Shape or None (not countable)}."""
    ev = st.manifests[eval_name]
    folder = st.out / eval_name
    summary = read_json(folder / "summary.json")
    train, walls, unknown = 0.0, {}, []
    for stage, kind in training.items():
        if stage not in st.manifests:
            continue
        walls[stage] = st.manifests[stage]["wall_s"]
        shape = shapes.get(stage, shapes["model"])
        if shape is None:
            unknown.append(stage)
            continue
        train += flops(stage_tokens(kind, st.out / stage), shape)
    problems = summary["problems"]
    if unknown:
        note = "; ".join(filter(None, [note, f"compute of {', '.join(unknown)} not counted (a server teacher)"]))
    return Row(name, title, accuracy=ev["metrics"]["pass@1"], ci95=summary["intervals"]["pass@1"],
               format_rate=ev["metrics"]["format_rate"], train_flops=train,
               infer_flops=flops(stage_tokens("eval", folder), shapes["model"]) / problems,
               infer_wall_s=summary["wall_s"] / problems, stage_wall_s=walls, note=note)


def _eval(cfg, st: Stages, name: str, model: dict | str, path, progress: bool) -> dict:
    shown = model["path"] if isinstance(model, dict) else model
    return st.run(name, {"eval": cfg.eval, "task": cfg.task}, {"model": model},
                  eval_stage(cfg.eval, cfg.task, lambda: local_backend(path), shown, progress))


def _teacher_shape(t: TeacherConfig | None, base_shape):
    """A local teacher's shape (its own size); None for a server (its size is unknown)."""
    if t is None:
        return base_shape
    return None if t.base_url else shape_of(t.model)


# ---- the methods --------------------------------------------------------------------------------
@method("scaling", "inference-time scaling of the base model")
def scaling(cfg, out: Path, progress: bool, say, done) -> list[Row]:
    from reasonlab.search.base import get_strategy

    st, sc, shape = Stages(out / "scaling", say), cfg.scaling, shape_of(cfg.model)
    rows = []
    for strategy in sc.strategies:
        why = _cannot_run(get_strategy(strategy), sc.scorer)
        budgets = sc.think_budgets if strategy == "budget" else sc.n
        if why or not budgets:
            rows.append(Row("scaling", strategy, train_flops=None,
                            note=f"not run: {why or 'no budgets given (scaling.n / scaling.think_budgets)'}"))
            continue
        st.run(strategy, {"scaling": sc, "strategy": strategy, "eval": cfg.eval, "task": cfg.task},
                   {"model": cfg.model}, _scale_stage(cfg, strategy, progress))
        record = read_json(st.out / strategy / "compute.json")
        for p in record["points"]:
            rows.append(Row("scaling", f"{strategy} {p['label']}", accuracy=p["accuracy"], ci95=p["accuracy_ci"],
                            format_rate=p["format_rate"], train_flops=0.0,
                            infer_flops=flops(Tokens(**p["tokens"]), shape) / record["problems"],
                            infer_wall_s=p["wall_s"] / record["problems"], model=cfg.model))
    return rows


class _NoModel:
    def generate(self, prompts, params):
        return [[] for _ in prompts]


def _cannot_run(fn, scorer) -> str | None:
    """Why a strategy cannot run with this scorer (it refuses on no problems), without a model."""
    from reasonlab.search.base import SearchConfig

    if scorer is not None:
        return None
    try:
        fn([], _NoModel(), None, SearchConfig())
    except ValueError as exc:
        return f"{exc} (scaling.scorer: verifier for tasks that check their own answers, or a PRM dir)"
    return None


def _scale_stage(cfg, strategy: str, progress: bool):
    """run_scale on the eval problems, counting what the backend is asked (``compute.json``):
    vote and best-of-N draw max(n) samples once and each smaller n uses a prefix of them, so a
    point's compute is the prompts' prefill plus the share of the samples it used; budget forcing
    runs once per thinking budget (its continuation calls re-prefill what was written so far)."""

    def fn(folder: Path) -> Result:
        from reasonlab.search.base import SearchConfig
        from reasonlab.search.runner import run_scale, scorer_from_spec
        from reasonlab.tasks.base import get_task

        sc, task_cfg = cfg.scaling, cfg.task
        task = get_task(task_cfg.name, **task_cfg.options)
        problems = task.load(cfg.eval.split, cfg.eval.limit)
        backend = CountingGenerator(local_backend(cfg.model))
        scorer = scorer_from_spec(sc.scorer, task)
        base = SearchConfig(prompt=task_cfg.prompt, temperature=sc.temperature,
                            max_new_tokens=cfg.eval.max_new_tokens, seed=sc.seed)
        points = []
        if strategy == "budget":
            for b in sc.think_budgets:
                backend.reset()
                sub = folder / f"think-{b}"
                summary = run_scale(problems, task, backend, scorer, [strategy], [1],
                                    replace(base, think_budget=b), sub, progress)
                points.append(_point(f"think budget {b}", summary["strategies"][strategy][0], backend.tokens,
                                     sub, strategy))
        else:
            backend.reset()
            summary = run_scale(problems, task, backend, scorer, [strategy], list(sc.n), base, folder, progress)
            curve = summary["strategies"][strategy]
            top = max(curve, key=lambda r: r["n"])
            made = backend.generated
            for r in curve:
                share = r["tokens_per_problem"] / top["tokens_per_problem"] if top["tokens_per_problem"] else 0.0
                tokens = backend.prefill + made.scaled(share)
                points.append(_point(f"n={r['n']}", {**r, "wall_s": top["wall_s"] * share}, tokens, folder,
                                     strategy))
        atomic_write_json(folder / "compute.json", {"problems": len(problems), "points": points})
        return Result({"compute": folder / "compute.json"}, {"points": len(points)})

    return fn


def _point(label: str, r: dict, tokens: Tokens, folder: Path, strategy: str) -> dict:
    lines = [x for x in read_jsonl_rows(folder / "results.jsonl") if x["strategy"] == strategy and x["n"] == r["n"]]
    fmt = sum(bool(x.get("format_ok")) for x in lines) / len(lines) if lines else None
    return {"label": label, "n": r["n"], "accuracy": r["accuracy"], "accuracy_ci": r["accuracy_ci"],
            "format_rate": None if fmt is None else round(fmt, 4), "tokens": as_dict(tokens),
            "wall_s": round(r["wall_s"], 3)}


@method("r1_zero", "R1-Zero: GRPO from the base")
def r1_zero(cfg, out: Path, progress: bool, say, done) -> list[Row]:
    st = Stages(out / "r1_zero", say)
    g = replace(cfg.r1_zero, task=cfg.task)
    rl = st.run("grpo", g, {"model": cfg.model}, grpo_stage(g, cfg.model, progress))
    _eval(cfg, st, "eval", ref(rl, "model"), st.output(rl, "model"), progress)
    row = trained_row("r1_zero", METHODS.get("r1_zero").title, st, {"grpo": "grpo"}, "eval",
                      {"model": shape_of(cfg.model)})
    return [replace(row, model=str(st.output(rl, "model")))]


# the R1 recipe's stages that do training work, by compute counter (those that ran are counted)
R1_TRAINING = {"cold_traces": "generate", "sft_cold": "sft", "difficulty": "generate", "grpo": "grpo", "rejection": "generate",
               "sft": "sft", "grpo_final": "grpo"}


@method("r1", "R1: cold-start SFT + GRPO")
def r1(cfg, out: Path, progress: bool, say, done) -> list[Row]:
    from reasonlab.recipes import r1 as recipe

    c = cfg.r1
    task = cfg.task
    cold = replace(c.cold_start, generate=replace(c.cold_start.generate, task=task),
                   worked=None if c.cold_start.worked is None else replace(c.cold_start.worked, task=task))
    rcfg = replace(c, model=cfg.model, eval=cfg.eval, cold_start=cold, grpo=replace(c.grpo, task=task),
                   grpo_final=replace(c.grpo_final, task=task),
                   rejection=replace(c.rejection, generate=replace(c.rejection.generate, task=task)))
    summary = recipe.run(rcfg, out / "r1", progress, say)
    st = _reopen(out / "r1", summary["stages"])
    shape = shape_of(cfg.model)
    training = dict(R1_TRAINING)
    if cold.worked is not None:
        training["cold_traces"] = "worked"
    shapes = {"model": shape, "cold_traces": _teacher_shape(cold.teacher, shape)}
    last = "eval_grpo" if rcfg.stop_after == "grpo" else "eval_final"
    note = "cold start: the task's worked solutions (no model)" if cold.worked is not None else ""
    row = replace(trained_row("r1", METHODS.get("r1").title, st, training, last, shapes, note),
                  model=summary["final_model"])
    base = trained_row("base", "base model, greedy (no training)", st, {}, "eval_base", {"model": shape})
    return [base, row]


@method("distill", "distillation: teacher traces -> SFT of the base")
def distill(cfg, out: Path, progress: bool, say, done) -> list[Row]:
    from reasonlab.recipes import distill as recipe

    d, note, teacher_flops = cfg.distill, "", 0.0
    teacher = d.teacher
    if teacher is None:
        r1_row = next((r for r in done.get("r1", []) if r.method == "r1"), None)
        if r1_row is None or not r1_row.model:
            raise DataError("its teacher, the r1 method's model, was not made (see the r1 row)")
        teacher = TeacherConfig(model=r1_row.model)
        teacher_flops = r1_row.train_flops or 0.0
        note = "teacher: this run's R1 model; its training is counted in the total"
    dcfg = recipe.DistillConfig(teacher=teacher, generate=replace(d.generate, task=cfg.task),
                                sft=replace(d.sft, model=cfg.model), eval=cfg.eval, eval_teacher=False)
    recipe.run(dcfg, out / "distill", progress, say)
    st = _reopen(out / "distill", ["eval_student_before", "generate", "sft", "eval_student_after"])
    shape = shape_of(cfg.model)
    shapes = {"model": shape, "generate": _teacher_shape(teacher, shape)}
    row = trained_row("distill", METHODS.get("distill").title, st, {"generate": "generate", "sft": "sft"},
                      "eval_student_after", shapes, note)
    return [replace(row, teacher_flops=teacher_flops, model=str(st.output(st.manifests["sft"], "model")))]


def _reopen(out: Path, names) -> Stages:
    """The manifests of the stages a recipe just ran (``names``), read back: the recipe ran its
    own Stages; a stage left over from other settings is not among them."""
    st = Stages(out, say=lambda line: None)
    for name in names:
        m = read_json(out / name / "manifest.json")
        if isinstance(m, dict) and m.get("status") == "done":
            st.manifests[name] = m
    return st
