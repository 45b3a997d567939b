"""OpenCV trackers behind the tracker contract: they follow an easy object, or say why not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import SHARED_MODELS, SMALL_SPEC

from ibfp_cli.boxes import Box, center_errors, ious
from ibfp_cli.errors import TrackerUnavailable
from ibfp_cli.media.synthetic import render_synthetic
from ibfp_cli.tracking.contract import TrackerOutput
from ibfp_cli.tracking.opencv_trackers import MODELS_ENV, NANO_BACKBONE, NANO_HEAD, VIT_MODEL, OpenCVTracker
from ibfp_cli.tracking.registry import create_tracker, tracker_names

EASY_SPEC = dataclasses.replace(SMALL_SPEC, frames=20, speed=1.5)
"""A short, slow clip every OpenCV tracker should follow."""
MIN_MEAN_IOU = 0.5
MAX_MEAN_CENTRE_ERROR = 0.5
"""Mean centre error, in target sizes sqrt(w h), of a tracker that follows the object (one that
lost it is several target sizes off)."""
UNREPEATABLE = {"mil"}
"""OpenCV's MIL draws its samples at random, with no seed to set: 40 runs on EASY_SPEC gave mean
IoU 0.45-0.77 but a mean centre error of at most 0.38 target sizes. Only the centre is checked."""


@pytest.fixture(scope="module")
def easy_clip() -> tuple[np.ndarray, np.ndarray]:
    return render_synthetic(EASY_SPEC)


def _tracked(name: str, clip: tuple[np.ndarray, np.ndarray], **options: object) -> np.ndarray:
    """(N - 1, 4) boxes of the tracker started on frame 0's true box."""
    frames, truth = clip
    tracker = create_tracker(name, **options)
    tracker.init(frames[0], Box(*truth[0]))
    outputs = [tracker.update(frame) for frame in frames[1:]]
    for output in outputs:
        assert isinstance(output.box, Box)
        assert 0.0 <= output.score <= 1.0
    return np.array([o.box.xywh() for o in outputs])


def _mean_iou(name: str, clip: tuple[np.ndarray, np.ndarray], **options: object) -> float:
    return float(ious(_tracked(name, clip, **options), clip[1][1:]).mean())


def test_opencv_trackers_are_registered() -> None:
    assert {"mil", "kcf", "csrt", "nano", "vit"} <= set(tracker_names())


@pytest.mark.parametrize("name", ["mil", "kcf", "csrt"])
def test_classic_tracker_follows_easy_object(name: str, easy_clip) -> None:
    tracked, truth = _tracked(name, easy_clip, device="cpu", weights=None), easy_clip[1][1:]
    sizes = np.sqrt(truth[:, 2] * truth[:, 3])
    assert np.mean(center_errors(tracked, truth) / sizes) < MAX_MEAN_CENTRE_ERROR
    if name not in UNREPEATABLE:
        assert ious(tracked, truth).mean() > MIN_MEAN_IOU


class _ScriptedOpenCVTracker:
    """Stands in for a cv2 tracker: records what it is given, answers from a script."""

    def __init__(self, answers: list[tuple[bool, tuple[int, int, int, int]]], score: float) -> None:
        self.answers = iter(answers)
        self.score = score
        self.seen: list[tuple[np.ndarray, object]] = []

    def init(self, frame: np.ndarray, rect: tuple[int, int, int, int]) -> None:
        self.seen.append((frame, rect))

    def update(self, frame: np.ndarray) -> tuple[bool, tuple[int, int, int, int]]:
        self.seen.append((frame, None))
        return next(self.answers)

    def getTrackingScore(self) -> float:  # noqa: N802  (OpenCV's name)
        return self.score


def test_adapter_gives_opencv_bgr_frames_and_integer_boxes() -> None:
    cv = _ScriptedOpenCVTracker([(True, (11, 21, 30, 40))], score=0.3)
    tracker = OpenCVTracker("scripted", lambda: cv, has_score=False)
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red
    tracker.init(rgb, Box(10.4, 20.6, 29.5, 40.2))
    frame, rect = cv.seen[0]
    assert rect == (10, 21, 30, 40) and all(type(v) is int for v in rect)
    assert frame[0, 0].tolist() == [0, 0, 255]  # red, in OpenCV's BGR order
    output = tracker.update(rgb)
    assert output == TrackerOutput(Box(11.0, 21.0, 30.0, 40.0), 1.0, lost=False)


def test_adapter_keeps_previous_box_when_lost() -> None:
    answers = [(True, (12, 20, 30, 40)), (False, (0, 0, 0, 0))]
    tracker = OpenCVTracker("scripted", lambda: _ScriptedOpenCVTracker(answers, 0.3), False)
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    tracker.init(frame, Box(10, 20, 30, 40))
    tracker.update(frame)
    assert tracker.update(frame) == TrackerOutput(Box(12.0, 20.0, 30.0, 40.0), 0.0, lost=True)


def test_adapter_reports_the_dnn_trackers_own_score() -> None:
    tracker = OpenCVTracker("scripted", lambda: _ScriptedOpenCVTracker([(True, (1, 2, 3, 4))], 0.42), True)
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    tracker.init(frame, Box(1, 2, 3, 4))
    assert tracker.update(frame).score == pytest.approx(0.42)


@pytest.mark.parametrize("name", ["nano", "vit"])
def test_dnn_tracker_without_model_files_is_unavailable(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(MODELS_ENV, raising=False)
    with pytest.raises(TrackerUnavailable, match=MODELS_ENV):
        create_tracker(name)
    with pytest.raises(TrackerUnavailable, match=str(tmp_path)) as excinfo:
        create_tracker(name, models_dir=tmp_path)
    assert "\n" not in str(excinfo.value)


def test_models_dir_option_wins_over_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(TrackerUnavailable, match="empty"):
        create_tracker("vit", models_dir=tmp_path / "empty")


def test_corrupt_model_file_is_unavailable(tmp_path) -> None:
    (tmp_path / VIT_MODEL).write_bytes(b"not an onnx model")
    with pytest.raises(TrackerUnavailable, match="vit"):
        create_tracker("vit", models_dir=tmp_path)


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["nano", "vit"])
def test_dnn_tracker_follows_easy_object(name: str, easy_clip, monkeypatch) -> None:
    files = {"nano": (NANO_BACKBONE, NANO_HEAD), "vit": (VIT_MODEL,)}[name]
    if not all((SHARED_MODELS / f).is_file() for f in files):
        pytest.skip(f"{name}'s model files are not in {SHARED_MODELS}")
    monkeypatch.setenv(MODELS_ENV, str(SHARED_MODELS))
    assert _mean_iou(name, easy_clip) > MIN_MEAN_IOU


def test_second_init_starts_a_fresh_opencv_tracker() -> None:
    made: list[_ScriptedOpenCVTracker] = []

    def make() -> _ScriptedOpenCVTracker:
        made.append(_ScriptedOpenCVTracker([(True, (5, 5, 9, 9))], 1.0))
        return made[-1]

    tracker = OpenCVTracker("scripted", make, has_score=False)
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    tracker.init(frame, Box(1, 1, 4, 4))
    tracker.init(frame, Box(2, 2, 4, 4))
    assert len(made) == 2 and [rect for _, rect in made[1].seen] == [(2, 2, 4, 4)]
