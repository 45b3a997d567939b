"""Tracking scores: OTB success and precision, LaSOT normalized precision, GOT-10k AO and SR.

Protocol (one-pass evaluation, as in ``../shared/data/sot/PEERS.md``): the tracker starts from
the ground-truth box on frame 0, which is therefore not scored; frames whose ground truth is
absent (NaN, empty, or flagged) are not scored either; a missing (NaN) prediction on a scored
frame counts as IoU 0 and an infinite centre error. Overall scores are means over sequences.

Two differences from the got10k toolkit's GOT-10k experiment, both deliberate: overall AO and
SR are means over sequences here (its report pools all frames), and boxes are not clipped to
the image first (it clips; this matters only for boxes reaching outside the frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..boxes import center_errors, ious

SUCCESS_THRESHOLDS = np.linspace(0, 1, 21)
"""IoU thresholds of the OTB success plot (Wu et al., TPAMI 2015; got10k ``nbins_iou = 21``)."""

PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
"""Centre-error thresholds in pixels of the OTB precision plot, 0..50 px."""

PRECISION_AT_PX = 20.0
"""The OTB precision score is the precision plot's value at 20 px."""

NORM_PRECISION_THRESHOLDS = np.linspace(0, 0.5, 51)
"""Thresholds on the size-normalised centre error (LaSOT, Fan et al., CVPR 2019)."""

NORM_PRECISION_AT = 0.2
"""LaSOT-style normalized precision is reported at 0.2 of the ground-truth size."""

SR_LOW, SR_HIGH = 0.5, 0.75
"""GOT-10k success-rate thresholds (Huang et al., TPAMI 2021): SR0.5 and SR0.75, IoU > t."""


def success_curve(frame_ious: np.ndarray) -> np.ndarray:
    """Fraction of frames whose IoU exceeds each of SUCCESS_THRESHOLDS (strictly)."""
    values = np.asarray(frame_ious, dtype=np.float64).reshape(-1, 1)
    return np.mean(values > SUCCESS_THRESHOLDS[None, :], axis=0)


def success_auc(frame_ious: np.ndarray) -> float:
    """Area under the success plot: the mean of its 21 points."""
    return float(np.mean(success_curve(frame_ious)))


def precision_curve(errors: np.ndarray) -> np.ndarray:
    """Fraction of frames whose centre error is at most each of PRECISION_THRESHOLDS."""
    values = np.asarray(errors, dtype=np.float64).reshape(-1, 1)
    return np.mean(values <= PRECISION_THRESHOLDS[None, :], axis=0)


def precision_at(errors: np.ndarray, pixels: float = PRECISION_AT_PX) -> float:
    """Fraction of frames whose centre error is at most `pixels`."""
    return float(np.mean(np.asarray(errors, dtype=np.float64) <= pixels))


def normalized_center_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre distance with each axis divided by the ground-truth box's width or height."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    offset = (pred[:, :2] + pred[:, 2:] / 2) - (gt[:, :2] + gt[:, 2:] / 2)
    return np.hypot(*(offset / gt[:, 2:]).T)


def normalized_precision_curve(norm_errors: np.ndarray) -> np.ndarray:
    """Fraction of frames whose normalised centre error is at most each threshold."""
    values = np.asarray(norm_errors, dtype=np.float64).reshape(-1, 1)
    return np.mean(values <= NORM_PRECISION_THRESHOLDS[None, :], axis=0)


def normalized_precision_at(norm_errors: np.ndarray, at: float = NORM_PRECISION_AT) -> float:
    """Fraction of frames whose normalised centre error is at most `at`."""
    return float(np.mean(np.asarray(norm_errors, dtype=np.float64) <= at))


def average_overlap(frame_ious: np.ndarray) -> float:
    """GOT-10k AO: the mean IoU."""
    return float(np.mean(np.asarray(frame_ious, dtype=np.float64)))


