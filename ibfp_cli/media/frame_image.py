"""`ibfp frame`: one decoded frame as an image file, optionally with a pixel grid and coordinates.

The frame is the one `read_video` yields at that index (the index `track --frame` takes),
written losslessly as PNG. The grid is drawn onto the frame itself, not a margin around it,
so a viewer's pixel readout and the grid's numbers are the same coordinates: a box's
x,y,w,h can be read off either.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import IBFPError, VideoError
from .atomic import atomic_output
from .video import read_video

GRID_LINES = 20
"""The automatic grid step is the smallest 1-2-5 number giving at most this many lines across."""
NICE_STEPS = (1, 2, 5)
"""Grid steps are these times a power of ten: 10, 20, 50, 100, ... px."""
MIN_STEP = 10
"""Finer grids hide the picture and their numbers overlap."""
GRID_RGB = (255, 255, 0)
"""Yellow: stands out on most footage."""
GRID_OPACITY = 0.5
"""Lines are blended half over the picture so what is under them stays visible."""
FONT = cv2.FONT_HERSHEY_PLAIN
FONT_SCALE = 0.8
"""OpenCV's plain font at 0.8 is about 9 px tall: legible on a 160 px wide frame."""
TEXT_RGB = (255, 255, 0)
TEXT_BACKGROUND = (0, 0, 0)
TEXT_MARGIN = 2
"""Pixels between a number and its line."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Suffixes OpenCV encodes; PNG (lossless) is the one that keeps the decoded pixels exactly."""


def decoded_frame(video: str | os.PathLike[str], index: int) -> np.ndarray:
    """Frame `index` (0-based decode order) as RGB uint8 (H, W, 3), exactly as `read_video` yields it."""
    if index < 0:
        raise VideoError(f"frame {index} is negative (frames count from 0)")
    with read_video(video, start=index) as reader:
        for frame in reader:
            if frame.index == index:
                return frame.image
    raise VideoError(f"cannot decode frame {index} of {video}")


def grid_step(width: int, height: int) -> int:
    """The automatic grid spacing for a width x height frame (see GRID_LINES)."""
    longest = max(width, height)
    scale = 1
    while True:
        for step in NICE_STEPS:
            if step * scale >= MIN_STEP and longest / (step * scale) <= GRID_LINES:
                return step * scale
        scale *= 10


def draw_grid(image: np.ndarray, step: int) -> np.ndarray:
    """A copy of the RGB image with a line every `step` px and the lines' coordinates beside them
    (every line's, or every 2nd, 5th, ... where numbers would overlap): x along the top edge,
    y down the left edge. Line k*step covers pixel column (row) k*step, whose left (top) edge
    is the coordinate k*step."""
    if step < 1:
        raise IBFPError(f"grid step {step} must be 1 px or more")
    height, width = image.shape[:2]
    lines = np.zeros((height, width), dtype=bool)
    lines[:, ::step] = True
    lines[::step, :] = True
    out = image.copy()
    blended = out[lines] * (1 - GRID_OPACITY) + np.array(GRID_RGB) * GRID_OPACITY
    out[lines] = np.rint(blended).astype(np.uint8)
    (text_w, text_h), baseline = cv2.getTextSize(str(max(width, height)), FONT, FONT_SCALE, 1)
    band = text_h + baseline + TEXT_MARGIN  # the numbers' rows at the top and columns at the left
    x_every = step * _label_every(step, text_w + 2 * TEXT_MARGIN)
    for x in range(x_every, width, x_every):
        _label(out, str(x), (x + TEXT_MARGIN, 0))
    y_every = step * _label_every(step, band + TEXT_MARGIN)
    for y in range(y_every, height, y_every):
        if y >= band:
            _label(out, str(y), (0, y + TEXT_MARGIN))
    _label(out, "0", (TEXT_MARGIN, TEXT_MARGIN))
    return out


def write_frame_image(
    video: str | os.PathLike[str], index: int, out: str | os.PathLike[str], grid: bool = False, step: int | None = None
) -> tuple[int, int]:
    """Write frame `index` to `out` (format by suffix), with a grid if asked; returns (width, height)."""
    out = Path(out)
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise IBFPError(f"cannot tell the image format of {out.name}; use one of {', '.join(IMAGE_SUFFIXES)}")
    image = decoded_frame(video, index)
    height, width = image.shape[:2]
    if grid:
        image = draw_grid(image, step or grid_step(width, height))
    ok, data = cv2.imencode(out.suffix.lower(), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise IBFPError(f"OpenCV could not encode {out.name}")
    with atomic_output(out) as tmp:
        tmp.write_bytes(data.tobytes())
    return width, height


def _label_every(step: int, room: int) -> int:
    """Number every k-th line, k from 1, 2, 5, 10, ..., so numbers `room` px long do not overlap."""
    k = 1
    while step * k < room:
        k = next(n * scale for scale in (1, 10, 100, 1000) for n in NICE_STEPS if n * scale > k)
    return k


def _label(image: np.ndarray, text: str, top_left: tuple[int, int]) -> None:
    """`text` on a dark box whose top-left corner is `top_left`, if it fits inside the image."""
    (w, h), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    x, y = top_left
    if x + w + TEXT_MARGIN > image.shape[1] or y + h + baseline + TEXT_MARGIN > image.shape[0]:
        return
    cv2.rectangle(image, (x, y), (x + w + TEXT_MARGIN, y + h + baseline), TEXT_BACKGROUND, thickness=-1)
    cv2.putText(image, text, (x + 1, y + h), FONT, FONT_SCALE, TEXT_RGB, 1, cv2.LINE_AA)
