"""HTML reports with matplotlib plots: what people look at after a run.

A report is a list of sections (heading, text, images, table) rendered to one ``report.html``
next to its PNGs, so the directory can be copied or served as is.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

import matplotlib

from reasonlab.io import atomic_write_text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def line_plots(path: str | Path, x: Sequence[float], series: dict[str, Sequence[float | None]],
               title: str, xlabel: str, ylabel: str = "", smooth: int = 1) -> Path:
    """One chart with a line per series (None gaps skipped); ``smooth`` > 1 adds a moving mean."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    for label, ys in series.items():
        pts = [(xi, yi) for xi, yi in zip(x, ys) if yi is not None]
        if not pts:
            continue
        xs, vs = zip(*pts)
        if smooth > 1 and len(vs) >= smooth:
            raw = ax.plot(xs, vs, alpha=0.3)[0]
            sm = [sum(vs[max(0, i - smooth + 1):i + 1]) / len(vs[max(0, i - smooth + 1):i + 1])
                  for i in range(len(vs))]
            ax.plot(xs, sm, label=label, color=raw.get_color())
        else:
            ax.plot(xs, vs, marker="o" if len(vs) < 30 else None, label=label)
    return _finish(fig, ax, path, title, xlabel, ylabel, legend=len(series) > 1)


def band_plot(path: str | Path, series: dict[str, Sequence[tuple[float, float, float | None, float | None]]],
              title: str, xlabel: str, ylabel: str = "", *, logx: bool = False, hline: float | None = None,
              point_labels: dict[str, Sequence[str]] | None = None) -> Path:
    """One chart, a line per series with its confidence band shaded: each point is
    ``(x, y, lo, hi)``; a point whose ``lo``/``hi`` is None gets no band there. Why a separate
    function: ``line_plots`` shares one x axis across series, while curves of accuracy against
    tokens have their own x per series. ``hline`` draws a reference level (0 for gains)."""
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=110)
    for label, points in series.items():
        if not points:
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        line = ax.plot(xs, ys, marker="o", label=label)[0]
        banded = [p for p in points if p[2] is not None and p[3] is not None]
        if banded:
            ax.fill_between([p[0] for p in banded], [p[2] for p in banded], [p[3] for p in banded],
                            color=line.get_color(), alpha=0.18, linewidth=0)
        for (x, y, *_), text in zip(points, (point_labels or {}).get(label, [])):
            ax.annotate(text, (x, y), fontsize=7)
    if hline is not None:
        ax.axhline(hline, color="0.4", linewidth=0.8, linestyle="--")
    if logx:
        ax.set_xscale("log", base=2)
    return _finish(fig, ax, path, title, xlabel, ylabel, legend=len(series) > 1)


def xy_plot(path: str | Path, series: dict[str, Sequence[tuple[float, float, float | None, float | None]]],
            title: str, xlabel: str, ylabel: str = "", *, logx: bool = False, logy: bool = False,
            markers: bool = True, point_labels: dict[str, Sequence[str]] | None = None) -> Path:
    """One chart, a line per series with error bars: each point ``(x, y, lo, hi)`` (no bar where
    ``lo``/``hi`` is None), axes on a log10 scale when asked. Why beside ``band_plot``: a series
    may be one point (a trained model), which a shaded band cannot show."""
    fig, ax = plt.subplots(figsize=(7, 4.4), dpi=110)
    for label, points in series.items():
        if not points:
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        err = [[max(0.0, p[1] - p[2]) if p[2] is not None else 0.0 for p in points],
               [max(0.0, p[3] - p[1]) if p[3] is not None else 0.0 for p in points]]
        ax.errorbar(xs, ys, yerr=err if any(map(any, err)) else None, marker="o" if markers else None,
                    markersize=4, capsize=3, label=label)
        for (x, y, *_), text in zip(points, (point_labels or {}).get(label, [])):
            ax.annotate(text, (x, y), fontsize=7)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    return _finish(fig, ax, path, title, xlabel, ylabel, legend=len(series) > 1)


def _finish(fig, ax, path: str | Path, title: str, xlabel: str, ylabel: str, legend: bool) -> Path:
    """Labels, grid and legend every chart here shares; save and close the figure."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def write_html(path: str | Path, title: str, sections: list[dict[str, Any]]) -> Path:
    """Sections: ``{"heading", "text", "images": [png paths], "table": [row dicts], "pre"}``."""
    path = Path(path)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.get('heading', ''))}</h2>")
        if s.get("text"):
            parts.append(f"<p>{html.escape(s['text'])}</p>")
        if s.get("table"):
            parts.append(_table(s["table"]))
        for img in s.get("images", []):
            rel = Path(img).resolve().relative_to(path.parent.resolve()) \
                if Path(img).resolve().is_relative_to(path.parent.resolve()) else Path(img)
            parts.append(f'<img src="{html.escape(str(rel))}" alt="{html.escape(Path(img).stem)}">')
        if s.get("pre"):
            parts.append(f"<pre>{html.escape(s['pre'])}</pre>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:4px 8px;text-align:right}img{max-width:100%;display:block;margin:1em 0}"
             "pre{background:#f6f6f6;padding:1em;overflow-x:auto;white-space:pre-wrap}")
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write_text(path, doc)
