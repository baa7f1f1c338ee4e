"""Finding and reading task data files: local paths first, the HF hub only when a user is online.

Search order for a named file: the ``data`` option (a file, or a directory holding the file),
``$REASONLAB_DATA``, ``../shared/data`` next to the working directory and next to the repository
root, then the hub through ``datasets`` if it is installed. Errors say where we looked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from reasonlab.tasks.errors import DataError


def candidate_dirs(data: str | None) -> list[Path]:
    dirs = []
    if data:
        dirs.append(Path(data).expanduser())
    if os.environ.get("REASONLAB_DATA"):
        dirs.append(Path(os.environ["REASONLAB_DATA"]).expanduser())
    dirs.append(Path.cwd().parent / "shared" / "data")
    dirs.append(Path.cwd() / "shared" / "data")
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").exists():
            dirs.append(parent.parent / "shared" / "data")
            break
    return dirs


def find_file(filename: str, data: str | None, hub: Callable[[], list[dict]] | None = None
              ) -> Path | list[dict]:
    """A local path to ``filename``, or records from ``hub()`` when nothing local exists."""
    if data:  # an explicit path is used as given, never silently replaced
        given = Path(data).expanduser()
        if given.is_file():
            return given
        if not given.exists():
            raise DataError(f"--data {data}: no such file or directory")
        if not (given / filename).is_file():
            raise DataError(f"--data {data}: directory has no {filename}")
        return given / filename
    looked = []
    for d in candidate_dirs(data):
        path = d / filename
        looked.append(str(path))
        if path.is_file():
            return path
    if hub is not None:
        try:
            import datasets  # noqa: F401
        except ImportError:
            pass
        else:
            try:
                return hub()
            except Exception as exc:  # noqa: BLE001 - offline, no such dataset...
                looked.append(f"the HF hub ({exc.__class__.__name__}: {exc})")
    raise DataError(f"cannot find {filename}; looked in: {', '.join(looked)}. "
                    f"Pass --data PATH (a .jsonl file or a directory holding {filename}).")


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record); malformed lines and missing fields raise DataError."""
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object")
            for field in required:
                if field not in record:
                    raise DataError(f"{path}:{lineno}: missing field {field!r} "
                                    f"(fields present: {', '.join(record)})")
            yield lineno, record
