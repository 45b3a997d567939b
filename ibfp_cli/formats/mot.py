"""MOTChallenge text files: frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z.

MOT numbers frames from 1 and pixels from 1 (the MATLAB convention: motmetrics
subtracts 1 from bb_left and bb_top on load), so frame = index + 1 and
bb_left = x + 1, bb_top = y + 1.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..annotations import Annotations, BoxRecord, VideoMeta
from ..boxes import Box
from ..errors import FormatError
from .fields import check_unique, format_float, parse_float, parse_int, require_ids_from_one

MOT_BASE = 1
"""MOT frames and pixel coordinates start at 1; ours at 0."""

UNUSED = -1
"""MOT results fill the three world-coordinate columns with -1."""

COLUMN_COUNTS: tuple[int, ...] = (6, 7, 9, 10)
"""frame..height; + conf; + class, visibility (MOT16+ ground truth); + x, y, z (results)."""

_SEPARATOR = re.compile(r"[,\s]+")


def write(path: Path, annotations: Annotations) -> None:
    """One 10-column row per record, lost frames included (conf = score)."""
    require_ids_from_one(annotations, "MOT")
    with open(path, "w", encoding="utf-8") as f:
        for r in annotations.records:
            fields = [
                str(int(r.frame) + MOT_BASE),
                str(int(r.id)),
                format_float(r.box.x + MOT_BASE),
                format_float(r.box.y + MOT_BASE),
                format_float(r.box.w),
                format_float(r.box.h),
                format_float(r.score),
                *[str(UNUSED)] * 3,
            ]
            f.write(",".join(fields) + "\n")


def read(path: Path) -> Annotations:
    """Read MOT results or ground truth with 6, 7, 9 or 10 columns, comma or space separated."""
    records, scored = [], False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                fields = _SEPARATOR.split(line.strip())
                records.append(_record(fields, f"{path} line {number}"))
                scored = scored or len(fields) > min(COLUMN_COUNTS)
    check_unique(records, path)
    return Annotations(VideoMeta(name=path.stem), records, scored=scored or not records)


def _record(fields: list[str], where: str) -> BoxRecord:
    if len(fields) not in COLUMN_COUNTS:
        counts = ", ".join(map(str, COLUMN_COUNTS))
        raise FormatError(f"{where}: {len(fields)} columns; a MOT file has {counts}")
    frame = parse_int(fields[0], "frame", where)
    track_id = parse_int(fields[1], "id", where)
    if frame < MOT_BASE:
        raise FormatError(f"{where}: frame {frame} is below 1 (MOT frames count from 1)")
    if track_id < 1:
        raise FormatError(f"{where}: id {track_id} is below 1 (detections are not tracks)")
    left, top, width, height = (
        parse_float(v, name, where) for v, name in zip(fields[2:6], ("bb_left", "bb_top", "bb_width", "bb_height"))
    )
    has_conf = len(fields) > min(COLUMN_COUNTS)
    return BoxRecord(
        frame=frame - MOT_BASE,
        id=track_id,
        box=Box(left - MOT_BASE, top - MOT_BASE, width, height),
        score=parse_float(fields[6], "conf", where) if has_conf else 1.0,
    )
