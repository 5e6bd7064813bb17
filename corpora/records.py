"""Reading record files lazily: JSONL, JSON (an array or one object per line) and Parquet, a file
or a folder of them, plus the hub datasets by name; and the errors every data command reports.

Each record comes out as a `RawRecord` that says where it came from ("train.jsonl line 12",
"allenai/WildChat-1M row 4031") so that validation errors can name it. A line that is not valid
JSON does not stop the stream: it comes out with `data=None` and the parse error in `problem`,
and the caller decides whether to skip it (counted) or stop (strict mode). A file that cannot be
read at all raises `DataError` with a one-line message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator

#: file suffixes the readers understand
SUFFIXES = (".jsonl", ".json", ".parquet")


class DataError(Exception):
    """A data problem a person must fix (unreadable file, wrong schema); the message says which
    file or record and which field. Commands print it on one line, without a traceback."""


class SchemaError(DataError):
    """One record does not match the expected schema."""

    def __init__(self, where: str, field: str, problem: str):
        self.where, self.field, self.problem = where, field, problem
        super().__init__(f"{where}: field '{field}' {problem}")


@dataclass
class RawRecord:
    """One record as read, before validation. `data` is None when the line was not valid JSON."""

    where: str
    data: dict[str, Any] | None
    problem: str | None = None
    index: int = 0


def json_default(value: Any) -> Any:
    """json.dumps fallback for values the hub datasets hold (timestamps)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(record: dict[str, Any]) -> str:
    """One record as a JSONL line (non-ASCII kept, timestamps as ISO strings)."""
    return json.dumps(record, ensure_ascii=False, default=json_default)


def record_files(path: Path) -> list[Path]:
    """The record files of a path: itself, or a folder's files with a known suffix, sorted."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise DataError(f"{path}: folder holds no {'/'.join(SUFFIXES)} files")
        return files
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix not in SUFFIXES:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; expected one of "
                        f"{', '.join(SUFFIXES)}")
    return [path]


def iter_records(path: str | Path) -> Iterator[RawRecord]:
    """Every record of a file or folder, streamed (JSON arrays are read whole)."""
    index = 0
    for file in record_files(Path(path)):
        reader = _iter_parquet if file.suffix == ".parquet" else _iter_json
        for raw in reader(file):
            raw.index = index
            index += 1
            yield raw


def _iter_json(file: Path) -> Iterator[RawRecord]:
    try:
        with file.open("r", encoding="utf-8") as handle:
            if handle.read(4096).lstrip().startswith("["):
                handle.seek(0)
                yield from _iter_json_array(file, handle.read())
                return
            handle.seek(0)
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield _parse_line(f"{file.name} line {number}", line)
    except UnicodeDecodeError as err:
        raise DataError(f"{file}: not UTF-8 text ({err})") from None
    except OSError as err:
        raise DataError(f"{file}: cannot read ({err})") from None


def _parse_line(where: str, line: str) -> RawRecord:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        return RawRecord(where, None, f"not valid JSON ({err.msg} at column {err.colno})")
    if not isinstance(data, dict):
        return RawRecord(where, None, f"expected a JSON object, got {type(data).__name__}")
    return RawRecord(where, data)


def _iter_json_array(file: Path, text: str) -> Iterator[RawRecord]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{file}: not valid JSON ({err.msg} at line {err.lineno})") from None
    for number, item in enumerate(items):
        where = f"{file.name} item {number}"
        if isinstance(item, dict):
            yield RawRecord(where, item)
        else:
            yield RawRecord(where, None, f"expected a JSON object, got {type(item).__name__}")


def _iter_parquet(file: Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
    except Exception as err:  # pyarrow raises several types for a bad file
        raise DataError(f"{file}: cannot read as Parquet ({err})") from None
    row = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for data in batch.to_pylist():
            yield RawRecord(f"{file.name} row {row}", data)
            row += 1


def iter_hub(name: str, split: str, config: str | None = None) -> Iterator[RawRecord]:
    """Records of a hub dataset (needs the `datasets` package and access to the hub)."""
    try:
        import datasets
    except ImportError:
        raise DataError("reading a hub dataset needs the `datasets` package: "
                        "pip install datasets") from None
    try:
        dataset = datasets.load_dataset(name, config, split=split)
    except Exception as err:  # network, auth and naming errors all end here
        raise DataError(f"{name}: not a local file or folder, and cannot load it from the hub "
                        f"({type(err).__name__}: {err})") from None
    for index, data in enumerate(dataset):
        yield RawRecord(f"{name} row {index}", dict(data), index=index)


def looks_like_hub_name(source: str) -> bool:
    """True for "owner/name" strings that are not an existing local path or a record file."""
    parts = source.split("/")
    return (len(parts) == 2 and all(parts) and not Path(source).exists()
            and Path(source).suffix not in SUFFIXES)
