"""The R1-Zero demo: baseline eval -> GRPO with rule-based rewards -> eval -> HTML report.

The "after" evaluation loads the final checkpoint from disk, as a user would, so its chat
template (which reproduces the training prompt) is what is measured. Everything lands in one
run directory and every stage resumes: evals skip finished problems,
training continues from its last checkpoint, so re-running the same command after a crash picks
up where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonlab.backends.factory import make_backend
from reasonlab.eval.report import line_plots, write_html
from reasonlab.io import atomic_write_json, read_json
from reasonlab.recipes import parts
from reasonlab.eval.runner import evaluate
from reasonlab.train.grpo import GRPOTrainer
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.types import SamplingParams

PLOTS = [("reward", "reward (weighted sum)"), ("accuracy", "accuracy (train batch, kept groups)"),
         ("train_pass@1", "train pass@1 (every drawn group)"),
         ("format_rate", "format rate"), ("response_length", "response length (tokens)"),
         ("reflection_rate", "reflection-word rate"), ("entropy", "policy entropy")]


def run(cfg: GRPOConfig, out: str | Path, eval_limit: int = 100, progress: bool = True) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = GRPOTrainer(cfg, out / "grpo")
    test = trainer.task.load("test", eval_limit)
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=cfg.sampling.max_new_tokens, seed=cfg.seed)
    evaluate_ = lambda d: evaluate(trainer.sampler, trainer.task, test, prompt_format=cfg.task.prompt,  # noqa: E731
                                   params=params, out_dir=out / d, model_name=cfg.model, progress=progress)
    before = evaluate_("eval_before") if trainer.step == 0 and not trainer.resume_if_possible() \
        else _summary(out / "eval_before")
    if before is None:  # resumed training but the baseline never finished: not possible to redo
        raise RuntimeError(f"{out}/eval_before/summary.json missing; delete {out} and start again")
    trainer.train(progress=progress)
    final = out / "grpo" / "checkpoints" / f"step-{trainer.step}"
    # The final checkpoint as saved, loaded on its own: its chat template carries the prompt format,
    # so this is what a plain transformers user gets. One eval dir per step: a resumed run that
    # trained further never reuses samples of older weights.
    saved = make_backend("hf", str(final), dtype=trainer.dtype)
    after = evaluate(saved, trainer.task, test, prompt_format=cfg.task.prompt, params=params,
                     out_dir=out / f"eval_after_step-{trainer.step}", model_name=str(final), progress=progress)
    summary = {"before": before["metrics"], "after": after["metrics"], "steps": trainer.step,
               "intervals": {"before": before.get("intervals"), "after": after.get("intervals")},
               "train_wall_s": round(sum(h.get("step_s") or 0 for h in trainer.history), 1),
               "final_checkpoint": str(final)}
    atomic_write_json(out / "summary.json", summary)
    report(out, trainer.history, before, after, cfg, out / f"eval_after_step-{trainer.step}")
    return summary


def _summary(path: Path) -> dict | None:
    return read_json(path / "summary.json")


def report(out: Path, history: list[dict], before: dict, after: dict, cfg: GRPOConfig, after_dir: Path) -> Path:
    steps = [h["step"] for h in history]
    images = [line_plots(out / f"{key}.png", steps, {key: [h.get(key) for h in history]},
                         title, "step", smooth=5) for key, title in PLOTS]
    table = [{"metric": k, "before": before["metrics"].get(k), "after": after["metrics"].get(k)}
             for k in ("pass@1", "format_rate", "nonempty_think_rate")]
    table.append({"metric": "mean completion tokens", "before": before.get("mean_completion_tokens"),
                  "after": after.get("mean_completion_tokens")})
    examples = parts.examples(after_dir / "samples.jsonl", 4)
    sections = [
        {"heading": "Held-out evaluation (greedy, pass@1)", "table": table,
         "text": f"{before['problems']} held-out {cfg.task.name} problems, prompt '{cfg.task.prompt}', "
                 f"before and after {len(history)} GRPO steps."},
        {"heading": "Training curves", "images": images,
         "text": f"{cfg.sampling.prompts_per_step} prompts x {cfg.sampling.group_size} completions per step; "
                 f"advantage {cfg.algo.advantage}, loss {cfg.algo.loss_agg}, rewards {cfg.rewards.weights}."},
        {"heading": "What the model writes now", "pre": examples},
    ]
    return write_html(out / "report.html", "R1-Zero on the embedded model", sections)
