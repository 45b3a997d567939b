"""Preview videos: each frame with its boxes, ids, labels, scores and frame number drawn on it."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

from ..annotations import Annotations, BoxRecord
from ..boxes import Box
from ..errors import IBFPError
from ..progress import ProgressCallback
from .atomic import atomic_output
from .video import VideoWriter, read_video

PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
    (255, 187, 120),
)  # RGB; matplotlib's "tab10" order, so neighbouring ids get distinct hues
LOST_COLOUR = (160, 160, 160)
"""Grey for boxes the tracker flagged lost (drawn dashed)."""
LIGHT_TEXT = (255, 255, 255)
DARK_TEXT = (0, 0, 0)
FRAME_LABEL_BACKGROUND = (0, 0, 0)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma from RGB
DARK_TEXT_ABOVE_LUMA = 150
"""Captions on backgrounds brighter than this (0-255 luma) are drawn in dark text."""

REFERENCE_HEIGHT = 480
"""Frame height at which the base sizes below apply; drawing scales with the height."""
LINE_WIDTH = 2  # px at the reference height
FONT_SCALE = 0.55  # OpenCV Hershey font scale at the reference height
MIN_FONT_SCALE = 0.35  # below this OpenCV's Hershey font stops being legible
DASH_LENGTH = 10  # px at the reference height; gaps are as long as dashes
TEXT_PADDING = 3  # px around text on its background
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True, slots=True)
class _Style:
    """Line width, font scale, dash length and padding for one frame size."""

    line: int
    font_scale: float
    text_line: int
    dash: int
    pad: int

    @classmethod
    def for_height(cls, height: int) -> _Style:
        scale = height / REFERENCE_HEIGHT
        font_scale = max(FONT_SCALE * scale, MIN_FONT_SCALE)
        return cls(
            line=max(round(LINE_WIDTH * scale), 1),
            font_scale=font_scale,
            text_line=max(round(font_scale / FONT_SCALE), 1),
            dash=max(round(DASH_LENGTH * scale), 2),
            pad=max(round(TEXT_PADDING * scale), 1),
        )


def track_colour(track_id: int) -> tuple[int, int, int]:
    """The RGB colour of a track id: the palette, cycled."""
    return PALETTE[(track_id - 1) % len(PALETTE)]


def box_colour(track_id: int, lost: bool = False) -> tuple[int, int, int]:
    """The colour a box is drawn in: its track's, or grey when lost."""
    return LOST_COLOUR if lost else track_colour(track_id)


def draw_boxes(image: np.ndarray, frame_index: int, records: Iterable[BoxRecord]) -> None:
    """Draw each record's box and caption, and the frame number (bottom left), in place."""
    for record in records:
        draw_box(image, record.box, record.id, record.lost)
        caption = f"{record.id} {record.label} {record.score:.2f}" + (" lost" if record.lost else "")
        draw_caption(image, caption, (round(record.box.x), round(record.box.y)), box_colour(record.id, record.lost))
    draw_caption(image, f"frame {frame_index}", (0, image.shape[0]))


def draw_box(image: np.ndarray, box: Box, track_id: int, lost: bool = False) -> None:
    """The box in its track's colour, in place; a lost box dashed and grey."""
    style = _Style.for_height(image.shape[0])
    x1, y1, x2, y2 = (round(v) for v in box.xyxy())
    colour = box_colour(track_id, lost)
    if lost:
        _dashed_rectangle(image, (x1, y1), (x2, y2), colour, style)
    else:
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, style.line)


def draw_caption(
    image: np.ndarray, text: str, anchor: tuple[int, int], background: tuple[int, int, int] = FRAME_LABEL_BACKGROUND
) -> None:
    """Text on a filled background just above the anchor point (below it at the top edge), in place."""
    style = _Style.for_height(image.shape[0])
    (tw, th), baseline = cv2.getTextSize(text, FONT, style.font_scale, style.text_line)
    height = th + baseline + 2 * style.pad
    x = min(max(anchor[0], 0), max(image.shape[1] - tw - 2 * style.pad, 0))
    y = anchor[1] - height if anchor[1] >= height else anchor[1]
    y = min(max(y, 0), max(image.shape[0] - height, 0))
    luma = sum(w * c for w, c in zip(LUMA_WEIGHTS, background, strict=True))
    colour = DARK_TEXT if luma > DARK_TEXT_ABOVE_LUMA else LIGHT_TEXT
    right, bottom = x + tw + 2 * style.pad - 1, y + height - 1  # cv2 corners are inclusive
    cv2.rectangle(image, (x, y), (right, bottom), background, cv2.FILLED)
    cv2.putText(
        image, text, (x + style.pad, y + style.pad + th), FONT, style.font_scale, colour, style.text_line, cv2.LINE_AA
    )


def render_video(
    video: str | os.PathLike[str],
    annotations: Annotations,
    out: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
) -> None:
    """Write an H.264 mp4 of `video` with the boxes of `annotations` drawn on every frame."""
    by_frame: dict[int, list[BoxRecord]] = defaultdict(list)
    for record in annotations.records:
        by_frame[record.frame].append(record)
    known = annotations.video
    with read_video(video) as reader:
        info = reader.info
        if known.width is not None and (known.width, known.height) != (info.width, info.height):
            raise IBFPError(
                f"the boxes are for a {known.width}x{known.height} video but {video} is {info.width}x{info.height}"
            )
        with atomic_output(out) as tmp, VideoWriter(tmp, info.width, info.height, info.fps) as w:
            for done, frame in enumerate(reader, start=1):
                image = frame.image.copy()
                draw_boxes(image, frame.index, by_frame.get(frame.index, ()))
                w.write(image)
                if progress is not None:
                    progress(done, len(reader))


def _dashed_rectangle(
    image: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], colour: tuple[int, int, int], style: _Style
) -> None:
    (x1, y1), (x2, y2) = p1, p2
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)]
    for (ax, ay), (bx, by) in pairwise(corners):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length, 2 * style.dash):
            end = min(start + style.dash, length)
            a = (ax + (bx - ax) * start // length, ay + (by - ay) * start // length)
            b = (ax + (bx - ax) * end // length, ay + (by - ay) * end // length)
            cv2.line(image, a, b, colour, style.line)
