"""Experiment trackers (TensorBoard, Weights & Biases, MLflow, trackio) through accelerate.

A run names its trackers in ``report_to``: a comma list of registered names, ``none``, or an
import path ``"pkg.module:factory"``. Every tracker is built by a factory with one signature,
``factory(project, run_name, out_dir) -> accelerate.tracking.GeneralTracker``, so the trainer
hands accelerate ready instances (``Accelerator(log_with=...)``) and never knows which ones they
are. A tracker whose package is not installed is dropped with a one-line notice; the run goes
on, and ``metrics.jsonl`` is written either way.

Where each one writes: TensorBoard to ``<out>/tb``; wandb to ``<out>/wandb`` under the project
``$WANDB_PROJECT`` or ``reasonlab`` (``WANDB_MODE=offline`` works with no network; ``wandb sync``
uploads later); MLflow to its tracking URI (``$MLFLOW_TRACKING_URI``, default ``./mlruns``) in
the experiment ``$MLFLOW_EXPERIMENT_NAME`` or ``reasonlab``; trackio to its local database,
project ``reasonlab``. The run is named after the run directory.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from reasonlab.config import ConfigError, require
from reasonlab.registry import Registry, RegistryError

log = logging.getLogger(__name__)
PROJECT = "reasonlab"


@dataclass(frozen=True)
class TrackerKind:
    package: str  # what to pip install
    available: Callable[[], bool]
    make: Callable[[str, str, Path], Any]  # (project, run_name, out_dir) -> GeneralTracker


TRACKERS: Registry[TrackerKind] = Registry("tracker")


def _kind(name: str, package: str, available: str, make: Callable[[str, str, Path], Any]) -> None:
    def is_available() -> bool:
        import accelerate.utils

        return getattr(accelerate.utils, available)()

    TRACKERS.register(name)(TrackerKind(package, is_available, make))


def _tensorboard(project: str, run: str, out: Path):
    from accelerate.tracking import TensorBoardTracker

    return TensorBoardTracker("tb", str(out))


def _wandb(project: str, run: str, out: Path):
    from accelerate.tracking import WandBTracker

    return WandBTracker(os.environ.get("WANDB_PROJECT", project), name=run, dir=str(out))


def _mlflow(project: str, run: str, out: Path):
    from accelerate.tracking import MLflowTracker

    return MLflowTracker(experiment_name=project, run_name=run)


def _trackio(project: str, run: str, out: Path):
    from accelerate.tracking import TrackioTracker

    return TrackioTracker(project, name=run)


_kind("tensorboard", "tensorboard", "is_tensorboard_available", _tensorboard)
_kind("wandb", "wandb", "is_wandb_available", _wandb)
_kind("mlflow", "mlflow", "is_mlflow_available", _mlflow)
_kind("trackio", "trackio", "is_trackio_available", _trackio)


def names(report_to: str) -> list[str]:
    """``"tensorboard,wandb"`` -> ``["tensorboard", "wandb"]``; ``"none"`` -> ``[]``."""
    items = [s.strip() for s in report_to.split(",") if s.strip()]
    return [] if items == ["none"] else items


def check(report_to: str, key: str = "report_to") -> None:
    """For configs' ``check()``: every name known (or an import path), ``none`` alone."""
    items = [s.strip() for s in report_to.split(",") if s.strip()]
    require(bool(items), key, "empty; use none for no tracker")
    require(items == ["none"] or "none" not in items, key, "none cannot be combined with trackers")
    for name in names(report_to):
        if name not in TRACKERS and ":" not in name:
            raise ConfigError(f"{key}: unknown tracker {name!r}; valid: {', '.join(TRACKERS.names())}, "
                              "none (or an import path 'package.module:factory')")


def build(report_to: str, out: Path, notice: Callable[[str], None] = log.warning) -> list[Any]:
    """The tracker instances for ``Accelerator(log_with=...)``; missing packages noticed, skipped."""
    run_name, trackers = Path(out).resolve().name, []
    for name in names(report_to):
        if name in TRACKERS:
            kind = TRACKERS.get(name)
            if not kind.available():
                notice(f"report_to: {name} is not installed (pip install {kind.package}); "
                       "training goes on without it")
                continue
            trackers.append(kind.make(PROJECT, run_name, Path(out)))
        else:
            try:
                factory = TRACKERS.get(name)  # an import path
            except RegistryError as exc:
                raise ConfigError(f"report_to: {exc}") from None
            trackers.append(factory(PROJECT, run_name, Path(out)))
    return trackers


def flat_config(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"optim.lr": 1e-5, ...}`` with scalar values (what TensorBoard's
    hparams and MLflow's params accept); lists, None and other values become their text."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_config(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    """What a tracker plots: the numbers of a metrics row, without the step itself."""
    return {k: v for k, v in metrics.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
