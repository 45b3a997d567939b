"""Training views: a jittered search-sized crop of a source image with photometric changes."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..boxes import Box
from ..config import TrackerConfig
from ..tracking.crop import CropWindow, context_window

_LOST_MODE = TrackerConfig()  # the search crop a lost tracker cuts (wide views)


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
    # a pasted look-alike (SamplingConfig.distractor_fraction): its size against the target's
    # (log-uniform in +-distractor_scale, as the view's own scale jitter), the most of the target's
    # area it may hide (a neighbour passes beside or partly in front, not over the whole target),
    # and the share of each side over which its edges fade into the view (no hard seam to key on)
    distractor_scale: float = 0.3
    distractor_cover: float = 0.25
    distractor_feather: float = 0.2
    # a share of the views cut as the tracker cuts its crop after losing the target: the window
    # (and the shift) grown by a log-uniform factor in `wide_growth`, from the tracker's growth after
    # one lost frame to its bound (spec 6: 1.5x to 3x), so the target is that much smaller in the
    # crop than any view of the ranges above shows it; re-detection is asked of such crops
    wide_probability: float = 0.0
    wide_growth: tuple[float, float] = (_LOST_MODE.lost_search_growth, _LOST_MODE.lost_search_max)


NO_AUGMENT = AugmentConfig(0.0, 0.0, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0.0)
PLACEMENT_TRIES = 8  # positions drawn for a distractor before giving up on one that hides too much


def sample_view(
    image: np.ndarray,
    box: Box,
    rng: np.random.Generator,
    area_scale: float,
    size: int,
    aug: AugmentConfig,
    distractor: np.ndarray | None = None,
) -> tuple[np.ndarray, Box]:
    """A size x size crop around `box` with jitter, and the box in crop pixels; `distractor`
    (h, w, 3), another object's pixels, is blended in beside the box before the colour changes."""
    base = context_window(box, area_scale, size)
    growth = 1.0
    if aug.wide_probability and rng.random() < aug.wide_probability:
        growth = float(np.exp(rng.uniform(*np.log(aug.wide_growth))))
    dx, dy = rng.uniform(-aug.shift, aug.shift, 2) * [box.w, box.h] * growth
    side = base.side * float(np.exp(rng.uniform(-aug.scale, aug.scale))) * growth
    window = CropWindow(base.cx + dx, base.cy + dy, side, size)
    crop, b = window.crop(image), window.to_crop(box)
    aspect = float(np.exp(rng.uniform(-aug.aspect, aug.aspect)))
    if aspect != 1.0:  # stretch horizontally about the crop centre
        centre = size / 2
        m = np.array([[aspect, 0.0, (centre - 0.5) * (1 - aspect)], [0.0, 1.0, 0.0]])
        crop = cv2.warpAffine(crop, m, (size, size), borderMode=cv2.BORDER_REPLICATE)
        b = Box(centre + (b.x - centre) * aspect, b.y, b.w * aspect, b.h)
    if distractor is not None:
        crop = paste_distractor(crop, b, distractor, rng, aug)
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


def paste_distractor(
    crop: np.ndarray, target: Box, patch: np.ndarray, rng: np.random.Generator, aug: AugmentConfig
) -> np.ndarray:
    """`crop` with `patch` (h, w, 3) resized to about the target's area and blended in at a random
    place where it hides at most `distractor_cover` of the target; `crop` itself if none is found."""
    size = crop.shape[0]
    ph, pw = patch.shape[:2]
    area = target.w * target.h * float(np.exp(2 * rng.uniform(-aug.distractor_scale, aug.distractor_scale)))
    h = float(np.sqrt(area * ph / pw))
    w, h = int(round(min(h * pw / ph, size))), int(round(min(h, size)))
    if w < 2 or h < 2:
        return crop
    for _ in range(PLACEMENT_TRIES):
        x, y = (int(v) for v in rng.integers(0, [size - w + 1, size - h + 1]))
        hidden = max(0.0, min(x + w, target.x2) - max(x, target.x)) * max(0.0, min(y + h, target.y2) - max(y, target.y))
        if hidden <= aug.distractor_cover * target.w * target.h:
            break
    else:
        return crop
    alpha = _feathered(w, h, aug.distractor_feather)[..., None]
    out = crop.astype(np.float32)
    resized = cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    out[y : y + h, x : x + w] = alpha * resized + (1 - alpha) * out[y : y + h, x : x + w]
    return out.astype(np.uint8)


def _feathered(w: int, h: int, feather: float) -> np.ndarray:
    """(h, w) weights: 1 inside, falling linearly to 0 over `feather` of each side at the edges."""

    def ramp(n: int) -> np.ndarray:
        edge = np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5) / max(feather * n, 1e-6)
        return np.clip(edge, 0.0, 1.0).astype(np.float32)

    return np.outer(ramp(h), ramp(w))
