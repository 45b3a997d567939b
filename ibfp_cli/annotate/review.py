"""Review: find the stretches where the tracker was unsure, and show them on a contact sheet."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from ..annotations import Annotations, BoxRecord
from ..boxes import Box
from ..errors import IBFPError
from ..formats import scored_format_names
from ..media.atomic import atomic_output
from ..media.render import draw_box, draw_caption  # the preview's drawing, so sheet and preview look alike
from ..media.video import read_video
from ..progress import ProgressCallback

DEFAULT_THRESHOLD = 0.5
"""Scores below this count as doubtful (tracker scores lie in [0, 1])."""
MAX_TILES = 24
"""Tiles on one contact sheet (the least confident segments are kept)."""
TILE_WIDTH = 240
"""Pixels; the height follows the video's aspect ratio."""
TILE_CONTEXT = 3.0
"""A tile shows a window of the frame this many times the box's size, centred on it, so the box
fills a third of the tile's width or height: large enough to judge on any footage (a 720p
frame scaled whole into a tile would shrink a 64 px box to 12 px), with enough of its
surroundings to tell whether it sits on the object. The window is never narrower than the
tile (no magnification beyond the video's own pixels) nor wider than the frame."""
SHEET_COLUMNS = 6
"""Tiles per row: rows of 240 px tiles make a sheet about 1,500 px wide, one screen across."""
TILE_GAP = 4
"""Pixels between tiles and around the sheet."""
SHEET_BACKGROUND = (32, 32, 32)
"""RGB of the sheet between tiles: dark grey, unlike any caption background."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive frames first..last (0-based, inclusive) where one object's box is
    doubtful: lost, or scored below the threshold. lowest_frame holds its lowest score."""

    id: int
    first: int
    last: int
    lowest_score: float
    lowest_frame: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def low_confidence_segments(
    annotations: Annotations, threshold: float = DEFAULT_THRESHOLD, min_length: int = 1
) -> list[Segment]:
    """Runs of consecutive frames per object whose boxes are lost or score below
    `threshold`, at least `min_length` frames long, by object then frame.

    Boxes a person drew (keyframes) are never doubtful; a frame without a box ends a run.
    Annotations without scores (read from a file that stores none) are an IBFPError: their
    scores of 1 would make an all-clear that means nothing.
    """
    if not annotations.scored:
        scored = ", ".join(scored_format_names())
        raise IBFPError(
            f"the boxes of {annotations.video.name} carry no scores (their file stores none), so nothing "
            f"tells which are doubtful; review a file that keeps them ({scored})"
        )
    if min_length < 1:
        raise IBFPError(f"minimum segment length {min_length} must be 1 or more")
    segments = []
    for track_id in annotations.ids():
        run: list[BoxRecord] = []
        for record in [*annotations.track(track_id), None]:
            doubtful = record is not None and is_doubtful(record, threshold)
            if run and not (doubtful and record.frame == run[-1].frame + 1):
                if len(run) >= min_length:
                    segments.append(_segment(run))
                run = []
            if doubtful:
                run.append(record)
    return segments


def contact_sheet(
    video: str | os.PathLike[str],
    annotations: Annotations,
    segments: list[Segment],
    out_png: str | os.PathLike[str],
    *,
    max_tiles: int = MAX_TILES,
    tile_width: int = TILE_WIDTH,
    progress: ProgressCallback | None = None,
) -> list[Segment]:
    """Write a PNG grid with one tile per segment: its lowest-score frame (else its first or
    last frame with a box) around the box (see `tile_window`), the box drawn and the tile
    captioned "id N frame F score S".

    With more than `max_tiles` segments the least confident ones are shown. Tiles are in
    frame order; returns the segments shown, in tile order. The video is decoded once from
    the first shown frame to the last.
    """
    if not segments:
        raise IBFPError("no segments to show on a contact sheet")
    if max_tiles < 1 or tile_width < 1:
        raise IBFPError("a contact sheet needs at least one tile at least 1 px wide")
    shown = sorted(segments, key=lambda s: (s.lowest_score, s.id, s.first))[:max_tiles]
    tiles = sorted(((s, _tile_record(s, annotations)) for s in shown), key=lambda t: (t[1].frame, t[0].id))
    _write_png(out_png, _grid(_tiles(video, [r for _, r in tiles], annotations, tile_width, progress)))
    return [s for s, _ in tiles]


