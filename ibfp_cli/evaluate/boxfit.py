"""Box fit, measured apart from tracking: does a box that is on the object also fit it?

Two views. `box_fit` reads a tracker's saved boxes: on the frames where its centre is on the
target (within half a target size of the true centre), how its size and aspect compare with
the truth. `network_check` asks the IBFP network alone: search crops centred on the true box at
its true scale, as the tracker would cut them, and the box the head decodes there, with no
smoothing, no online branch and no feedback from earlier frames. It also cuts the crops as if
the tracker's box were too small or too large (SCALE_PROBES): how much of such a scale error
the network's box corrects in one frame, and so the size a tracker re-cropping at its own box
settles at, which a small bias and a weak correction together can pull far from 1. And it cuts
the crop as the tracker does after losing the target (REFIND_GROWTH times wider, centred
REFIND_OFFSET target sizes beside it): how often the network finds the target again there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..boxes import Box, center_errors, ious
from ..config import TrackerConfig
from .datasets import Sequence
from .metrics import scored_frames

CENTRED_WITHIN = 0.5
"""A box is centred when its centre error is at most this many target sizes, sqrt(w h)."""
NETWORK_CHECK_EVERY = 5
"""The network check looks at every 5th scored frame (issue 11's measurement)."""
SCALE_PROBES = (0.8, 1.25)
"""Crops are also cut for a box of these multiples of the true size (same centre): a tracker
whose box is 20% too small or 25% too large, as the measured shrink on unseen footage."""
REFIND_GROWTH = TrackerConfig().lost_search_max
"""The re-detection crop is this many times wider than the normal one: the tracker's crop after a
few lost frames (spec 6), where the target is as many times smaller than in any normal crop."""
REFIND_OFFSET = 1.0
"""...centred this many target sizes to the right of the true box: the target has moved meanwhile."""


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


def on_target(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each (N, 4) box's centre is within CENTRED_WITHIN target sizes of the
    true box's; a missing or empty box never is."""
    valid = np.all(np.isfinite(pred), axis=1) & (pred[:, 2] > 0) & (pred[:, 3] > 0)
    errors = np.full(len(gt), np.inf)
    errors[valid] = center_errors(pred[valid], gt[valid])
    return errors <= CENTRED_WITHIN * np.sqrt(gt[:, 2] * gt[:, 3])


def box_fit(pred: np.ndarray, gt: np.ndarray, absent: np.ndarray | None = None) -> BoxFit:
    """Box fit of (N, 4) predictions against (N, 4) ground truth on the protocol's scored frames."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    mask = scored_frames(gt, absent)
    if not mask.any():
        return NO_FIT
    pred, gt = pred[mask], gt[mask]
    centred = on_target(pred, gt)
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

    iou, size_ratio and aspect_error are per checked frame (size ratio and aspect as in BoxFit);
    probe_size_ratio (len(SCALE_PROBES), frames): the size ratio when the crop was cut for a box
    of each SCALE_PROBES multiple of the true size; refound (frames,) bool: whether the box centre
    is within CENTRED_WITHIN target sizes of the truth's in the re-detection crop.
    """

    sequence: str
    iou: np.ndarray
    size_ratio: np.ndarray
    aspect_error: np.ndarray
    probe_size_ratio: np.ndarray
    refound: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.iou)


class BoxMeasurer(Protocol):
    """What `network_check` needs of a tracker: start on a box, then the network's box for a
    known true box (`IBFPTracker` with its online branch off is one)."""

    def init(self, frame: np.ndarray, box: Box) -> None: ...

    def measure(self, frame: np.ndarray, box: Box, growth: float = 1.0) -> object: ...


def network_check(
    sequence: Sequence,
    measurer: BoxMeasurer,
    every: int = NETWORK_CHECK_EVERY,
    progress: Callable[[int], None] | None = None,
) -> NetworkCheck:
    """Start `measurer` on frame 0's true box, then on every `every`-th scored frame decode the
    box the network finds around the true box, around the SCALE_PROBES boxes (the true box
    scaled about its centre) and in the re-detection crop. `measure` returns an object with `.box`."""
    checked = np.flatnonzero(scored_frames(sequence.gt, sequence.absent))[every - 1 :: every]
    wanted = set(checked.tolist())
    pred = np.full((len(checked), 4), np.nan)
    probed = np.full((len(SCALE_PROBES), len(checked), 4), np.nan)
    refind = np.full((len(checked), 4), np.nan)
    row = 0
    for index, frame in enumerate(sequence.frames()):
        if index == 0:
            measurer.init(frame, Box(*sequence.gt[0]))
        elif index in wanted:
            truth = Box(*sequence.gt[index])
            pred[row] = measurer.measure(frame, truth).box.xywh()  # type: ignore[attr-defined]
            for p, scale in enumerate(SCALE_PROBES):
                box = Box.from_center(truth.cx, truth.cy, truth.w * scale, truth.h * scale)
                probed[p, row] = measurer.measure(frame, box).box.xywh()  # type: ignore[attr-defined]
            beside = Box(truth.x + REFIND_OFFSET * np.sqrt(truth.w * truth.h), truth.y, truth.w, truth.h)
            refind[row] = measurer.measure(frame, beside, REFIND_GROWTH).box.xywh()  # type: ignore[attr-defined]
            row += 1
        if progress:
            progress(index)
        if row == len(checked):
            break
    gt = sequence.gt[checked]
    probe_sizes = np.stack([size_ratios(p, gt) for p in probed])
    return NetworkCheck(
        sequence.name,
        ious(pred, gt),
        size_ratios(pred, gt),
        aspect_errors(pred, gt),
        probe_sizes,
        on_target(refind, gt),
    )


@dataclass(frozen=True)
class NetworkSummary:
    """Pooled over checked frames: mean IoU, median size ratio, mean aspect error; and from the
    scale probes, `scale_correction`: the share of a scale error of the crop that the network's
    box corrects (1: it finds the true size whatever the crop; 0: it only repeats the crop's
    size), and `settled_size`: the size ratio at which a tracker cutting each crop at its last
    box stops changing size, exp(log(size_ratio) / scale_correction) (NaN if it never corrects);
    `refound`: the share of re-detection crops whose box is back on the target."""

    frames: int
    iou: float
    size_ratio: float
    aspect_error: float
    scale_correction: float
    settled_size: float
    refound: float


def summarize(checks: list[NetworkCheck]) -> NetworkSummary:
    """Pool every checked frame of `checks`."""
    nan = float("nan")
    if not checks or not sum(c.frames for c in checks):
        return NetworkSummary(0, nan, nan, nan, nan, nan, nan)
    iou = np.concatenate([c.iou for c in checks])
    size = np.concatenate([c.size_ratio for c in checks])
    aspect = np.concatenate([c.aspect_error for c in checks])
    probes = np.concatenate([c.probe_size_ratio for c in checks], axis=1)
    # log(size) against log(crop scale) through the median at each scale: slope 1 = no correction
    low, high = (float(np.median(np.log(p))) for p in probes[[0, -1]])
    correction = float(1 - (high - low) / (np.log(SCALE_PROBES[-1]) - np.log(SCALE_PROBES[0])))
    corrects = correction > 0 and not np.isclose(correction, 0.0)  # not rounding noise on a zero
    median_size = float(np.median(size))
    with np.errstate(over="ignore"):  # a correction near 0 never settles: inf
        settled = float(np.exp(np.log(median_size) / correction)) if corrects else nan
    return NetworkSummary(
        frames=len(iou),
        iou=float(iou.mean()),
        size_ratio=median_size,
        aspect_error=float(aspect.mean()),
        scale_correction=correction,
        settled_size=settled,
        refound=float(np.concatenate([c.refound for c in checks]).mean()),
    )
