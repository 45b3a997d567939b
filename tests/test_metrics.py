"""Tracking metrics: hand-computed cases and agreement with the got10k toolkit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ibfp_cli.boxes import center_errors, ious
from ibfp_cli.evaluate.metrics import (
    NORM_PRECISION_THRESHOLDS,
    PRECISION_THRESHOLDS,
    SUCCESS_THRESHOLDS,
    aggregate,
    average_overlap,
    normalized_center_errors,
    normalized_precision_at,
    precision_at,
    precision_curve,
    score_sequence,
    scored_frames,
    success_auc,
    success_curve,
    success_rate,
)

got10k_metrics = pytest.importorskip("got10k.utils.metrics")
got10k_otb = pytest.importorskip("got10k.experiments.otb")
got10k_got = pytest.importorskip("got10k.experiments.got10k")

TOLERANCE = 1e-6
GT_BOX = (10.0, 20.0, 40.0, 30.0)


def repeated(box: tuple[float, float, float, float], frames: int) -> np.ndarray:
    return np.tile(np.array(box, dtype=np.float64), (frames, 1))


def random_boxes(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth and predictions from exact hits to far misses."""
    gt = np.column_stack([rng.uniform(0, 300, (count, 2)), rng.uniform(5, 100, (count, 2))])
    noise = rng.normal(0, 1, (count, 4)) * rng.choice([0.0, 2.0, 10.0, 60.0], (count, 1))
    pred = gt + noise
    pred[:, 2:] = np.abs(pred[:, 2:]) + 1
    return pred, gt


def test_thresholds_are_the_standard_grids():
    assert len(SUCCESS_THRESHOLDS) == 21
    assert SUCCESS_THRESHOLDS[0] == 0 and SUCCESS_THRESHOLDS[-1] == 1
    assert list(PRECISION_THRESHOLDS) == list(range(51))
    assert len(NORM_PRECISION_THRESHOLDS) == 51 and NORM_PRECISION_THRESHOLDS[20] == 0.2


def test_perfect_boxes_miss_only_the_iou_threshold_one():
    # IoU > t is strict, so IoU 1 fails t = 1: 20 of the 21 points are 1.
    curve = success_curve(np.ones(5))
    assert list(curve) == [1.0] * 20 + [0.0]
    assert success_auc(np.ones(5)) == pytest.approx(20 / 21, abs=1e-15)
    score = score_sequence(repeated(GT_BOX, 6), repeated(GT_BOX, 6))
    assert score.frames_scored == 5
    assert score.auc == pytest.approx(20 / 21, abs=1e-15)
    assert score.prec20 == 1.0 and score.norm_prec == 1.0
    assert score.ao == 1.0 and score.sr50 == 1.0 and score.sr75 == 1.0


def test_half_width_boxes():
    # Same top-left corner, half the width: IoU 0.5, centre 10 px (a quarter width) away.
    x, y, w, h = GT_BOX
    score = score_sequence(repeated((x, y, w / 2, h), 4), repeated(GT_BOX, 4))
    assert list(score.success) == [1.0] * 10 + [0.0] * 11  # 0 .. 0.45 pass; 0.5 is not > 0.5
    assert score.auc == pytest.approx(10 / 21, abs=1e-15)
    assert score.ao == 0.5 and score.sr50 == 0.0 and score.sr75 == 0.0
    assert list(score.precision) == [0.0] * 10 + [1.0] * 41  # error 10 <= t from t = 10
    assert score.prec20 == 1.0
    assert score.norm_prec == 0.0  # 10 / 40 = 0.25 > 0.2


def test_precision_counts_errors_equal_to_the_threshold():
    errors = np.array([19.5, 20.0, 20.5, 0.0])
    assert precision_at(errors, 20) == 0.75
    assert precision_curve(errors)[19] == 0.25
    assert precision_curve(errors)[20] == 0.75


def test_normalized_error_divides_each_axis_by_the_ground_truth_size():
    gt = repeated((0.0, 0.0, 100.0, 50.0), 3)
    pred = np.array([[10.0, 5.0, 100.0, 50.0], [20.0, 0.0, 100.0, 50.0], [0.0, 11.0, 100.0, 50.0]])
    errors = normalized_center_errors(pred, gt)
    np.testing.assert_allclose(errors, [np.hypot(0.1, 0.1), 0.2, 0.22], atol=1e-15)
    assert normalized_precision_at(errors) == pytest.approx(2 / 3)