def tile_window(box: Box, width: int, height: int, tile_width: int = TILE_WIDTH) -> tuple[int, int, int, int]:
    """The part of a `width` x `height` frame a tile shows for `box`: x, y, w, h in video pixels,
    of the frame's aspect ratio, TILE_CONTEXT times the box's size (whichever of its width and
    height needs more), at least `tile_width` wide and at most the frame, centred on the box
    and moved inside the frame where it would stick out."""
    aspect = width / height
    wanted = TILE_CONTEXT * max(box.w, box.h * aspect)
    w = round(min(max(wanted, tile_width), width))
    h = min(round(w / aspect), height)
    x = min(max(round(box.cx - w / 2), 0), width - w)
    y = min(max(round(box.cy - h / 2), 0), height - h)
    return x, y, w, h


def is_doubtful(record: BoxRecord, threshold: float) -> bool:
    """A box the tracker was unsure of: lost, or scored below `threshold`; never a keyframe."""
    return not record.keyframe and (record.lost or record.score < threshold)


def _segment(run: list[BoxRecord]) -> Segment:
    lowest = min(run, key=lambda r: (r.score, r.frame))
    return Segment(run[0].id, run[0].frame, run[-1].frame, lowest.score, lowest.frame)


def _tile_record(segment: Segment, annotations: Annotations) -> BoxRecord:
    """The record a segment's tile shows: on its lowest-score frame, else its first or last."""
    boxes = {r.frame: r for r in annotations.track(segment.id)}
    for frame in (segment.lowest_frame, segment.first, segment.last):
        if frame in boxes:
            return boxes[frame]
    raise IBFPError(
        f"object {segment.id} has no box on frames {segment.first}..{segment.last}; "
        "the segments are from other annotations"
    )


def _tiles(
    video: str | os.PathLike[str],
    records: list[BoxRecord],
    annotations: Annotations,
    tile_width: int,
    progress: ProgressCallback | None,
) -> list[np.ndarray]:
    """One tile per record, in order, decoding the video once from the first frame shown to
    the last; all tiles have the frame's aspect ratio and `tile_width`."""
    frames = {r.frame for r in records}
    first, last = min(frames), max(frames)
    tiles: dict[int, np.ndarray] = {}
    with read_video(video, start=first) as reader:
        info = reader.info
        known = annotations.video
        if known.width is not None and (known.width, known.height) != (info.width, info.height):
            raise IBFPError(
                f"the boxes are for a {known.width}x{known.height} video but {video} is {info.width}x{info.height}"
            )
        if last >= info.frame_count:
            raise IBFPError(f"frame {last} is not in {video} (frames 0..{info.frame_count - 1})")
        size = (tile_width, max(round(info.height * tile_width / info.width), 1))
        for frame in reader:
            for i, record in enumerate(records):
                if record.frame == frame.index:
                    tiles[i] = _tile(frame.image, record, size)
            if progress is not None:
                progress(frame.index - first + 1, last - first + 1)
            if frame.index == last:
                break
    return [tiles[i] for i in range(len(records))]


def _tile(image: np.ndarray, record: BoxRecord, size: tuple[int, int]) -> np.ndarray:
    """The frame's window around the record's box (`tile_window`) at tile `size`, with the box
    and caption drawn on it."""
    height, width = image.shape[:2]
    x, y, w, h = tile_window(record.box, width, height, size[0])
    tile = cv2.resize(image[y : y + h, x : x + w], size, interpolation=cv2.INTER_AREA)
    sx, sy = size[0] / w, size[1] / h
    box = record.box
    draw_box(tile, Box((box.x - x) * sx, (box.y - y) * sy, box.w * sx, box.h * sy), record.id, record.lost)
    draw_caption(tile, f"id {record.id} frame {record.frame} score {record.score:.2f}", (0, tile.shape[0]))
    return tile


def _grid(tiles: list[np.ndarray]) -> np.ndarray:
    """Tiles of one size in rows of up to SHEET_COLUMNS, TILE_GAP apart and around."""
    height, width = tiles[0].shape[:2]
    columns = min(len(tiles), SHEET_COLUMNS)
    rows = math.ceil(len(tiles) / columns)
    sheet = np.empty(
        (rows * (height + TILE_GAP) + TILE_GAP, columns * (width + TILE_GAP) + TILE_GAP, 3), dtype=np.uint8
    )
    sheet[:] = SHEET_BACKGROUND
    for i, tile in enumerate(tiles):
        row, column = divmod(i, columns)
        y, x = TILE_GAP + row * (height + TILE_GAP), TILE_GAP + column * (width + TILE_GAP)
        sheet[y : y + height, x : x + width] = tile
    return sheet


def _write_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise IBFPError(f"OpenCV could not encode the contact sheet {path}")
    with atomic_output(path) as tmp:
        tmp.write_bytes(data.tobytes())
