"""Eval results files: one JSON record per line, appended durably, read back after a crash."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("toolpath.evals.harness")

Record = dict[str, Any]
"""One JSONL line. ``run_one`` returns it (with ``"id"``); the harness adds ``"method"``,
``"seconds"``, ``"error"`` (``None`` or ``"ExcType: message"``) and ``"scores"``."""


def scan_records(path: Path, *, repair: bool) -> list[Record]:
    """Parse a results file; with ``repair``, truncate a torn (unterminated) last line.

    A last line without its newline was cut off by a kill mid-write, unless it parses as a
    complete record, in which case it is kept (and, with ``repair``, terminated).
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    records: list[Record] = []
    end = data.rfind(b"\n") + 1  # bytes up to and including the last newline
    for lineno, raw in enumerate(data[:end].splitlines(), start=1):
        if not raw.strip():
            continue
        rec = _parse(raw)
        if rec is None:
            log.warning("%s: line %d is not a valid record; skipped", path, lineno)
        else:
            records.append(rec)
    tail = data[end:]
    rec = _parse(tail) if tail.strip() else None
    if rec is not None:
        records.append(rec)
    elif tail.strip():
        log.warning("%s: dropping a torn last line (%d bytes)", path, len(tail))
    if repair and tail:
        with path.open("r+b") as f:
            if rec is None:
                f.truncate(end)
            else:
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
    return records


def _parse(raw: bytes) -> Record | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and "id" in obj else None


def load_records(path: Path) -> list[Record]:
    """Every complete record in a results file, skipping a torn last line (file untouched)."""
    return scan_records(Path(path), repair=False)


def _dump(record: Record) -> bytes:
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def rewrite_records(path: Path, records: list[Record]) -> None:
    """Atomically replace ``path`` with ``records``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as f:
        f.writelines(_dump(r) for r in records)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Appender:
    """Appends records one line at a time: write, flush, fsync, under a lock.

    The write runs in a thread, so an fsync (milliseconds) never stalls the event loop and
    the other episodes; the thread lock keeps lines whole, even when the caller is cancelled.
    """

    def __init__(self, path: Path) -> None:
        self._file = path.open("ab")
        self._lock = threading.Lock()

    def _write(self, line: bytes) -> None:
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())

    async def append(self, record: Record) -> None:
        await asyncio.to_thread(self._write, _dump(record))

    def close(self) -> None:
        with self._lock:
            self._file.close()
