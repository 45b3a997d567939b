"""Objects tracked together: where one object's search map belongs to another, and which of two
boxes on one target gives way (issue 28).

Pure geometry on boxes and cell grids, no network: `tracker` calls it for every object of a
frame once all of them have a search map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..boxes import Box, iou


def neighbour_mask(own: Box, others: Sequence[Box], size: int, stride: int) -> torch.Tensor:
    """(size, size) bool map of the cells (centres at (i + 0.5) * stride, crop pixels) that
    belong to another object: inside one of `others`' boxes and nearer its centre than `own`'s,
    each distance measured in that box's size (sqrt(w h)). So where two boxes overlap, each
    object keeps the cells on its own side. All boxes in crop pixels."""
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) * stride
    ys, xs = centres[:, None], centres[None, :]  # (size, 1), (1, size)
    own_d = _distance(xs, ys, own)
    mask = torch.zeros(size, size, dtype=torch.bool)
    for other in others:
        inside = (xs >= other.x) & (xs <= other.x2) & (ys >= other.y) & (ys <= other.y2)
        mask |= inside & (_distance(xs, ys, other) < own_d)
    return mask


def _distance(xs: torch.Tensor, ys: torch.Tensor, box: Box) -> torch.Tensor:
    """(size, size) distance of each cell centre from the box's centre, in box sizes."""
    scale = max((box.w * box.h) ** 0.5, 1e-6)
    return torch.hypot(xs - box.cx, ys - box.cy) / scale


def merge_losers(boxes: Sequence[Box], scores: Sequence[float], found: Sequence[bool], max_iou: float) -> set[int]:
    """Indices of the found boxes that give way to another found box they overlap by more than
    `max_iou`: of each such pair the lower score (its own template and online filter agree less
    that the target is there) gives way; on a tie the later index. A box that gave way takes no
    further part, so of three boxes on one target two give way."""
    order = sorted((i for i in range(len(boxes)) if found[i]), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    losers: set[int] = set()
    for i in order:
        if any(iou(boxes[i], boxes[k]) > max_iou for k in kept):
            losers.add(i)
        else:
            kept.append(i)
    return losers
