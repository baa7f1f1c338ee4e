"""Atomic, verified checkpoints that resume exactly.

``OUT/checkpoints/step-N/`` holds the model in plain HF format (LoRA merged, so transformers loads
it alone, with a chat template that reproduces the run's prompt format), ``trainer_state.pt``
(optimizer, scheduler, RNG states, step, data position, trainable weights when LoRA is used,
metric history) and, written last, ``manifest.json`` (every file's size and SHA-256).

Why both an atomic rename and a manifest: the rename means a kill leaves either the old or the
new checkpoint, never half; the manifest catches damage after the fact (a disk filling up, a
copy cut short, a ``truncate``), which a rename cannot. ``latest_intact`` verifies checkpoints
newest first and falls back to the newest one that is whole, saying which it skipped and why.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from reasonlab.io import replace_dir

LOW_DISK = 2**30  # below 1 GiB free, a failed checkpoint write is reported as a full disk

STATE_FILE = "trainer_state.pt"
MANIFEST = "manifest.json"


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[str(p.relative_to(folder))] = {"size": p.stat().st_size, "sha256": _sha256(p)}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1))


def verify(folder: Path) -> str | None:
    """None when the checkpoint is whole, else what is wrong with it (one phrase)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return "manifest.json is missing"
    except (OSError, ValueError, KeyError, TypeError):
        return "manifest.json is unreadable"
    for name, meta in manifest.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != meta["size"]:
            return f"{name} has {path.stat().st_size:,} bytes, the manifest says {meta['size']:,}"
        if _sha256(path) != meta["sha256"]:
            return f"{name} does not match its SHA-256 in the manifest"
    return None


def save_checkpoint(root: Path, step: int, write_model: Callable[[Path], None], state: dict[str, Any],
                    keep_last: int = 2) -> Path:
    """Write ``root/step-{step}`` atomically: ``write_model(dir)`` writes the model files into a
    new dir inside a temp dir, the trainer state and the manifest follow, then one rename
    publishes it."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".step-{step}."))
    try:
        staging = tmp / "model"  # writers may replace their target dir wholesale: give them their own
        write_model(staging)
        for item in staging.iterdir():
            os.replace(item, tmp / item.name)
        staging.rmdir()
        torch.save(state, tmp / STATE_FILE)
        write_manifest(tmp)
        replace_dir(tmp, final)  # a re-save of the same step (resumed run) swaps, never deletes first
    except (OSError, RuntimeError) as exc:
        # a full disk surfaces from torch.save as "unexpected pos N vs M": say what happened
        free = shutil.disk_usage(root).free
        if free < LOW_DISK:
            raise OSError(errno.ENOSPC, f"checkpoint step-{step} not written: {root} has {free / 2**20:.0f} MiB "
                                        f"free ({exc}); free space and rerun the same command to resume "
                                        f"from the last checkpoint") from exc
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    older = [p for p in list_checkpoints(root) if _step(p) < step]
    for old in older[: max(0, len(older) - (keep_last - 1))] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _step(path: Path) -> int:
    return int(path.name.split("-")[1])


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint to ``step-N.damaged`` (kept for inspection, never deleted),
    so that it neither shadows the checkpoint resumed from nor counts towards ``keep_last``."""
    target = path.with_name(path.name + ".damaged")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(path, target)
    return target


def list_checkpoints(root: Path) -> list[Path]:
    """``step-N`` folders (published ones only: temp dirs start with a dot), oldest first."""
    if not root.exists():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := re.fullmatch(r"step-(\d+)", p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_intact(root: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """(newest checkpoint that verifies, [(damaged checkpoint, why), ...] skipped on the way)."""
    skipped = []
    for path in reversed(list_checkpoints(root)):
        problem = verify(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped


def latest_checkpoint(root: Path) -> Path | None:
    return latest_intact(root)[0]


def load_state(path: Path) -> dict[str, Any]:
    return torch.load(path / STATE_FILE, weights_only=False)
