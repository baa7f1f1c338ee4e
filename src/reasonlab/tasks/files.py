"""Finding and reading task data files: local paths first, the HF hub only as a last resort.

Search order for a named file (e.g. ``gsm8k_test.jsonl``):
1. the ``data`` option: a file (used as given) or a directory holding the file; an explicit path
   that does not exist is an error, never silently replaced by another source;
2. ``$REASONLAB_DATA`` (a directory);
3. ``../shared/data`` relative to the working directory, then relative to the repository root
   (found by walking up from this file to ``pyproject.toml``);
4. ``/work/shared/data``;
5. the HF hub through ``datasets``, only if that library is installed (it is not a dependency)
   and ``REASONLAB_NO_HUB`` is unset.
Errors say where we looked and how to pass ``--data PATH``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from reasonlab.tasks.errors import DataError

SHARED_DATA = Path("/work/shared/data")
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
    dirs.append(Path.cwd().parent / "shared" / "data")
    root = repo_root()
    if root is not None:
        dirs.append(root.parent / "shared" / "data")
    dirs.append(SHARED_DATA)
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def hub_allowed() -> bool:
    """The hub fallback needs ``datasets`` installed; ``REASONLAB_NO_HUB=1`` turns it off."""
    if os.environ.get("REASONLAB_NO_HUB"):
        return False
    try:
        import datasets  # noqa: F401
    except ImportError:
        return False
    return True


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
                    f"or set REASONLAB_DATA.")


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record); blank lines are skipped; bad lines raise DataError."""
    count = 0
    try:
        with Path(path).open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, "
                                    f"got {type(record).__name__}")
                for name in required:
                    if name not in record:
                        raise DataError(f"{path}:{lineno}: missing field {name!r} "
                                        f"(fields present: {', '.join(record) or 'none'})")
                count += 1
                yield lineno, record
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if count == 0:
        raise DataError(f"{path}: no records (empty file)")
