"""Finding and reading task data files: local paths first, the HF hub only as a last resort.

Search order for a named file (e.g. ``gsm8k_test.jsonl``):
1. the ``data`` option: a file (used as given) or a directory holding the file; an explicit path
   that does not exist is an error, never silently replaced by another source;
2. ``$REASONLAB_DATA`` (a directory);
3. the evaluation sets shipped inside the package (``reasonlab/data``: GSM8K test, MATH-500);
4. ``../shared/data`` relative to the working directory, then relative to the repository root
   (found by walking up from this file to ``pyproject.toml``), for files we do not ship;
5. the HF hub through ``datasets``, only when asked for with ``REASONLAB_HUB=1``: nothing is
   downloaded at run time unless the user opts in (tests and the demo never reach the network).
Errors say where we looked and how to pass ``--data PATH``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

from reasonlab import io
from reasonlab.tasks.errors import DataError

PACKAGE_DATA = Path(__file__).resolve().parent.parent / "data"
Records = list[tuple[str, dict[str, Any]]]  # (where: "file:line" or "hub:index", record)


def repo_root() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").exists():
            return parent
    return None


def candidate_dirs() -> list[Path]:
    """Directories searched for data files when no ``data`` option is given, in order."""
    dirs = []
    if os.environ.get("REASONLAB_DATA"):
        dirs.append(Path(os.environ["REASONLAB_DATA"]).expanduser())
    dirs.append(PACKAGE_DATA)
    dirs.append(Path.cwd().parent / "shared" / "data")
    root = repo_root()
    if root is not None:
        dirs.append(root.parent / "shared" / "data")
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def hub_allowed() -> bool:
    """The hub fallback is opt-in: ``REASONLAB_HUB=1`` (``REASONLAB_NO_HUB=1`` still wins)."""
    return os.environ.get("REASONLAB_HUB", "") not in ("", "0") and not os.environ.get("REASONLAB_NO_HUB")


def find_file(filename: str, data: str | None) -> tuple[Path | None, list[str]]:
    """(path to ``filename`` or None, the places looked). Raises DataError for a bad ``data``."""
    if data:
        given = Path(data).expanduser()
        if given.is_file():
            return given, [str(given)]
        if not given.exists():
            raise DataError(f"--data {data}: no such file or directory")
        if not (given / filename).is_file():
            raise DataError(f"--data {data}: directory has no {filename}")
        return given / filename, [str(given / filename)]
    looked = []
    for d in candidate_dirs():
        path = d / filename
        looked.append(str(path))
        if path.is_file():
            return path, looked
    return None, looked


def load_records(filename: str, data: str | None, required: tuple[str, ...],
                 hub: Callable[[], list[dict]] | None = None) -> Records:
    """Records of ``filename`` found as in the module docstring, each with its location."""
    path, looked = find_file(filename, data)
    if path is not None:
        return [(f"{path}:{n}", r) for n, r in read_jsonl(path, required)]
    if hub is not None and hub_allowed():
        try:
            rows = [dict(r) for r in hub()]
        except Exception as exc:  # noqa: BLE001 - offline, no such dataset, ...
            looked.append(f"the HF hub ({exc.__class__.__name__}: {str(exc)[:200]})")
        else:
            for i, r in enumerate(rows):
                missing = [f for f in required if f not in r]
                if missing:
                    raise DataError(f"hub record {i} of {filename}: missing field {missing[0]!r}")
            return [(f"hub:{i}", r) for i, r in enumerate(rows)]
    raise DataError(f"cannot find {filename}; looked in: {', '.join(looked)}. "
                    f"Pass --data PATH (a .jsonl file or a directory holding {filename}), "
                    f"or set REASONLAB_DATA" + (" (or REASONLAB_HUB=1 to download it from the HF hub)."
                                            if hub is not None and not hub_allowed() else "."))


MAX_RECORD_BYTES = 1_000_000  # one problem of more than 1 MB is damage, not data


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """``reasonlab.io.read_jsonl`` (file:line errors) with a per-record cap for task data, checked
    before parsing: a 5 MB record is refused at once, not tokenized whole and rejected later."""
    return io.read_jsonl(path, required, max_line_bytes=MAX_RECORD_BYTES)
