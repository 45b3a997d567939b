"""Evaluation runner: tracking, resume, timing, parallel workers, reports; with fake trackers.

The fake trackers are registered when this module is imported, so worker processes that
unpickle their factories import it and see them too.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from ibfp_cli.boxes import Box
from ibfp_cli.errors import IBFPError, TrackerUnavailable
from ibfp_cli.evaluate import datasets, render_rich_table, run_evaluation
from ibfp_cli.evaluate.compare import paired_difference
from ibfp_cli.evaluate.predictions import (
    PREDICTION_COLUMNS,
    Predictions,
    has_predictions,
    read_predictions,
    write_predictions,
)
from ibfp_cli.tracking.contract import TrackerOutput
from ibfp_cli.tracking.registry import register

TEST_PID = int(os.environ.setdefault("IBFP_TEST_EVAL_PID", str(os.getpid())))
"""The pytest process; spawned workers inherit the variable, so they can tell they are not it."""
PARENT_SCORE, WORKER_SCORE = 1.0, 0.5
TRACK_DELAY_S = 0.01
DECODE_DELAY_S = 0.2

SIZE = 8.0
START = (4.0, 4.0, SIZE, SIZE)
SHIFTED = (4.0 + SIZE / 2, 4.0, SIZE, SIZE)  # half a width right: IoU 32 / 96 = 1/3, 4 px off
LONG_FRAMES, SHORT_FRAMES, SHIFT_FROM = 10, 6, 5


class ConstantTracker:
    """Reports its first box on every frame; counts inits; may simulate Ctrl-C."""

    name = "test-constant"
    inits = 0
    interrupt_at_init: int | None = None
    delay_s = 0.0

    def init(self, frame: np.ndarray, box: Box) -> None:
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        type(self).inits += 1
        self.box = box

    def update(self, frame: np.ndarray) -> TrackerOutput:
        assert frame.dtype == np.uint8 and frame.ndim == 3
        if type(self).inits == type(self).interrupt_at_init:
            raise KeyboardInterrupt
        time.sleep(self.delay_s)
        return TrackerOutput(self.box, PARENT_SCORE if os.getpid() == TEST_PID else WORKER_SCORE)


class SlowTracker(ConstantTracker):
    name = "test-slow"
    delay_s = TRACK_DELAY_S


@register("test-constant", "test: reports its first box on every frame")
def create_constant(**_: object) -> ConstantTracker:
    return ConstantTracker()


@register("test-slow", "test: constant, sleeping on each update")
def create_slow(**_: object) -> SlowTracker:
    return SlowTracker()


@register("test-unavailable", "test: needs something missing")
def create_unavailable(**_: object) -> ConstantTracker:
    raise TrackerUnavailable("test-unavailable needs a model file that is not here")


@pytest.fixture(autouse=True)
def fresh_counters(monkeypatch):
    monkeypatch.setattr(ConstantTracker, "inits", 0)
    monkeypatch.setattr(ConstantTracker, "interrupt_at_init", None)


def write_got_sequence(folder: Path, boxes: list[tuple[float, ...]]) -> None:
    folder.mkdir(parents=True)
    for index in range(len(boxes)):
        image = np.full((24, 32, 3), index * 20, np.uint8)
        cv2.imwrite(str(folder / f"{index + 1:08d}.jpg"), image)
    (folder / "groundtruth.txt").write_text("".join(",".join(map(str, b)) + "\n" for b in boxes))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """GOT-10k layout: "long" (target moves half a width at frame 5) and "short" (still)."""
    root = tmp_path / "data"
    write_got_sequence(root / "long", [START] * SHIFT_FROM + [SHIFTED] * (LONG_FRAMES - SHIFT_FROM))
    write_got_sequence(root / "short", [START] * SHORT_FRAMES)
    return root


# Scored frames: long 1..9 (IoU 1 on four, 1/3 on five), short 1..5 (IoU 1).
# IoU 1 passes 20 of the 21 thresholds (not t = 1); IoU 1/3 passes t = 0 .. 0.30 (7 of them).
LONG_AUC = (4 * 20 + 5 * 7) / (9 * 21)
SHORT_AUC = 20 / 21


def test_scores_per_sequence_and_overall(dataset, tmp_path):
    out = tmp_path / "out"
    report = run_evaluation(dataset, ["test-constant"], out, workers=1)
    rows = report.per_sequence.set_index("sequence")
    assert rows.loc["long", "frames"] == LONG_FRAMES
    assert rows.loc["long", "frames_scored"] == LONG_FRAMES - 1
    assert rows.loc["long", "auc"] == pytest.approx(LONG_AUC)
    assert rows.loc["long", "prec20"] == 1.0  # 4 px off
    assert rows.loc["long", "norm_prec"] == pytest.approx(4 / 9)  # 4 / 8 = 0.5 > 0.2 on five frames
    assert rows.loc["short", "auc"] == pytest.approx(SHORT_AUC)
    (overall,) = report.overall.itertuples()
    assert overall.tracker == "test-constant" and overall.sequences == 2
    assert overall.auc == pytest.approx((LONG_AUC + SHORT_AUC) / 2)
    assert overall.ao == pytest.approx(((4 + 5 / 3) / 9 + 1) / 2)
    # box fit: the constant box is centred on every frame (4 px off = half of its 8 px size)
    assert rows.loc["long", "centred"] == 1.0 and rows.loc["long", "size_ratio"] == 1.0
    assert rows.loc["long", "aspect_error"] == 0.0
    assert overall.auc_low <= overall.auc <= overall.auc_high
    assert report.unavailable == {}
    names = {"summary.csv", "per_sequence.csv", "report.md", "success.png", "precision.png"}
    assert {p.name for p in report.paths} == names and all(p.is_file() for p in report.paths)


def test_later_starts_are_runs_of_their_own_and_each_sequence_counts_once(dataset, tmp_path):
    out = tmp_path / "out"
    report = run_evaluation(dataset, ["test-constant"], out, workers=1, starts=2)
    runs = report.per_sequence.set_index(["sequence", "start"])
    assert sorted(runs.index) == [("long", 0), ("long", 5), ("short", 0), ("short", 3)]
    assert runs.loc[("long", 5), "frames"] == LONG_FRAMES - SHIFT_FROM
    # from frame 5 the constant box starts on the shifted target and stays on it
    assert runs.loc[("long", 5), "auc"] == pytest.approx(SHORT_AUC)
    assert runs.loc[("long", 0), "auc"] == pytest.approx(LONG_AUC)
    (overall,) = report.overall.itertuples()
    assert overall.sequences == 2
    assert overall.auc == pytest.approx(((LONG_AUC + SHORT_AUC) / 2 + SHORT_AUC) / 2)
    saved = read_predictions(out / "predictions" / "test-constant" / "long@5.csv")
    np.testing.assert_array_equal(saved.boxes, np.tile(SHIFTED, (LONG_FRAMES - SHIFT_FROM, 1)))
    assert ConstantTracker.inits == 4
    again = run_evaluation(dataset, ["test-constant"], out, workers=1, starts=2)
    assert ConstantTracker.inits == 4  # every run found saved
    assert again.overall.loc[0, "auc"] == pytest.approx(overall.auc)
    assert "temporal robustness" in (out / "report.md").read_text()


def test_against_an_earlier_report_pairs_the_sequences(dataset, tmp_path):
    run_evaluation(dataset, ["test-constant"], tmp_path / "earlier", workers=1)
    report = run_evaluation(
        dataset, ["test-constant"], tmp_path / "later", workers=1, starts=2, against=tmp_path / "earlier"
    )
    (row,) = report.against.table.itertuples()
    long_gain = (LONG_AUC + SHORT_AUC) / 2 - LONG_AUC  # the later start of "long" scores SHORT_AUC
    assert (row.tracker, row.sequences, row.better) == ("test-constant", 2, 1)
    assert row.gain == pytest.approx(long_gain / 2)
    assert row.auc - row.against_auc == pytest.approx(row.gain)
    assert row.gain_low <= row.gain <= row.gain_high
    assert row.largest_gain == f"long {long_gain:+.3f}" and row.largest_loss == "short +0.000"
    saved = (tmp_path / "later" / "against.csv").read_text()
    assert saved.splitlines()[0].startswith("tracker,sequences,auc,against_auc,gain")
    assert f"## Against {tmp_path / 'earlier'}" in (tmp_path / "later" / "report.md").read_text()


def test_against_a_folder_without_a_report_fails_before_tracking(dataset, tmp_path):
    with pytest.raises(IBFPError, match="has no per_sequence.csv: not an `ibfp eval` report folder"):
        run_evaluation(dataset, ["test-constant"], tmp_path / "out", workers=1, against=tmp_path)
    assert ConstantTracker.inits == 0 and not (tmp_path / "out").exists()


def test_paired_difference_uses_the_common_sequences():
    gain = paired_difference({"a": 0.5, "b": 0.7, "c": 0.2}, {"a": 0.4, "b": 0.7, "c": 0.4, "d": 0.9})
    assert (gain.count, gain.better) == (3, 1)
    assert gain.mean == pytest.approx(-0.1 / 3)
    assert gain.low <= gain.mean <= gain.high
    assert gain.text() == f"-0.033 (90%: {gain.low:+.3f}..{gain.high:+.3f}), better on 1 of 3"


def test_predictions_hold_every_frame_starting_from_the_ground_truth(dataset, tmp_path):
    out = tmp_path / "out"
    run_evaluation(dataset, ["test-constant"], out, workers=1, sequences=["long"])
    saved = read_predictions(out / "predictions" / "test-constant" / "long.csv")
    assert len(saved) == LONG_FRAMES
    np.testing.assert_array_equal(saved.boxes, np.tile(START, (LONG_FRAMES, 1)))
    assert saved.scores[0] == 1.0 and not saved.lost.any()
    assert not (out / "predictions" / "test-constant" / "short.csv").exists()


def test_rerun_after_an_interruption_tracks_only_what_was_not_finished(dataset, tmp_path):
    out = tmp_path / "out"
    ConstantTracker.interrupt_at_init = 2  # Ctrl-C while tracking the second sequence
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(dataset, ["test-constant"], out, workers=1)
    folder = out / "predictions" / "test-constant"
    # Longest sequence first; the interrupted one left no file, partial or not.
    assert sorted(p.name for p in folder.iterdir()) == ["long.csv"]
    ConstantTracker.interrupt_at_init = None
    ConstantTracker.inits = 0
    calls = []
    report = run_evaluation(dataset, ["test-constant"], out, workers=1, progress=lambda *a: calls.append(a))
    assert ConstantTracker.inits == 1
    assert calls == [(1, 2, "test-constant/long"), (2, 2, "test-constant/short")]
    run_evaluation(dataset, ["test-constant"], out, workers=1)
    assert ConstantTracker.inits == 1
    assert report.overall.loc[0, "auc"] == pytest.approx((LONG_AUC + SHORT_AUC) / 2)


def test_an_incomplete_predictions_file_is_tracked_again(dataset, tmp_path):
    out = tmp_path / "out"
    run_evaluation(dataset, ["test-constant"], out, workers=1)
    path = out / "predictions" / "test-constant" / "short.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    run_evaluation(dataset, ["test-constant"], out, workers=1)
    assert ConstantTracker.inits == 3
    assert len(read_predictions(path)) == SHORT_FRAMES


def test_fps_counts_tracker_calls_not_decoding(dataset, tmp_path, monkeypatch):
    read_image = datasets._read_image

    def slow_read(path: Path) -> np.ndarray:
        time.sleep(DECODE_DELAY_S)
        return read_image(path)

    monkeypatch.setattr(datasets, "_read_image", slow_read)
    out = tmp_path / "out"
    report = run_evaluation(dataset, ["test-slow"], out, workers=1, sequences=["short"])
    times_ms = read_predictions(out / "predictions" / "test-slow" / "short.csv").times_ms
    assert (times_ms[1:] >= TRACK_DELAY_S * 1000).all()
    assert (times_ms < DECODE_DELAY_S * 1000).all()
    expected_fps = SHORT_FRAMES / (times_ms.sum() / 1000)
    assert report.per_sequence.loc[0, "fps"] == pytest.approx(expected_fps)


def test_parallel_workers_give_the_same_scores(dataset, tmp_path):
    serial = run_evaluation(dataset, ["test-constant"], tmp_path / "serial", workers=1)
    parallel = run_evaluation(dataset, ["test-constant"], tmp_path / "parallel", workers=2)
    for name in ("long", "short"):
        path = tmp_path / "parallel" / "predictions" / "test-constant" / f"{name}.csv"
        saved = read_predictions(path)
        assert (saved.scores[1:] == WORKER_SCORE).all()  # tracked in a spawned worker
    columns = [c for c in serial.per_sequence.columns if c != "fps"]
    assert parallel.per_sequence[columns].equals(serial.per_sequence[columns])


def test_unavailable_trackers_are_reported_not_raised(dataset, tmp_path):
    out = tmp_path / "out"
    report = run_evaluation(dataset, ["test-unavailable", "test-constant"], out, workers=1)
    reason = "test-unavailable needs a model file that is not here"
    assert report.unavailable == {"test-unavailable": reason}
    assert list(report.overall["tracker"]) == ["test-constant"]
    assert f"- test-unavailable: {reason}" in (out / "report.md").read_text()
    table = render_rich_table(report)
    assert [c.header for c in table.columns] == [
        "tracker",
        "AUC",
        "Prec@20",
        "NormPrec@0.2",
        "AO",
        "SR0.5",
        "SR0.75",
        "FPS",
    ]
    assert table.row_count == 1
    assert table.caption == f"test-unavailable unavailable: {reason}"


def test_no_runnable_tracker_is_an_error(dataset, tmp_path):
    with pytest.raises(TrackerUnavailable, match="no tracker can run here: test-unavailable needs"):
        run_evaluation(dataset, ["test-unavailable"], tmp_path / "out", workers=1)


def test_unknown_tracker_or_sequence_is_an_error(dataset, tmp_path):
    with pytest.raises(IBFPError, match="unknown tracker 'nope'"):
        run_evaluation(dataset, ["nope"], tmp_path / "out", workers=1)
    with pytest.raises(IBFPError, match="no sequence named missing"):
        run_evaluation(dataset, ["test-constant"], tmp_path / "out", workers=1, sequences=["missing"])


def test_report_markdown_has_the_peers_layout(dataset, tmp_path):
    run_evaluation(dataset, ["test-constant", "test-slow"], tmp_path / "out", workers=1)
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Overall (2 sequences)" in text
    assert "| tracker | AUC | Prec@20 | NormPrec@0.2 | AO | SR0.5 | SR0.75 | FPS | AUC 90% interval |" in text
    assert "| tracker | Centred | Size ratio | Aspect error |" in text
    assert "| sequence | frames scored | test-constant | test-slow |" in text
    assert f"| long | {LONG_FRAMES - 1} | {LONG_AUC:.3f} | {LONG_AUC:.3f} |" in text
    with open(tmp_path / "out" / "summary.csv", newline="") as f:
        assert [row["tracker"] for row in csv.DictReader(f)] == ["test-constant", "test-slow"]


def test_one_sequence_is_counted_in_the_singular(dataset, tmp_path):
    """Issue 24.7: eval printed `(1 sequences)`."""
    report = run_evaluation(dataset, ["test-constant"], tmp_path / "out", workers=1, sequences=["short"])
    assert render_rich_table(report).title == "Tracking evaluation (1 sequence)"
    assert "## Overall (1 sequence)" in (tmp_path / "out" / "report.md").read_text()


def test_without_matplotlib_the_plots_are_skipped_with_a_hint(dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    report = run_evaluation(dataset, ["test-constant"], tmp_path / "out", workers=1)
    assert not (tmp_path / "out" / "success.png").exists()
    assert any("pip install ibfp[eval]" in note for note in report.notes)
    assert "pip install ibfp[eval]" in (tmp_path / "out" / "report.md").read_text()


def test_predictions_round_trip_exactly(tmp_path):
    predictions = Predictions(
        boxes=np.array([[1 / 3, 2.5, 10.0, 7.25], [np.nan] * 4]),
        scores=np.array([1.0, 0.123456789]),
        lost=np.array([False, True]),
        times_ms=np.array([0.5, 2 / 3]),
    )
    path = tmp_path / "p.csv"
    write_predictions(path, predictions)
    assert path.read_text().splitlines()[0] == ",".join(PREDICTION_COLUMNS)
    back = read_predictions(path)
    for field in ("boxes", "scores", "lost", "times_ms"):
        np.testing.assert_array_equal(getattr(back, field), getattr(predictions, field))
    assert has_predictions(path, 2) and not has_predictions(path, 3)
    path.write_text("frame,x\n0,1\n")
    assert not has_predictions(path, 1)
