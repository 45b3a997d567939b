"""Box fit, measured apart from tracking: does a box that is on the object also fit it?

Two views. `box_fit` reads a tracker's saved boxes: on the frames where its centre is on the
target (within half a target size of the true centre), how its size and aspect compare with
the truth. `network_check` asks the IBFP network alone: search crops centred on the true box at
its true scale, as the tracker would cut them, and the box the head decodes there, with no
smoothing, no online branch and no feedback from earlier frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..boxes import Box, center_errors, ious
from .datasets import Sequence
from .metrics import scored_frames

CENTRED_WITHIN = 0.5
"""A box is centred when its centre error is at most this many target sizes, sqrt(w h)."""
NETWORK_CHECK_EVERY = 5
"""The network check looks at every 5th scored frame (issue 11's measurement)."""


@dataclass(frozen=True)
class BoxFit:
    """Box geometry against the truth on one sequence (or the mean over several).

    centred: share of scored frames whose box centre is within CENTRED_WITHIN target sizes;
    size_ratio: median sqrt(w h / w_true h_true) on those frames (1 = right size);
    aspect_error: mean |log((w / h) / (w_true / h_true))| on those frames (0 = right shape).
    """

    centred: float
    size_ratio: float
    aspect_error: float


NO_FIT = BoxFit(float("nan"), float("nan"), float("nan"))


def size_ratios(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """sqrt(w h / w_true h_true) per row of (N, 4) x, y, w, h boxes."""
    return np.sqrt((pred[:, 2] * pred[:, 3]) / (gt[:, 2] * gt[:, 3]))


def aspect_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """|log(aspect / aspect_true)| per row, aspect = w / h."""
    return np.abs(np.log((pred[:, 2] / pred[:, 3]) / (gt[:, 2] / gt[:, 3])))


def box_fit(pred: np.ndarray, gt: np.ndarray, absent: np.ndarray | None = None) -> BoxFit:
    """Box fit of (N, 4) predictions against (N, 4) ground truth on the protocol's scored frames."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    mask = scored_frames(gt, absent)
    if not mask.any():
        return NO_FIT
    pred, gt = pred[mask], gt[mask]
    valid = np.all(np.isfinite(pred), axis=1) & (pred[:, 2] > 0) & (pred[:, 3] > 0)
    errors = np.full(len(gt), np.inf)
    errors[valid] = center_errors(pred[valid], gt[valid])
    centred = errors <= CENTRED_WITHIN * np.sqrt(gt[:, 2] * gt[:, 3])
    if not centred.any():
        return BoxFit(0.0, float("nan"), float("nan"))
    on = pred[centred], gt[centred]
    return BoxFit(float(centred.mean()), float(np.median(size_ratios(*on))), float(np.mean(aspect_errors(*on))))


def mean_fit(fits: list[BoxFit]) -> BoxFit:
    """The mean over sequences of each field, ignoring sequences where it is undefined."""

    def mean(values: list[float]) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    return BoxFit(*(mean([getattr(f, name) for f in fits]) for name in ("centred", "size_ratio", "aspect_error")))


@dataclass(frozen=True)
class NetworkCheck:
    """The network's decoded boxes on one sequence, on every NETWORK_CHECK_EVERY-th scored frame.

    iou, size_ratio and aspect_error are per checked frame (size ratio and aspect as in BoxFit).
    """

    sequence: str
    iou: np.ndarray
    size_ratio: np.ndarray
    aspect_error: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.iou)


class BoxMeasurer(Protocol):
    """What `network_check` needs of a tracker: start on a box, then the network's box for a
    known true box (`IBFPTracker` with its online branch off is one)."""

    def init(self, frame: np.ndarray, box: Box) -> None: ...

    def measure(self, frame: np.ndarray, box: Box) -> object: ...


def network_check(
    sequence: Sequence,
    measurer: BoxMeasurer,
    every: int = NETWORK_CHECK_EVERY,
    progress: Callable[[int], None] | None = None,
) -> NetworkCheck:
    """Start `measurer` on frame 0's true box, then on every `every`-th scored frame decode the
    box the network finds around the true box. `measure` returns an object with `.box`."""
    checked = np.flatnonzero(scored_frames(sequence.gt, sequence.absent))[every - 1 :: every]
    wanted = set(checked.tolist())
    pred = np.full((len(checked), 4), np.nan)
    row = 0
    for index, frame in enumerate(sequence.frames()):
        if index == 0:
            measurer.init(frame, Box(*sequence.gt[0]))
        elif index in wanted:
            pred[row] = measurer.measure(frame, Box(*sequence.gt[index])).box.xywh()  # type: ignore[attr-defined]
            row += 1
        if progress:
            progress(index)
        if row == len(checked):
            break
    gt = sequence.gt[checked]
    return NetworkCheck(sequence.name, ious(pred, gt), size_ratios(pred, gt), aspect_errors(pred, gt))


@dataclass(frozen=True)
class NetworkSummary:
    """Mean IoU, median size ratio and mean aspect error over checked frames (pooled)."""

    frames: int
    iou: float
    size_ratio: float
    aspect_error: float


def summarize(checks: list[NetworkCheck]) -> NetworkSummary:
    """Pool every checked frame of `checks`."""
    if not checks or not sum(c.frames for c in checks):
        return NetworkSummary(0, float("nan"), float("nan"), float("nan"))
    iou = np.concatenate([c.iou for c in checks])
    size = np.concatenate([c.size_ratio for c in checks])
    aspect = np.concatenate([c.aspect_error for c in checks])
    return NetworkSummary(len(iou), float(iou.mean()), float(np.median(size)), float(aspect.mean()))