def success_rate(frame_ious: np.ndarray, threshold: float) -> float:
    """GOT-10k SR: the fraction of frames whose IoU exceeds `threshold`."""
    return float(np.mean(np.asarray(frame_ious, dtype=np.float64) > threshold))


@dataclass(frozen=True, eq=False)
class SequenceScore:
    """One tracker's scores on one sequence, or (from `aggregate`) the mean over sequences.

    Curves are sampled at SUCCESS_THRESHOLDS, PRECISION_THRESHOLDS and
    NORM_PRECISION_THRESHOLDS; they are NaN when no frame could be scored.
    """

    frames_scored: int
    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray
    ao: float
    sr50: float
    sr75: float

    @property
    def auc(self) -> float:
        """Success AUC (mean of the 21-point success curve)."""
        return float(np.mean(self.success))

    @property
    def prec20(self) -> float:
        """Precision at 20 px."""
        return float(np.interp(PRECISION_AT_PX, PRECISION_THRESHOLDS, self.precision))

    @property
    def norm_prec(self) -> float:
        """Normalized precision at 0.2."""
        return float(np.interp(NORM_PRECISION_AT, NORM_PRECISION_THRESHOLDS, self.norm_precision))


def scored_frames(gt: np.ndarray, absent: np.ndarray | None = None) -> np.ndarray:
    """Mask of the frames the protocol scores: not frame 0, ground truth present and non-empty."""
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    mask = np.all(np.isfinite(gt), axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if absent is not None:
        mask &= ~np.asarray(absent, dtype=bool)
    mask[:1] = False
    return mask


def score_sequence(pred: np.ndarray, gt: np.ndarray, absent: np.ndarray | None = None) -> SequenceScore:
    """Score (N, 4) x, y, w, h predictions against (N, 4) ground truth of one sequence."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if pred.shape != gt.shape:
        raise ValueError(f"{len(pred)} predictions for {len(gt)} ground-truth frames")
    mask = scored_frames(gt, absent)
    if not mask.any():
        return _empty_score()
    pred, gt = pred[mask], gt[mask]
    missing = ~np.all(np.isfinite(pred), axis=1)
    frame_ious = np.where(missing, 0.0, ious(pred, gt))
    errors = np.where(missing, np.inf, center_errors(pred, gt))
    norm_errors = np.where(missing, np.inf, normalized_center_errors(pred, gt))
    return SequenceScore(
        frames_scored=int(mask.sum()),
        success=success_curve(frame_ious),
        precision=precision_curve(errors),
        norm_precision=normalized_precision_curve(norm_errors),
        ao=average_overlap(frame_ious),
        sr50=success_rate(frame_ious, SR_LOW),
        sr75=success_rate(frame_ious, SR_HIGH),
    )


def aggregate(scores: Sequence[SequenceScore]) -> SequenceScore:
    """Mean over the sequences that have scored frames (curves point-wise, AO and SR too)."""
    scored = [s for s in scores if s.frames_scored > 0]
    if not scored:
        return _empty_score()
    return SequenceScore(
        frames_scored=sum(s.frames_scored for s in scored),
        success=np.mean([s.success for s in scored], axis=0),
        precision=np.mean([s.precision for s in scored], axis=0),
        norm_precision=np.mean([s.norm_precision for s in scored], axis=0),
        ao=float(np.mean([s.ao for s in scored])),
        sr50=float(np.mean([s.sr50 for s in scored])),
        sr75=float(np.mean([s.sr75 for s in scored])),
    )


def _empty_score() -> SequenceScore:
    return SequenceScore(
        frames_scored=0,
        success=np.full(SUCCESS_THRESHOLDS.shape, np.nan),
        precision=np.full(PRECISION_THRESHOLDS.shape, np.nan),
        norm_precision=np.full(NORM_PRECISION_THRESHOLDS.shape, np.nan),
        ao=float("nan"),
        sr50=float("nan"),
        sr75=float("nan"),
    )
