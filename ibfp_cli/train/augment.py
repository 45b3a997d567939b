"""Training views: a jittered search-sized crop of a source image with photometric changes."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..boxes import Box
from ..tracking.crop import CropWindow, context_window


@dataclass(frozen=True)
class AugmentConfig:
    """Jitter ranges (SiamRPN++ / DiMP practice; issue 5 lists the kinds)."""

    shift: float = 0.6  # centre shift, in target sizes (uniform in +-shift)
    scale: float = 0.25  # log-uniform zoom in +-scale
    aspect: float = 0.1  # log-uniform aspect change of the crop window
    brightness: float = 0.25  # multiplicative, per channel: colour jitter
    blur_probability: float = 0.1
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    gray_probability: float = 0.05
    flip_probability: float = 0.5


NO_AUGMENT = AugmentConfig(0.0, 0.0, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0.0)


def sample_view(
    image: np.ndarray, box: Box, rng: np.random.Generator, area_scale: float, size: int, aug: AugmentConfig
) -> tuple[np.ndarray, Box]:
    """A size x size crop around `box` with jitter, and the box in crop pixels."""
    base = context_window(box, area_scale, size)
    dx, dy = rng.uniform(-aug.shift, aug.shift, 2) * [box.w, box.h]
    side = base.side * float(np.exp(rng.uniform(-aug.scale, aug.scale)))
    window = CropWindow(base.cx + dx, base.cy + dy, side, size)
    crop, b = window.crop(image), window.to_crop(box)
    aspect = float(np.exp(rng.uniform(-aug.aspect, aug.aspect)))
    if aspect != 1.0:  # stretch horizontally about the crop centre
        centre = size / 2
        m = np.array([[aspect, 0.0, (centre - 0.5) * (1 - aspect)], [0.0, 1.0, 0.0]])
        crop = cv2.warpAffine(crop, m, (size, size), borderMode=cv2.BORDER_REPLICATE)
        b = Box(centre + (b.x - centre) * aspect, b.y, b.w * aspect, b.h)
    crop = _photometric(crop, rng, aug)
    if rng.random() < aug.flip_probability:
        crop = np.ascontiguousarray(crop[:, ::-1])
        b = Box(size - b.x2, b.y, b.w, b.h)
    return crop, b


def _photometric(crop: np.ndarray, rng: np.random.Generator, aug: AugmentConfig) -> np.ndarray:
    out = crop.astype(np.float32)
    if aug.brightness:
        out *= rng.uniform(1 - aug.brightness, 1 + aug.brightness, 3).astype(np.float32)
    if rng.random() < aug.gray_probability:
        out[:] = out.mean(axis=2, keepdims=True)
    if rng.random() < aug.blur_probability:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(*aug.blur_sigma)))
    return np.clip(out, 0, 255).astype(np.uint8)
