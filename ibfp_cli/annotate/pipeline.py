"""Track seeded objects through a video in one decoding pass, and read batch seed files."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..annotations import DEFAULT_LABEL, Annotations, BoxRecord, VideoMeta
from ..boxes import Box, parse_box, validate_box
from ..errors import BoxError, FormatError, IBFPError
from ..formats import resolve_format, write_annotations
from ..media.atomic import atomic_output
from ..media.video import VideoInfo, probe, read_video
from ..progress import ProgressCallback
from ..tracking.contract import SingleObjectTracker, TrackerOutput, update_all
from ..tracking.registry import create_tracker

SEED_COLUMNS: tuple[str, ...] = ("video", "frame", "x", "y", "w", "h")
"""Columns every seeds file must have, one row per object."""
OPTIONAL_SEED_COLUMNS: tuple[str, ...] = ("id", "label")
"""Columns a seeds file may add; ids default to 1, 2, ... per video, labels to "object"."""
SEED_SCORE = 1.0
"""Score of the box a person drew on the seed frame."""


@dataclass(frozen=True, slots=True)
class Seed:
    """A box a person drew around one object on one frame (0-based decode index)."""

    box: Box
    frame: int = 0
    id: int = 1
    label: str = DEFAULT_LABEL


def track_video(
    video: str | os.PathLike[str],
    seeds: Iterable[Seed],
    tracker: str = "ibfp",
    *,
    device: str = "auto",
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    tracker_options: Mapping[str, object] | None = None,
    progress: ProgressCallback | None = None,
) -> Annotations:
    """Track every seeded object from its seed frame to the end of the video.

    Seeds are checked against the video (box inside the frame, frame in range, ids unique)
    before any tracker runs. Each object gets its own tracker instance; the video is decoded
    once for all of them, and all objects are updated together on each frame (IBFP runs
    their search crops through its network as one batch). The seed frame is recorded as a
    keyframe with score 1; tracked boxes are clipped to the frame.
    """
    info = probe(video)
    checked = _checked_seeds(list(seeds), info)
    options = dict(tracker_options or {})
    trackers: dict[int, SingleObjectTracker] = {
        s.id: create_tracker(tracker, device=device, backend=backend, weights=weights, **options) for s in checked
    }
    first = min(s.frame for s in checked)
    records: list[BoxRecord] = []
    last_box: dict[int, Box] = {}  # objects whose seed frame has passed -> their latest box
    with read_video(video, start=first) as reader:
        total = len(reader) - first
        for done, frame in enumerate(reader, start=1):
            running = [s for s in checked if s.id in last_box]
            outputs = update_all([trackers[s.id] for s in running], frame.image)
            found = {s.id: clip_output(o, last_box[s.id], info) for s, o in zip(running, outputs)}
            for seed in checked:
                if seed.id in found:
                    output = found[seed.id]
                elif frame.index == seed.frame:
                    trackers[seed.id].init(frame.image, seed.box)
                    output = TrackerOutput(seed.box, SEED_SCORE)
                else:
                    continue
                last_box[seed.id] = output.box
                keyframe = frame.index == seed.frame
                records.append(
                    BoxRecord(
                        frame.index, seed.id, output.box, output.score, output.lost, frame.time_s, seed.label, keyframe
                    )
                )
            if progress is not None:
                progress(done, total)
    meta = VideoMeta(Path(video).name, info.width, info.height, info.fps, info.frame_count)
    return Annotations(meta, records)


def clip_output(output: TrackerOutput, last_box: Box, info: VideoInfo) -> TrackerOutput:
    """The output clipped to the frame; a box that left the frame keeps the last one, lost."""
    box = output.box.clip(info.width, info.height)
    if box.area == 0:
        return TrackerOutput(last_box, output.score, lost=True)
    return TrackerOutput(box, output.score, output.lost)


def track_to_file(
    video: str | os.PathLike[str],
    seeds: Iterable[Seed],
    out: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    tracker: str = "ibfp",
    device: str = "auto",
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    tracker_options: Mapping[str, object] | None = None,
    progress: ProgressCallback | None = None,
) -> Annotations:
    """Track and write the boxes to `out` in `fmt` (default: from its extension).

    The format and the output folder are checked before tracking starts; `out` appears only
    once complete (nothing is left behind on an error or Ctrl-C).
    """
    fmt_name = resolve_format(Path(out), fmt).name
    with atomic_output(out) as tmp:
        annotations = track_video(
            video,
            seeds,
            tracker,
            device=device,
            backend=backend,
            weights=weights,
            tracker_options=tracker_options,
            progress=progress,
        )
        write_annotations(tmp, annotations, fmt_name)
    return annotations


def _checked_seeds(seeds: list[Seed], info: VideoInfo) -> list[Seed]:
    """Seeds with boxes clipped to the frame; BoxError / IBFPError for any that cannot be used."""
    if not seeds:
        raise IBFPError("no seed box given; give at least one object's box")
    ids = [s.id for s in seeds]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise IBFPError(f"object id {duplicates[0]} is given to more than one box; ids must differ")
    last = info.frame_count - 1
    checked = []
    for seed in seeds:
        if not 0 <= seed.frame <= last:
            raise IBFPError(f"seed frame {seed.frame} is outside the video's frames 0..{last} (0-based)")
        box = validate_box(seed.box, info.width, info.height)
        checked.append(Seed(box, seed.frame, seed.id, seed.label))
    return checked


def load_seeds(path: str | os.PathLike[str], key: Callable[[str], str] | None = None) -> dict[str, list[Seed]]:
    """Read a seeds CSV (`video,frame,x,y,w,h` and optional `id,label`) into seeds per video.

    Videos are keyed by `key(video column)`, by the column as written without `key`; rows
    whose names have one key are one video, their default ids counted together. Errors name
    the file and line.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return _parse_seeds(path, csv.reader(f), key or _as_written)
    except FileNotFoundError:
        raise FormatError(f"seeds file {path} not found") from None
    except UnicodeDecodeError:
        raise FormatError(f"seeds file {path} is not UTF-8 text") from None
    except (OSError, csv.Error) as e:
        raise FormatError(f"cannot read seeds file {path}: {e}") from None


