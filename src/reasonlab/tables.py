"""Records from the data files people download: JSONL, JSON, parquet and ``datasets`` folders.

Why one reader: the hub's trace sets (Sky-T1, s1K, OpenR1-Math) and benchmarks ship as parquet
or as a ``datasets.save_to_disk`` folder, local sets as JSONL or JSON. SFT data and the ``jsonl``
eval task both read through here, so every kind works everywhere and a bad row is named the
same way: ``file:line`` for JSONL (1-based lines, as an editor shows them), ``file:row N`` for
parquet, JSON lists and ``datasets`` folders (0-based, as ``dataset[N]`` indexes it).

What is read:
- ``*.jsonl``: one object per line (``reasonlab.io.iter_jsonl``: malformed lines are reported,
  not fatal; a line over ``max_line_bytes`` is refused before parsing);
- ``*.json``: a list of objects (or JSON lines under a ``.json`` name);
- ``*.parquet``: streamed in record batches through pyarrow (``datasets``' own dependency), so a
  220K-row trace set is never held whole;
- a ``save_to_disk`` folder (``state.json`` + arrow files) through ``datasets.load_from_disk``,
  memory-mapped; a ``DatasetDict`` folder reads its ``train`` split (or its only split);
- any other folder: every file of the kinds above directly inside it, sorted by name (so the
  row order, and with it an exact resume, does not depend on the file system).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from reasonlab.errors import DataError
from reasonlab.io import MAX_LINE_BYTES, iter_jsonl

SUFFIXES = (".jsonl", ".json", ".parquet")
Row = tuple[str, dict[str, Any] | None, str | None]  # (where, record or None, error or None)


def is_dataset_dir(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file())


def data_sources(path: str | Path) -> list[Path]:
    """The files (or ``datasets`` folders) that ``path`` stands for, in reading order."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_file() or is_dataset_dir(path):
        return [path]
    found = sorted(p for p in path.iterdir()
                   if (p.is_file() and p.suffix in SUFFIXES) or is_dataset_dir(p))
    if not found:
        raise DataError(f"{path}: directory has no *.jsonl, *.json or *.parquet files "
                        f"and is not a datasets save_to_disk folder")
    return found


def iter_rows(source: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Row]:
    """Every record of one source with its location; bad records come with an error instead of
    raising, so callers can list them all. A source that cannot be read at all raises DataError."""
    if source.is_dir():
        yield from _dataset_rows(source)
    elif source.suffix == ".parquet":
        yield from _parquet_rows(source)
    elif source.suffix == ".json":
        yield from _json_rows(source, max_line_bytes)
    else:
        for lineno, record, error, _ in iter_jsonl(source, max_line_bytes):
            yield f"{source}:{lineno}", record, error


def read_records(path: str | Path, required: tuple[str, ...] = (), max_line_bytes: int = MAX_LINE_BYTES
                 ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) of every record under ``path``; the first bad record, or one missing a
    ``required`` field, raises DataError naming it. An empty source raises too."""
    count = 0
    for source in data_sources(path):
        for where, record, error in iter_rows(source, max_line_bytes):
            if error is not None:
                raise DataError(f"{where}: {error}")
            missing = [f for f in required if f not in record]
            if missing:
                raise DataError(f"{where}: missing field {missing[0]!r} "
                                f"(fields present: {', '.join(record) or 'none'})")
            count += 1
            yield where, record
    if count == 0:
        raise DataError(f"{path}: no records (empty dataset)")


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable parquet file ({_first_line(exc)})") from None
    row = 0
    for batch in pf.iter_batches(batch_size=256):
        for record in batch.to_pylist():
            yield f"{path}:row {row}", record, None
            row += 1


def _json_rows(path: Path, max_line_bytes: int) -> Iterator[Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON lines under a .json name
            for lineno, record, error, _ in iter_jsonl(path, max_line_bytes):
                yield f"{path}:{lineno}", record, error
            return
        raise DataError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))  # {"data": [...]}, {"train": [...]}
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    for i, record in enumerate(data):
        if isinstance(record, dict):
            yield f"{path}:row {i}", record, None
        else:
            yield f"{path}:row {i}", None, f"expected a JSON object, got {type(record).__name__}"


def _dataset_rows(path: Path) -> Iterator[Row]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - damaged or foreign folder: name it
        raise DataError(f"{path}: cannot load the datasets folder ({_first_line(exc)})") from None
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds)
        if "train" not in ds and len(splits) != 1:
            raise DataError(f"{path}: a DatasetDict with splits {', '.join(splits)}; "
                            f"pass {path}/<split> to choose one")
        split = "train" if "train" in ds else splits[0]
        ds, path = ds[split], path / split
    for i, record in enumerate(ds):
        yield f"{path}:row {i}", dict(record), None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else exc.__class__.__name__
