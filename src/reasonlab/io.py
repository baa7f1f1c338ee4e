"""The one home for reading and writing the project's files: JSONL and atomic writes.

Why one module: every command writes JSONL (samples, metrics, labels, traces) and resumes from
it after a crash, and every summary or manifest must never be seen half-written. Three readers
that each handled a torn last line differently were bugs waiting; this is the only one.

- ``iter_jsonl(path)``: every line with its parse error, never raising (for listing bad rows).
- ``read_jsonl(path, strict=True)``: (line number, record) pairs; bad lines raise ``DataError``
  naming ``file:line``. ``strict=False`` is for our own append-only logs: a torn last line (a
  kill mid-write) ends the read instead of raising.
- ``atomic_write_text/json/jsonl``: temp file in the same directory, fsync, rename; a kill at
  any moment leaves the old file or the new one, never half of either.
- ``append_jsonl``: one write per call, whole lines only.
- ``truncate_torn_tail``: cuts a torn last line off an append-only log before appending to it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from reasonlab.errors import DataError

MAX_LINE_BYTES = 8 * 1024 * 1024  # a larger single record is refused before it is parsed


def iter_jsonl(path: str | Path, max_line_bytes: int = MAX_LINE_BYTES
               ) -> Iterator[tuple[int, dict[str, Any] | None, str | None, bool]]:
    """(line number, record or None, error or None, line ended with a newline) for every
    non-blank line, never raising on a bad line: for readers that list every bad line (SFT data)
    as well as for ``read_jsonl``. ``max_line_bytes`` is checked before parsing."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                whole = raw.endswith(b"\n")
                if len(raw) > max_line_bytes:
                    yield lineno, None, f"record of {len(raw):,} bytes is over the {max_line_bytes:,}-byte limit per line", whole
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    yield lineno, None, f"not UTF-8 text ({exc.reason})", whole
                    continue
                except json.JSONDecodeError as exc:
                    yield lineno, None, f"{MALFORMED} ({exc.msg})", whole
                    continue
                if not isinstance(record, dict):
                    yield lineno, None, f"expected a JSON object, got {type(record).__name__}", whole
                    continue
                yield lineno, record, None, whole
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


MALFORMED = "malformed JSON"


def read_jsonl(path: str | Path, required: tuple[str, ...] = (), *, strict: bool = True,
               allow_empty: bool = False, max_line_bytes: int = MAX_LINE_BYTES
               ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) for each non-blank line of ``path``.

    strict: malformed JSON, a non-object line or a missing ``required`` field raises DataError
    with ``path:line``. Not strict: a malformed *last* line (torn by a crash) ends the read
    quietly; a malformed line followed by good ones still raises, since that is damage, not a
    crash. ``max_line_bytes`` is checked before parsing, so a 5 MB line costs nothing.
    """
    count, pending_error = 0, None
    for lineno, record, error, whole in iter_jsonl(path, max_line_bytes):
        if pending_error is not None:  # a bad line that was not the last one
            raise DataError(pending_error)
        if error is not None:
            msg = f"{path}:{lineno}: {error}"
            if strict or whole or not error.startswith(MALFORMED):
                raise DataError(msg)
            pending_error = msg
            continue
        for name in required:
            if name not in record:
                raise DataError(f"{path}:{lineno}: missing field {name!r} "
                                f"(fields present: {', '.join(record) or 'none'})")
        count += 1
        yield lineno, record
    if count == 0 and not allow_empty:
        raise DataError(f"{path}: no records (empty file)")


def read_jsonl_rows(path: str | Path) -> list[dict[str, Any]]:
    """Records of one of our own logs, tolerant of a torn tail; [] when the file is missing."""
    path = Path(path)
    if not path.exists():
        return []
    return [r for _, r in read_jsonl(path, strict=False, allow_empty=True)]


def truncate_torn_tail(path: str | Path) -> int:
    """Cut everything after the last complete JSON line (a kill mid-append); returns bytes kept."""
    path = Path(path)
    if not path.exists():
        return 0
    good = 0
    with path.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            if raw.strip():
                try:
                    json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    break
            good += len(raw)
    if good != path.stat().st_size:
        with path.open("r+b") as f:
            f.truncate(good)
    return good


def append_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    data = "".join(json.dumps(r) + "\n" for r in rows)
    if data:
        with Path(path).open("a", encoding="utf-8") as f:
            f.write(data)
            f.flush()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_json(path: str | Path) -> Any | None:
    """A JSON file we wrote atomically, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def replace_dir(tmp: str | Path, target: str | Path) -> Path:
    """Publish the finished directory ``tmp`` as ``target`` by rename. An existing ``target`` is
    swapped aside first and removed only after the new one is in place, so a kill leaves one of
    them whole under ``target`` (or beside it as ``.NAME.old``), never neither."""
    tmp, target = Path(tmp), Path(target)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


def check_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and prove we can write there, before any work starts.

    Raises DataError naming the path: it is a file, or the directory is read-only."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"--out {path}: is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataError(f"--out {path}: cannot write there ({exc.strerror})") from None
    return path