def _as_written(name: str) -> str:
    return name


def _parse_seeds(path: Path, rows: Iterable[list[str]], key: Callable[[str], str]) -> dict[str, list[Seed]]:
    lines = ((n, [c.strip() for c in row]) for n, row in enumerate(rows, start=1) if any(row))
    header_line, columns = next(lines, (0, []))
    if not columns:
        raise FormatError(f"seeds file {path} is empty; expected a header {','.join(SEED_COLUMNS)}")
    _check_seed_header(f"{path} line {header_line}", columns)
    seeds: dict[str, list[Seed]] = {}
    for line, row in lines:
        where = f"{path} line {line}"
        if len(row) != len(columns):
            raise FormatError(f"{where}: {len(row)} fields where the header has {len(columns)}: {','.join(row)!r}")
        values = dict(zip(columns, row, strict=True))
        per_video = seeds.setdefault(key(values["video"]), [])
        per_video.append(_parse_seed_row(where, values, default_id=len(per_video) + 1))
    if not seeds:
        raise FormatError(f"seeds file {path} has a header but no seed rows")
    return seeds


def _check_seed_header(where: str, columns: list[str]) -> None:
    expected = f"{','.join(SEED_COLUMNS)} and optionally {','.join(OPTIONAL_SEED_COLUMNS)}"
    unknown = [c for c in columns if c not in SEED_COLUMNS + OPTIONAL_SEED_COLUMNS]
    missing = [c for c in SEED_COLUMNS if c not in columns]
    repeated = [c for c in columns if columns.count(c) > 1]
    if unknown:
        raise FormatError(f"{where}: unknown column {unknown[0]!r}; expected {expected}")
    if missing:
        raise FormatError(f"{where}: missing column {missing[0]!r}; expected {expected}")
    if repeated:
        raise FormatError(f"{where}: column {repeated[0]!r} appears twice")


def _parse_seed_row(where: str, row: dict[str, str], default_id: int) -> Seed:
    if not row["video"]:
        raise FormatError(f"{where}: empty video name")
    frame = _whole_number(where, "frame", row["frame"])
    if frame < 0:
        raise FormatError(f"{where}: frame {frame} is negative (frames are 0-based)")
    track_id = _whole_number(where, "id", row["id"]) if row.get("id") else default_id
    if track_id < 1:
        raise FormatError(f"{where}: id {track_id} must be 1 or more")
    try:
        box = parse_box(",".join(row[c] for c in ("x", "y", "w", "h")))
    except BoxError as e:
        raise FormatError(f"{where}: {e}") from None
    return Seed(box, frame, track_id, row.get("label") or DEFAULT_LABEL)


def _whole_number(where: str, column: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FormatError(f"{where}: {column} {text!r} is not a whole number") from None