def test_first_frame_and_absent_frames_are_not_scored():
    gt = repeated(GT_BOX, 7)
    gt[2] = np.nan
    gt[3, 2] = 0.0  # empty box
    absent = np.zeros(7, dtype=bool)
    absent[4] = True  # flagged (occluded / out of view)
    expected = np.array([False, True, False, False, False, True, True])
    np.testing.assert_array_equal(scored_frames(gt, absent), expected)
    pred = repeated((500.0, 500.0, 5.0, 5.0), 7)  # a miss wherever it is scored
    pred[expected] = GT_BOX
    score = score_sequence(pred, gt, absent)
    assert score.frames_scored == 3
    assert score.ao == 1.0


def test_missing_predictions_count_as_iou_zero_and_infinite_error():
    pred = repeated(GT_BOX, 5)
    pred[2] = np.nan
    score = score_sequence(pred, repeated(GT_BOX, 5))
    assert score.frames_scored == 4
    assert score.ao == 0.75
    assert list(score.precision) == [0.75] * 51  # inf is never <= a threshold
    assert score.norm_prec == 0.75
    assert score.auc == pytest.approx(0.75 * 20 / 21)


def test_a_sequence_without_scored_frames_is_left_out_of_the_mean():
    empty = score_sequence(repeated(GT_BOX, 1), repeated(GT_BOX, 1))
    assert empty.frames_scored == 0 and np.isnan(empty.auc)
    perfect = score_sequence(repeated(GT_BOX, 3), repeated(GT_BOX, 3))
    assert aggregate([perfect, empty]).auc == perfect.auc


def test_overall_is_the_mean_over_sequences_not_over_frames():
    short_hit = score_sequence(repeated(GT_BOX, 3), repeated(GT_BOX, 3))  # 2 frames, IoU 1
    miss = repeated((0.0, 0.0, 1.0, 1.0), 11)
    long_miss = score_sequence(miss, repeated(GT_BOX, 11))  # 10 frames, IoU 0
    overall = aggregate([short_hit, long_miss])
    assert overall.frames_scored == 12
    assert overall.auc == pytest.approx((20 / 21 + 0.0) / 2)
    assert overall.ao == 0.5 and overall.sr50 == 0.5
    assert overall.prec20 == 0.5


def test_iou_and_centre_error_agree_with_got10k():
    pred, gt = random_boxes(np.random.default_rng(0), 500)
    expected_ious = got10k_metrics.rect_iou(pred.copy(), gt.copy())
    np.testing.assert_allclose(ious(pred, gt), expected_ious, atol=TOLERANCE)
    expected_errors = got10k_metrics.center_error(pred, gt)
    np.testing.assert_allclose(center_errors(pred, gt), expected_errors, atol=TOLERANCE)


def test_sequence_scores_agree_with_the_got10k_otb_and_got10k_experiments():
    rng = np.random.default_rng(1)
    pred, gt = random_boxes(rng, 300)
    absent = rng.random(300) < 0.1
    gt[absent] = np.nan
    score = score_sequence(pred, gt, absent)

    keep = ~absent
    keep[0] = False
    frame_ious = got10k_metrics.rect_iou(pred[keep], gt[keep])
    errors = got10k_metrics.center_error(pred[keep], gt[keep])
    otb = SimpleNamespace(nbins_iou=21, nbins_ce=51)  # ExperimentOTB's settings, no dataset needed
    succ, prec = got10k_otb.ExperimentOTB._calc_curves(otb, frame_ious, errors)
    ao, sr, _, _ = got10k_got.ExperimentGOT10k._evaluate(None, frame_ious, np.array([]))

    assert score.frames_scored == keep.sum()
    np.testing.assert_allclose(score.success, succ, atol=TOLERANCE)
    np.testing.assert_allclose(score.precision, prec, atol=TOLERANCE)
    assert score.auc == pytest.approx(np.mean(succ), abs=TOLERANCE)
    assert score.prec20 == pytest.approx(prec[20], abs=TOLERANCE)
    assert score.ao == pytest.approx(ao, abs=TOLERANCE)
    assert score.sr50 == pytest.approx(sr, abs=TOLERANCE)
    assert score.sr75 == pytest.approx(np.mean(frame_ious > 0.75), abs=TOLERANCE)


def test_success_rate_and_average_overlap():
    values = np.array([0.5, 0.75, 0.8, 0.0])
    assert success_rate(values, 0.5) == 0.5
    assert success_rate(values, 0.75) == 0.25
    assert average_overlap(values) == pytest.approx(2.05 / 4)
