"""The stage runner of multi-stage recipes: one directory per stage, skipped when done, resumed
when interrupted, redone when what it depends on changed (nanochat's chained stage scripts, as
one resumable command).

Each stage ``OUT/<name>/`` gets:
- ``started.json`` (its key) when its work begins, so a restart knows whether the partial work
  in the directory belongs to the same settings (resume it) or to other ones (wipe, start again);
- ``manifest.json``, written atomically when it finishes: status, key, config and its hash,
  inputs (file/directory paths with content hashes, or the previous stage's key), outputs (paths
  with content hashes), metrics, wall time.

A stage's key hashes its config, its inputs and the key of the stage before it, so changing one
stage's config (or an input file's content) redoes that stage and every later one, in order, as
the run the user asked for would have; earlier stages are kept. A stage's ``run(dir)`` must itself
resume from what is in ``dir`` (trainers from their checkpoints, ``generate`` from raw.jsonl, eval
from samples.jsonl): a ``kill -9`` anywhere followed by the same command ends where an uninterrupted
run ends.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonlab.config import to_dict
from reasonlab.io import atomic_write_json, check_writable_dir, read_json


def sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def content_hash(path: str | Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative names and bytes), in name order."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def describe_input(value: Any) -> dict[str, Any]:
    """An input as it enters a key: an earlier stage's output as recorded in its manifest
    (``ref``), a path that exists by content, anything else (a model name, a URL) as its value."""
    if isinstance(value, dict) and "hash" in value:
        return value
    if isinstance(value, Path) or (isinstance(value, str) and value and Path(value).exists()):
        return {"path": str(value), "hash": content_hash(value)}
    return {"value": value}


@dataclass
class Result:
    """What a stage's ``run`` returns: named output paths (inside its dir) and metrics."""

    outputs: dict[str, Path]
    metrics: dict[str, Any]


class Stages:
    """Runs stages in order under ``out``; ``say`` prints one line per decision."""

    def __init__(self, out: str | Path, say: Callable[[str], None] = print):
        self.out = check_writable_dir(out)
        self.say = say
        self.prev_key = ""
        self.manifests: dict[str, dict[str, Any]] = {}

    def run(self, name: str, config: Any, inputs: dict[str, Any], fn: Callable[[Path], Result],
            reuse: bool = False) -> dict[str, Any]:
        """Run (or skip, or resume) stage ``name``; returns its manifest.

        ``reuse``: the stage's own files are keyed by its settings (``generate``'s raw.jsonl), so
        when only its config changed they are kept and the stage reruns over them (a changed filter
        re-requests nothing); otherwise a changed stage starts from an empty directory."""
        folder = self.out / name
        cfg = to_dict(config)
        ins = {k: describe_input(v) for k, v in inputs.items()}
        key = sha({"config": cfg, "inputs": ins, "after": self.prev_key})
        done = read_json(folder / "manifest.json")
        if isinstance(done, dict) and done.get("status") == "done" and done.get("key") == key:
            missing = [str(self.output(done, k)) for k in done["outputs"] if not self.output(done, k).exists()]
            if not missing:
                self.say(f"{name}: done, skipped")
                return self._finish(name, done)
            self.say(f"{name}: output {missing[0]} is missing; redoing this stage and every later one")
            shutil.rmtree(folder)
        started = read_json(folder / "started.json")
        if folder.exists() and any(folder.iterdir()):
            old = done if isinstance(done, dict) else started
            if isinstance(started, dict) and started.get("key") == key and not done:
                self.say(f"{name}: resuming")
            elif reuse and isinstance(old, dict) and old.get("inputs") == ins:
                self.say(f"{name}: {self._why(old, cfg, ins)} changed since the last run; redoing this stage "
                         f"(reusing its samples) and every later one")
                (folder / "manifest.json").unlink(missing_ok=True)
            else:
                self.say(f"{name}: {self._why(old, cfg, ins)} changed since the last run; redoing this stage "
                         f"and every later one")
                shutil.rmtree(folder)
        else:
            self.say(f"{name}: starting")
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "started.json", {"key": key, "config": cfg, "inputs": ins})
        t0 = time.perf_counter()
        result = fn(folder)
        manifest = {"stage": name, "status": "done", "key": key, "config_hash": sha(cfg), "config": cfg,
                    "inputs": ins, "after": self.prev_key or None,
                    "outputs": {k: {"path": self._relative(p), "hash": content_hash(p)}
                                for k, p in result.outputs.items()},
                    "metrics": result.metrics, "wall_s": round(time.perf_counter() - t0, 2)}
        atomic_write_json(folder / "manifest.json", manifest)
        self.say(f"{name}: finished")
        return self._finish(name, manifest)

    def output(self, manifest: dict[str, Any], name: str) -> Path:
        """A finished stage's output path by name (recorded relative to the run directory, so a
        moved or copied run directory still finds its own files)."""
        path = Path(manifest["outputs"][name]["path"])
        return path if path.is_absolute() else self.out / path

    def _relative(self, path: Path) -> str:
        path = Path(path).resolve()
        return str(path.relative_to(self.out.resolve())) if path.is_relative_to(self.out.resolve()) else str(path)

    def _finish(self, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        self.prev_key = manifest["key"]
        self.manifests[name] = manifest
        return manifest

    @staticmethod
    def _why(old: dict | None, cfg: dict, ins: dict) -> str:
        if not isinstance(old, dict):
            return "its record"
        if old.get("config") != cfg:
            return "its config"
        if old.get("inputs") != ins:
            return "its inputs"
        return "an earlier stage"


def ref(manifest: dict[str, Any], name: str) -> dict[str, str]:
    """A finished stage's output as a later stage's input: its recorded path and hash (a
    checkpoint is not hashed again by every stage that reads it)."""
    return dict(manifest["outputs"][name])
