"""Boxes: one type (x, y, w, h in float pixels, 0-based), the one parser, validation, IoU."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import BoxError

BoxFormat = Literal["xywh", "xyxy"]
BOX_FORMATS: tuple[str, ...] = ("xywh", "xyxy")

MIN_BOX_SIZE = 2.0
"""Smallest width or height in pixels a seed box may have (issue 3: reject w or h < 2)."""


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box: top-left corner (x, y) and size (w, h), float pixels, 0-based."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        # plain Python floats, whatever numeric type came in (numpy scalars print differently)
        for name in ("x", "y", "w", "h"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_xyxy(cls, x1: float, y1: float, x2: float, y2: float) -> Box:
        return cls(float(x1), float(y1), float(x2 - x1), float(y2 - y1))

    @classmethod
    def from_center(cls, cx: float, cy: float, w: float, h: float) -> Box:
        return cls(float(cx - w / 2), float(cy - h / 2), float(w), float(h))

    @property
    def x2(self) -> float:
        return self.x + self.w

    @property
    def y2(self) -> float:
        return self.y + self.h

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    def xywh(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)

    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.x2, self.y2)

    def clip(self, width: float, height: float) -> Box:
        """The part of the box inside a width x height frame (may be empty)."""
        x1, y1 = min(max(self.x, 0.0), width), min(max(self.y, 0.0), height)
        x2, y2 = min(max(self.x2, 0.0), width), min(max(self.y2, 0.0), height)
        return Box.from_xyxy(x1, y1, x2, y2)

    def is_finite(self) -> bool:
        return all(math.isfinite(v) for v in self.xywh())

    def __str__(self) -> str:
        return ",".join(f"{v:g}" for v in self.xywh())


def parse_box(text: str, fmt: BoxFormat = "xywh") -> Box:
    """Parse "x,y,w,h" (or "x1,y1,x2,y2" with fmt="xyxy"); commas or spaces separate."""
    if fmt not in BOX_FORMATS:
        raise BoxError(f"unknown box format {fmt!r}; use one of {', '.join(BOX_FORMATS)}")
    parts = [p for p in text.replace(",", " ").split() if p]
    expected = "x,y,w,h" if fmt == "xywh" else "x1,y1,x2,y2"
    if len(parts) != 4:
        raise BoxError(f"box {text!r} must be four numbers {expected}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BoxError(f"box {text!r} must be four numbers {expected}") from None
    if not all(math.isfinite(v) for v in values):
        raise BoxError(f"box {text!r} has a non-finite number")
    box = Box.from_xyxy(*values) if fmt == "xyxy" else Box(*values)
    if box.w <= 0 or box.h <= 0:
        raise BoxError(f"box {text!r} has no area (width and height must be positive)")
    return box


def validate_box(box: Box, width: int, height: int, min_size: float = MIN_BOX_SIZE) -> Box:
    """Clip a box partly outside a width x height frame; reject one outside or too small."""
    if not box.is_finite():
        raise BoxError(f"box {box} has a non-finite number")
    clipped = box.clip(width, height)
    if clipped.w <= 0 or clipped.h <= 0:
        raise BoxError(f"box {box} lies outside the {width}x{height} frame")
    if clipped.w < min_size or clipped.h < min_size:
        raise BoxError(f"box {box} is smaller than {min_size:g} px inside the {width}x{height} frame")
    return clipped


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    iw = min(a.x2, b.x2) - max(a.x, b.x)
    ih = min(a.y2, b.y2) - max(a.y, b.y)
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def center_error(a: Box, b: Box) -> float:
    """Euclidean distance between box centres in pixels."""
    return math.hypot(a.cx - b.cx, a.cy - b.cy)


def ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (N, 4) arrays of x, y, w, h boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = np.clip(a[:, 2], 0, None) * np.clip(a[:, 3], 0, None)
    union = union + np.clip(b[:, 2], 0, None) * np.clip(b[:, 3], 0, None) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def center_errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise centre distance of two (N, 4) arrays of x, y, w, h boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ca = a[:, :2] + a[:, 2:] / 2
    cb = b[:, :2] + b[:, 2:] / 2
    return np.hypot(*(ca - cb).T)
