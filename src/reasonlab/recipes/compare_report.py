"""The comparison's report: one table (accuracy, format, training and inference compute, wall
time, money), accuracy against total compute at ``queries`` answered problems, total compute
against the number of queries, and where each inference-time point's per-query cost overtakes a
trained model's one-off cost (the crossing points).

Total compute of a row at q queries: training FLOPs (+ a teacher's training this run made) +
q x inference FLOPs per answered problem. Money: ``price_per_hour`` x (training stages' wall
time + q x wall time per answered problem), when a price is given.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from reasonlab.io import atomic_write_json
from reasonlab.recipes.compare_methods import UNTRAINED, Row


def total(row: Row, queries: int) -> float | None:
    if row.train_flops is None or row.infer_flops is None:
        return None
    return row.train_flops + row.teacher_flops + queries * row.infer_flops


def hours(row: Row, queries: int) -> float | None:
    if row.infer_wall_s is None:
        return None
    return (sum(row.stage_wall_s.values()) + queries * row.infer_wall_s) / 3600


def crossings(rows: list[Row]) -> list[dict[str, Any]]:
    """For each inference-time point and each trained model that is cheaper per query: the
    number of queries beyond which the point costs more in total."""
    out = []
    trained = [r for r in rows if r.method not in UNTRAINED and total(r, 0) is not None]
    for s in (r for r in rows if r.method == "scaling" and r.infer_flops is not None):
        for m in trained:
            if s.infer_flops > m.infer_flops:
                q = (total(m, 0) - total(s, 0)) / (s.infer_flops - m.infer_flops)
                out.append({"inference-time": s.label, "accuracy": s.accuracy, "trained": m.label,
                            "trained accuracy": m.accuracy, "costs more beyond (queries)": _g(max(q, 0.0))})
    return out


def table(rows: list[Row], queries: int, price: float) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        line = {"method": r.method, "model / point": r.label,
                "pass@1": "" if r.accuracy is None else round(r.accuracy, 3),
                "95% CI": "" if not r.ci95 else f"[{r.ci95[0]:.2f}, {r.ci95[1]:.2f}]",
                "format": "" if r.format_rate is None else round(r.format_rate, 3),
                "plain transformers pass@1 / format": "" if r.plain_accuracy is None
                else f"{r.plain_accuracy:.3f} / {r.plain_format_rate:.3f}",
                "train FLOPs": "?" if r.train_flops is None else _g(r.train_flops + r.teacher_flops),
                "infer FLOPs / problem": "" if r.infer_flops is None else _g(r.infer_flops),
                f"total FLOPs @ {queries}": _g(total(r, queries)),
                "train wall s": ", ".join(f"{k} {v:.0f}" for k, v in r.stage_wall_s.items()) or "0",
                "infer s / problem": "" if r.infer_wall_s is None else f"{r.infer_wall_s:.3g}"}
        h = hours(r, queries)
        if price > 0:
            line[f"money @ {queries}"] = "" if h is None else f"{h * price:.2f}"
        else:
            line[f"machine hours @ {queries}"] = "" if h is None else f"{h:.3g}"
        line["note"] = r.note
        out.append(line)
    return out


def write_report(cfg, out: Path, rows: list[Row]) -> dict[str, Any]:
    from reasonlab.eval.report import write_html

    q, price = cfg.queries, cfg.price_per_hour
    cross = crossings(rows)
    summary = {"queries": q, "price_per_hour": price, "model": cfg.model, "task": cfg.task.name,
               "eval": {"split": cfg.eval.split, "limit": cfg.eval.limit},
               "rows": [asdict(r) | {"total_flops": total(r, q)} for r in rows], "crossings": cross}
    atomic_write_json(out / "summary.json", summary)
    rows_table = table(rows, q, price)
    sections = [
        {"heading": "Methods side by side", "table": rows_table,
         "text": f"{cfg.model} on {cfg.task.name}, every row measured on the same {cfg.eval.limit} held-out "
                 f"problems ({cfg.eval.split} split); 95% CI: bootstrap over problems. Training FLOPs are "
                 f"counted from the tokens each stage processed: 6N per trained token, 2N per generated, "
                 f"prefilled or scored token, plus attention (docs/DESIGN.md). The total adds {q} answered "
                 f"problems at the row's inference cost per problem."},
        {"heading": "Accuracy against total compute", "images": plots(out, rows, q)},
        {"heading": "Where inference-time scaling overtakes training", "table": cross,
         "text": "Each inference-time point against each trained model that answers for less compute: "
                 "past this many queries the point's per-query cost has outgrown the model's one-off "
                 "training." if cross else "No inference-time point costs more per query than a trained model."},
        {"heading": "Per-method reports",
         "text": "Each method's own stages and report: " + ", ".join(
             f"{m}/report.html" for m in cfg.methods if (out / m / "report.html").exists()) + "."},
    ]
    write_html(out / "report.html", "Four ways to make a model reason, at equal compute", sections)
    summary["table"] = rows_table
    return summary


def plots(out: Path, rows: list[Row], queries: int) -> list[Path]:
    from reasonlab.eval.report import xy_plot

    acc: dict[str, list] = {}
    labels: dict[str, list[str]] = {}
    for r in rows:
        x = total(r, queries)
        if x is None or r.accuracy is None:
            continue
        key = f"scaling: {r.label.split()[0]}" if r.method == "scaling" else r.label
        lo, hi = r.ci95 or (None, None)
        acc.setdefault(key, []).append((x, r.accuracy, lo, hi))
        labels.setdefault(key, []).append(r.label.split(" ", 1)[1] if r.method == "scaling" else "")
    images = [xy_plot(out / "plots" / "accuracy_vs_compute.png", acc,
                      f"held-out pass@1 against total compute ({queries} queries answered, 95% CI)",
                      "FLOPs (training + inference)", "pass@1", logx=True, point_labels=labels)]
    grid = sorted({max(1, round(10 ** (k / 8))) for k in range(0, 8 * len(str(queries * 10)))})
    grid = [g for g in grid if g <= queries * 10]
    cost: dict[str, list] = {}
    best: dict[str, Row] = {}
    for r in rows:
        if total(r, 0) is None or r.accuracy is None:
            continue
        key = f"scaling: {r.label.split()[0]}" if r.method == "scaling" else r.label
        if key not in best or r.accuracy > best[key].accuracy:
            best[key] = r
    for key, r in best.items():
        name = f"{r.label} ({r.accuracy:.2f})" if r.method == "scaling" else f"{key} ({r.accuracy:.2f})"
        cost[name] = [(g, total(r, g), None, None) for g in grid]
    images.append(xy_plot(out / "plots" / "compute_vs_queries.png", cost,
                          "total compute against queries answered\n(pass@1 in brackets; each strategy's best point)",
                          "queries answered", "FLOPs", logx=True, logy=True, markers=False))
    return images


def _g(x: float | None) -> str:
    return "" if x is None else f"{x:.3g}"
