"""ibfp's own CSV: one row per box, every BoxRecord field, exact round-trip."""

from __future__ import annotations

import csv
from pathlib import Path

from ..annotations import DEFAULT_LABEL, Annotations, BoxRecord, VideoMeta
from ..boxes import Box
from ..errors import FormatError
from .fields import check_unique, format_float, parse_flag, parse_float, parse_int

COLUMNS: tuple[str, ...] = ("frame", "time_s", "id", "label", "x", "y", "w", "h", "score", "lost", "keyframe")
REQUIRED_COLUMNS: tuple[str, ...] = ("frame", "id", "x", "y", "w", "h")
"""A hand-made file may leave out the other columns; they then take BoxRecord's defaults."""


def write(path: Path, annotations: Annotations) -> None:
    """Write the header and one row per record; floats as repr so they read back exactly.
    Scores are left empty for annotations that have none (read from a file without them)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in annotations.records:
            writer.writerow(
                [
                    int(r.frame),
                    "" if r.time_s is None else format_float(r.time_s),
                    int(r.id),
                    r.label,
                    *(format_float(v) for v in r.box.xywh()),
                    format_float(r.score) if annotations.scored else "",
                    int(r.lost),
                    int(r.keyframe),
                ]
            )


def read(path: Path) -> Annotations:
    """Read a file written by `write` (or a hand-made one with at least frame,id,x,y,w,h)."""
    try:
        return _read(path)
    except csv.Error as e:
        raise FormatError(f"{path}: not a CSV file ({e})") from None


def _read(path: Path) -> Annotations:
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f)
        header = rows.fieldnames
        if not header:
            raise FormatError(f"{path}: empty file; expected the header {','.join(COLUMNS)}")
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise FormatError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
        records, scored = [], False
        for row in rows:
            records.append(_record(row, len(header), f"{path} line {rows.line_num}"))
            scored = scored or bool((row.get("score") or "").strip())
    check_unique(records, path)
    return Annotations(VideoMeta(name=path.stem), records, scored=scored or not records)


def _record(row: dict[str | None, str | None], n_columns: int, where: str) -> BoxRecord:
    if None in row.values() or None in row:
        raise FormatError(f"{where}: expected {n_columns} fields, as in the header")
    frame = parse_int(row["frame"], "frame", where)
    if frame < 0:
        raise FormatError(f"{where}: frame {frame} is negative (frames count from 0)")
    time_text = row.get("time_s") or ""
    return BoxRecord(
        frame=frame,
        id=parse_int(row["id"], "id", where),
        box=Box(*(parse_float(row[c], c, where) for c in ("x", "y", "w", "h"))),
        score=parse_float(row.get("score") or 1.0, "score", where),
        lost=parse_flag(row.get("lost") or 0, "lost", where),
        time_s=parse_float(time_text, "time_s", where) if time_text.strip() else None,
        label=row.get("label") or DEFAULT_LABEL,
        keyframe=parse_flag(row.get("keyframe") or 0, "keyframe", where),
    )
