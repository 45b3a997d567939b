"""`DIR/batch.csv`: one row per video of every batch run into DIR, merged across shards and re-runs.

Several machines (shards, a cluster's driver) may update the same file at once: each update
takes an exclusive lock on `DIR/.batch.csv.lock`, re-reads the file, merges its rows in and
renames a complete new file into place, so no update is lost and no reader sees half a file.
"""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FormatError, IBFPError
from ..media.atomic import atomic_output

if TYPE_CHECKING:
    from .jobs import BatchResult

SUMMARY_NAME = "batch.csv"
LOCK_NAME = ".batch.csv.lock"
"""Kept in DIR for good: removing a lock file others may be waiting on would break the lock."""
RECORD_NAMES: frozenset[str] = frozenset({SUMMARY_NAME, LOCK_NAME})
"""The files a batch keeps in DIR beside its outputs: its record and that record's lock."""
COLUMNS: tuple[str, ...] = ("video", "status", "frames", "objects", "seconds", "error")
SECONDS_DECIMALS = 2

_THREAD_LOCK = threading.Lock()
"""On NFS, flock() is emulated with POSIX locks, which do not exclude threads of one process."""


def update_summary(out_dir: str | os.PathLike[str], results: Sequence[BatchResult]) -> None:
    """Merge `results` into `out_dir/batch.csv`: a video's new row replaces its old one, except
    that a video skipped because its output exists keeps the row of the run that made it."""
    if not results:
        return
    out_dir = Path(out_dir)
    with _THREAD_LOCK, _file_lock(out_dir / LOCK_NAME):
        rows = {row["video"]: row for row in read_summary(out_dir / SUMMARY_NAME)}
        for result in results:
            old = rows.get(result.video)
            if result.status == "skipped" and old is not None and old["status"] == "done":
                continue
            rows[result.video] = _row(result)
        with atomic_output(out_dir / SUMMARY_NAME) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows[name] for name in sorted(rows))


def read_summary(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a batch.csv (empty when there is none yet), as column -> text."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is not None and tuple(reader.fieldnames) != COLUMNS:
                raise FormatError(f"{path} has columns {','.join(reader.fieldnames)}; expected {','.join(COLUMNS)}")
            return list(reader)
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FormatError(f"cannot read {path}: {e}") from None


def _row(result: BatchResult) -> dict[str, str]:
    def number(value: float | None, decimals: int = 0) -> str:
        return "" if value is None else f"{value:.{decimals}f}"

    return {
        "video": result.video,
        "status": result.status,
        "frames": number(result.frames),
        "objects": number(result.objects),
        "seconds": number(result.seconds, SECONDS_DECIMALS),
        "error": "" if result.status == "done" else result.message,
    }


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing) across processes and machines."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise IBFPError(f"cannot create the lock file {path}: {e.strerror or e}") from None
    try:
        _lock(fd)
        yield
    finally:
        os.close(fd)  # closing releases the lock


if os.name == "nt":
    import msvcrt

    def _lock(fd: int) -> None:
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for 10 s, then raises
                return
            except OSError:
                continue

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)
