"""Objects tracked together keep their own identity: a colour signature per object, and the
swaps and hand-overs it asks for (issue 28).

The network tells an object from the background, not one look-alike from another: its template
scores every hue-shifted copy of the target about alike. Colour does tell them apart (a
kernel-weighted hue-saturation histogram, as the colour trackers DAT and mean-shift use). Each
object keeps the signature of its seed box; after every frame, boxes held by the wrong tracks
are given back: two tracks near each other whose boxes both match the other's signature better
swap them, and a box that matches an object whose own tracker is lost better than its holder's
is handed over to it. A box that overlaps another track's is only as confident as its colours
are its own object's rather than that other's (`certainty`): look-alikes crossing are shown to
a person, not guessed. Pure functions on frames, boxes and histograms, no network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..boxes import Box

HUE_BINS = 30  # 6 of OpenCV's 180 hue units per bin; 30 to 180 bins told objects apart alike (probe)
SATURATION_BINS = 4  # grey and weak colours apart from vivid ones
INNER_SHARE = 0.8  # the central 80% of the box's width and height: less background
PATCH_SIDE = 48  # the box's inside is resized to at most 48 px a side first: cost bounded by it


def colour_signature(frame: np.ndarray, box: Box) -> np.ndarray:
    """(HUE_BINS * SATURATION_BINS,) float64 summing to 1: the hue-saturation histogram of the
    box's inside, each pixel weighted by an Epanechnikov kernel (centre 1, edge 0). frame: (H, W, 3)
    RGB uint8. A box outside the frame gives a uniform histogram."""
    h, w = frame.shape[:2]
    inner = Box.from_center(box.cx, box.cy, box.w * INNER_SHARE, box.h * INNER_SHARE)
    x0, y0 = max(int(inner.x), 0), max(int(inner.y), 0)
    x1, y1 = min(int(np.ceil(inner.x2)), w), min(int(np.ceil(inner.y2)), h)
    bins = HUE_BINS * SATURATION_BINS
    if x1 - x0 < 1 or y1 - y0 < 1:
        return np.full(bins, 1.0 / bins)
    patch = frame[y0:y1, x0:x1]
    scale = min(1.0, PATCH_SIDE / max(patch.shape[:2]))
    if scale < 1.0:
        size = (max(round(patch.shape[1] * scale), 1), max(round(patch.shape[0] * scale), 1))
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2HSV)
    hue = hsv[..., 0].astype(np.int64) * HUE_BINS // 180  # 8-bit hue is 0..179
    saturation = hsv[..., 1].astype(np.int64) * SATURATION_BINS // 256
    rows, cols = patch.shape[:2]
    v = (np.arange(rows) + 0.5) / rows * 2 - 1
    u = (np.arange(cols) + 0.5) / cols * 2 - 1
    kernel = np.clip(1 - v[:, None] ** 2 - u[None, :] ** 2, 0, None)  # (rows, cols)
    histogram = np.bincount((hue * SATURATION_BINS + saturation).ravel(), kernel.ravel(), minlength=bins)
    total = histogram.sum()
    return histogram / total if total > 0 else np.full(bins, 1.0 / bins)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - Bhattacharyya coefficient of two signatures: 0 for equal ones, 1 for disjoint ones."""
    return float(1.0 - np.sum(np.sqrt(a * b)))


@dataclass(frozen=True)
class Reassignment:
    """What the identity check changes on one frame: `swaps`, pairs of found tracks that trade
    boxes; `handovers`, (holder, owner) pairs: the holder's box goes to the lost owner and the
    holder is lost."""

    swaps: tuple[tuple[int, int], ...] = ()
    handovers: tuple[tuple[int, int], ...] = ()


def reassign(distance: np.ndarray, found: Sequence[bool], near: np.ndarray, margin: float) -> Reassignment:
    """Which boxes change track. distance: (N, N), [i, j] from track i's signature to the colours
    of track j's box this frame; near: (N, N) bool, [k, i] when track i's box lies in track k's
    search region: only boxes track k could have held are offered to it. A swap of
    found i and j must lower the summed distance by more than `margin`; a hand-over of found i's
    box to lost k must match k better than i by more than `margin`. The largest gains first; a
    track takes part in one change at most."""
    n = len(found)
    options: list[tuple[float, str, int, int]] = []
    for i in range(n):
        if not found[i]:
            continue
        for k in range(n):
            if k == i or not near[k, i]:
                continue
            if found[k] and k > i:
                gain = distance[i, i] + distance[k, k] - distance[i, k] - distance[k, i]
                options.append((gain, "swap", i, k))
            elif not found[k]:
                options.append((distance[i, i] - distance[k, i], "handover", i, k))
    swaps, handovers, used = [], [], set()
    for gain, kind, i, k in sorted(options, reverse=True):
        if gain <= margin or i in used or k in used:
            continue
        used |= {i, k}
        (swaps if kind == "swap" else handovers).append((i, k))
    return Reassignment(tuple(swaps), tuple(handovers))


def certainty(own: float, rivals: Sequence[float], doubt: float) -> float:
    """How surely a box is its track's object (0..1), from the colour distances to that object's
    signature (`own`) and to those of the other objects whose boxes it overlaps (`rivals`): 1 when
    it matches its own better than every rival by at least `doubt`, 0 when a rival matches it as well."""
    if not rivals:
        return 1.0
    return min(max((min(rivals) - own) / doubt, 0.0), 1.0)
