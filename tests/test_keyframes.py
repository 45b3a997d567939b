"""Keyframe corrections: loading them, re-tracking both ways between them, incrementally."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ibfp_cli.annotate.keyframes import (
    Keyframe,
    RetrackConfig,
    Span,
    combined_keyframes,
    keyframes_of,
    load_keyframes,
    retrack,
    retrack_to_file,
)
from ibfp_cli.annotate.pipeline import Seed, track_video
from ibfp_cli.annotations import Annotations, BoxRecord, VideoMeta
from ibfp_cli.boxes import Box, iou, ious
from ibfp_cli.errors import BoxError, FormatError, IBFPError, TrackerUnavailable
from ibfp_cli.formats import read_annotations, write_annotations
from ibfp_cli.media.synthetic import SyntheticSpec, write_synthetic_video
from ibfp_cli.media.video import probe
from ibfp_cli.tracking import registry
from ibfp_cli.tracking.contract import TrackerOutput
from ibfp_cli.tracking.weights import shipped_weights

SPEC = SyntheticSpec(width=160, height=120, frames=60, object_size=(32, 24), speed=2.0, seed=11)
FRAMES = SPEC.frames
DRIFT = 2.0
"""The drifting test tracker moves its box this many pixels right per frame."""
MIN_MEAN_IOU = 0.5

KF0 = Keyframe(0, 1, Box(10, 50, 20, 16))
KF30 = Keyframe(30, 1, Box(40, 40, 20, 16))
KF45 = Keyframe(45, 1, Box(60, 30, 20, 16))
WHOLE = RetrackConfig(rejoin_frames=0)
"""Every pass runs its whole stretch (no stop where it rejoins the previous run)."""


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 160x120, 60-frame generated clip and its true boxes."""
    path = tmp_path_factory.mktemp("keyframes") / "clip.mp4"
    return path, write_synthetic_video(path, SPEC)


class _DriftTracker:
    """Ignores the pixels: its box drifts DRIFT px right per frame from the box it was
    started on, and its score falls with the distance (times a confidence per start box)."""

    name = "drift"

    def __init__(self, inits: list[Box], confidence: Callable[[Box], float]) -> None:
        self.inits = inits
        self.confidence = confidence

    def init(self, frame: np.ndarray, box: Box) -> None:
        self.inits.append(box)
        self.start, self.steps = box, 0

    def update(self, frame: np.ndarray) -> TrackerOutput:
        self.steps += 1
        return TrackerOutput(_drifted(self.start, self.steps), self._score(self.steps))

    def _score(self, steps: int) -> float:
        return self.confidence(self.start) / (1 + steps)


def _drifted(box: Box, steps: int) -> Box:
    return Box(box.x + DRIFT * steps, box.y, box.w, box.h)


@pytest.fixture
def drift(monkeypatch) -> tuple[list[Box], dict[Box, float]]:
    """Registers tracker "drift"; yields its log of init boxes and its confidence per start box
    (default 1)."""
    inits: list[Box] = []
    confidence: dict[Box, float] = {}
    factory = lambda **_: _DriftTracker(inits, lambda box: confidence.get(box, 1.0))  # noqa: E731
    monkeypatch.setitem(registry._REGISTRY, "drift", (factory, "test double: drifts right"))
    return inits, confidence


def _expected(frame: int, start: Keyframe, confidence: float = 1.0) -> tuple[Box, float]:
    steps = abs(frame - start.frame)
    return _drifted(start.box, steps), confidence / (1 + steps)


# ---- re-tracking between keyframes ------------------------------------------------------


def test_keyframe_splits_drift_between_the_nearer_passes(video, drift) -> None:
    path, _ = video
    inits, _ = drift
    result = retrack(path, [KF0, KF30], tracker="drift")
    track = result.annotations.track(1)
    assert [r.frame for r in track] == list(range(FRAMES))
    for r in track[1:30]:
        nearer = KF0 if r.frame - KF0.frame <= KF30.frame - r.frame else KF30
        assert (r.box, r.score) == _expected(r.frame, nearer), r.frame
    for r in track[31:]:
        assert (r.box, r.score) == _expected(r.frame, KF30), r.frame
    assert track[29].box == Box(KF30.box.x + DRIFT, *KF30.box.xywh()[1:])  # not 58 px off
    assert track[15].box == _drifted(KF0.box, 15)  # equally near: the forward pass
    assert result.retracked == (Span(1, 1, 29), Span(1, 31, FRAMES - 1))
    assert inits == [KF0.box, KF30.box, KF30.box]  # forward from 0 and 30, backward from 30


def test_the_more_confident_pass_wins_even_from_farther(video, drift) -> None:
    path, _ = video
    _, confidence = drift
    confidence[KF30.box] = 0.01
    track = retrack(path, [KF0, KF30], tracker="drift").annotations.track(1)
    for r in track[1:30]:
        assert (r.box, r.score) == _expected(r.frame, KF0), r.frame
    assert (track[31].box, track[31].score) == _expected(31, KF30, 0.01)


def test_a_lost_box_never_beats_a_found_one(video, monkeypatch) -> None:
    path, _ = video

    class Losing(_DriftTracker):
        def update(self, frame: np.ndarray) -> TrackerOutput:
            output = super().update(frame)
            return TrackerOutput(output.box, 1.0, lost=self.start == KF0.box)

    monkeypatch.setitem(registry._REGISTRY, "losing", (lambda **_: Losing([], lambda _: 1.0), "test double"))
    track = retrack(path, [KF0, KF30], tracker="losing").annotations.track(1)
    assert all(r.box == _drifted(KF30.box, 30 - r.frame) for r in track[1:30])
    assert not any(r.lost for r in track)


def test_real_tracker_follows_the_object_both_ways_from_one_keyframe(video) -> None:
    path, truth = video
    info = probe(path)
    middle = Keyframe(30, 1, Box(*truth[30]))
    result = retrack(path, [middle], tracker="kcf")
    records = result.annotations.records
    assert [r.frame for r in records] == list(range(FRAMES))
    assert records[30] == BoxRecord(30, 1, middle.box, 1.0, False, records[30].time_s, keyframe=True)
    assert [r.time_s for r in records] == pytest.approx(np.arange(FRAMES) / info.fps)
    tracked = np.array([r.box.xywh() for r in records])
    assert ious(tracked[:30], truth[:30]).mean() > MIN_MEAN_IOU  # backward
    assert ious(tracked[31:], truth[31:]).mean() > MIN_MEAN_IOU  # forward
    assert result.retracked == (Span(1, 0, 29), Span(1, 31, FRAMES - 1))


def test_backward_tracking_in_small_chunks_matches_one_chunk(video) -> None:
    path, truth = video
    keyframes = [Keyframe(5, 1, Box(*truth[5])), Keyframe(50, 1, Box(*truth[50]))]
    frame_bytes = SPEC.width * SPEC.height * 3
    whole = retrack(path, keyframes, tracker="kcf")
    chunked = retrack(path, keyframes, tracker="kcf", buffer_bytes=7 * frame_bytes)
    assert chunked.annotations.records == whole.annotations.records


def test_progress_counts_the_frames_of_both_sweeps(video, drift) -> None:
    path, _ = video
    reports: list[tuple[int, int]] = []
    retrack(path, [KF0, KF30], tracker="drift", progress=lambda *r: reports.append(r))
    total = FRAMES + KF30.frame  # forward over 0..59, backward over 30..1
    assert reports == [(i, total) for i in range(1, total + 1)]


def test_a_tracker_that_cannot_run_fails_before_decoding(video, monkeypatch) -> None:
    path, _ = video

    def unavailable(**_: object) -> None:
        raise TrackerUnavailable("needs model files")

    monkeypatch.setitem(registry._REGISTRY, "missing", (unavailable, "test double"))
    reports: list[tuple[int, int]] = []
    with pytest.raises(TrackerUnavailable, match="model files"):
        retrack(path, [KF30], tracker="missing", progress=lambda *r: reports.append(r))
    assert reports == []


def test_objects_have_their_own_keyframes_and_labels(video, drift) -> None:
    path, _ = video
    other = [Keyframe(10, 2, Box(5, 5, 20, 20), "dog"), Keyframe(20, 2, Box(8, 8, 20, 20))]
    annotations = retrack(path, [KF0, KF30, *other], tracker="drift").annotations
    assert annotations.labels() == {1: "object", 2: "dog"}
    two = annotations.track(2)
    assert [r.frame for r in two] == list(range(FRAMES))
    assert [r.frame for r in two if r.keyframe] == [10, 20]
    assert two[9].box == _drifted(other[0].box, 1) and two[21].box == _drifted(other[1].box, 1)


def test_keyframes_are_kept_flagged_and_survive_a_csv_round_trip(video, drift, tmp_path):
    path, _ = video
    fractional = Keyframe(30, 1, Box(40.1, 40.3, 20.7, 16.1))  # clipping would change w and h
    overhanging = Keyframe(31, 1, Box(150, 40, 20, 16))  # the frame is 160 wide
    result = retrack_to_file(path, [KF0, fractional, overhanging], tmp_path / "boxes.csv", tracker="drift")
    flagged = [r for r in result.annotations.records if r.keyframe]
    assert [(r.frame, r.box, r.score) for r in flagged] == [
        (0, KF0.box, 1.0),
        (30, fractional.box, 1.0),
        (31, Box(150, 40, 10, 16), 1.0),
    ]
    assert all(r.time_s is not None for r in flagged)
    assert result.retracked == (Span(1, 1, 29), Span(1, 32, FRAMES - 1))  # 30..31: nothing
    back = read_annotations(tmp_path / "boxes.csv")
    assert back.records == result.annotations.records
    assert [(k.frame, k.box) for k in keyframes_of(back)] == [(r.frame, r.box) for r in flagged]


# ---- incremental re-tracking ----------------------------------------------------------------


@pytest.fixture
def first_run(video, drift, tmp_path) -> Annotations:
    """Keyframes 0 and 30 tracked with "drift", written to CSV and read back; init log cleared."""
    path, _ = video
    retrack_to_file(path, [KF0, KF30], tmp_path / "run1.csv", tracker="drift")
    drift[0].clear()
    return read_annotations(tmp_path / "run1.csv")


def test_an_added_keyframe_retracks_only_the_stretches_it_splits(video, drift, first_run):
    path, _ = video
    inits, _ = drift
    again = retrack(path, [KF0, KF30, KF45], tracker="drift", existing=first_run)
    assert again.retracked == (Span(1, 31, 44), Span(1, 46, FRAMES - 1))
    assert sorted(inits, key=lambda b: b.x) == [KF30.box, KF45.box, KF45.box]
    assert again.annotations.records[:30] == first_run.records[:30]  # copied as they were
    inits.clear()
    scratch = retrack(path, [KF0, KF30, KF45], tracker="drift")
    assert again.annotations.records == scratch.annotations.records
    assert len(inits) == 5


@pytest.mark.parametrize(
    ("keyframes", "retracked"),
    [
        ([KF0, KF30], ()),
        ([KF0, KF45], (Span(1, 1, 44), Span(1, 46, FRAMES - 1))),  # 30 removed
        ([KF0, Keyframe(30, 1, Box(41, 40, 20, 16))], (Span(1, 1, 29), Span(1, 31, FRAMES - 1))),
        ([KF0, Keyframe(32, 1, KF30.box)], (Span(1, 1, 31), Span(1, 33, FRAMES - 1))),
        ([Keyframe(0, 1, Box(11, 50, 20, 16)), KF30], (Span(1, 1, 29),)),
    ],
    ids=["unchanged", "removed", "moved box", "moved frame", "seed moved"],
)
def test_only_stretches_next_to_changed_keyframes_are_retracked(video, drift, first_run, keyframes, retracked) -> None:
    path, _ = video
    again = retrack(path, keyframes, tracker="drift", existing=first_run, config=WHOLE)
    assert again.retracked == retracked
    scratch = retrack(path, keyframes, tracker="drift")
    assert again.annotations.records == scratch.annotations.records


def test_passes_stop_where_they_rejoin_the_previous_run(video, drift, first_run) -> None:
    """Keyframe 30 moved by 1 px (IoU 0.9 with the old box): the pass forward from the
    unchanged keyframe 0 agrees with the previous run at once, the passes from 30 within 1 px
    of it; each stops after `rejoin_frames` agreeing frames and the previous boxes stand."""
    path, _ = video
    inits, _ = drift
    moved = Keyframe(30, 1, Box(41, 40, 20, 16))
    again = retrack(path, [KF0, moved], tracker="drift", existing=first_run)
    n = RetrackConfig().rejoin_frames
    assert again.retracked == (Span(1, 1, n), Span(1, 30 - n, 29), Span(1, 31, 30 + n))
    assert sorted(inits, key=lambda b: b.x) == [KF0.box, moved.box, moved.box]
    whole = retrack(path, [KF0, moved], tracker="drift", existing=first_run, config=WHOLE)
    reached = {f for s in again.retracked for f in range(s.first, s.last + 1)} | {0, 30}
    for new, full, old in zip(again.annotations.records, whole.annotations.records, first_run.records, strict=True):
        assert new == (full if new.frame in reached else old), new.frame


def test_a_pass_runs_on_over_a_keyframe_the_previous_run_had(video, drift, first_run) -> None:
    path, _ = video
    again = retrack(path, [KF0], tracker="drift", existing=first_run)  # keyframe 30 deleted
    assert again.retracked == (Span(1, 1, FRAMES - 1),)
    assert not any(r.keyframe for r in again.annotations.records[1:])


def test_a_forward_only_run_gets_its_frames_before_the_seed_tracked(video, drift) -> None:
    path, _ = video
    inits, _ = drift
    seed = Keyframe(10, 1, Box(20, 30, 20, 16), "car")
    tracked = track_video(path, [Seed(seed.box, seed.frame, 1, "car")], "drift")
    inits.clear()
    result = retrack(path, [seed], tracker="drift", existing=tracked)
    assert result.retracked == (Span(1, 0, 9),)
    assert inits == [seed.box]  # backward from the seed only
    assert result.annotations.records[10:] == tracked.records
    assert result.annotations.labels() == {1: "car"}


def test_objects_without_keyframes_are_copied_from_existing(video, drift) -> None:
    path, _ = video
    inits, _ = drift
    existing = track_video(path, [Seed(KF0.box, 0, 1, "car"), Seed(Box(90, 60, 20, 20), 0, 2, "dog")], "drift")
    inits.clear()
    correction = Keyframe(20, 1, Box(50, 50, 20, 16))
    keyframes = combined_keyframes(existing, [correction])
    assert keyframes == [Keyframe(0, 1, KF0.box, "car"), correction, Keyframe(0, 2, Box(90, 60, 20, 20), "dog")]
    result = retrack(path, [correction], tracker="drift", existing=existing, config=WHOLE)
    assert result.annotations.track(2) == existing.track(2)
    assert result.annotations.labels() == {1: "car", 2: "dog"}
    assert [r.frame for r in result.annotations.track(1) if r.keyframe] == [20]
    merged = retrack(path, keyframes, tracker="drift", existing=existing, config=WHOLE)
    assert merged.retracked == (Span(1, 1, 19), Span(1, 21, FRAMES - 1))
    assert merged.annotations.track(2) == existing.track(2)


def test_combined_keyframes_lets_a_correction_replace_a_keyframe() -> None:
    existing = Annotations(
        VideoMeta("v"),
        [
            BoxRecord(0, 1, KF0.box, keyframe=True),
            BoxRecord(1, 1, Box(1, 1, 5, 5)),
            BoxRecord(30, 1, KF30.box, keyframe=True),
        ],
    )
    moved = Keyframe(30, 1, Box(1, 2, 3, 4))
    assert combined_keyframes(existing, [moved, KF45]) == [KF0, moved, KF45]


def test_combined_keyframes_ignores_a_box_moved_by_cvat_rounding() -> None:
    precise = Keyframe(30, 1, Box(40.123, 40.456, 20.789, 16.321))
    existing = Annotations(VideoMeta("v"), [BoxRecord(30, 1, precise.box, keyframe=True)])
    rounded = Keyframe(30, 1, Box.from_xyxy(40.12, 40.46, 60.91, 56.78), "car")
    assert combined_keyframes(existing, [rounded]) == [Keyframe(30, 1, precise.box, "car")]
    moved = Keyframe(30, 1, Box.from_xyxy(40.14, 40.46, 60.91, 56.78))
    assert combined_keyframes(existing, [moved]) == [moved]


def test_a_correction_made_in_cvat_retracks_only_around_it(video, drift, tmp_path) -> None:
    path, _ = video
    inits, _ = drift
    precise = [
        Keyframe(0, 1, Box(10.123, 50.456, 20.789, 16.321)),
        Keyframe(30, 1, Box(40.987, 40.654, 20.321, 16.789)),
    ]  # CVAT keeps two decimals
    boxes = tmp_path / "boxes.csv"
    first = retrack_to_file(path, precise, boxes, tracker="drift").annotations
    fixed = BoxRecord(45, 1, Box(60, 30, 20, 16), keyframe=True)
    edited = [fixed if r.frame == fixed.frame else r for r in first.records]
    cvat = tmp_path / "cvat_export.xml"
    write_annotations(cvat, Annotations(first.video, edited))
    inits.clear()
    existing = read_annotations(boxes)
    keyframes = combined_keyframes(existing, load_keyframes(cvat))
    again = retrack(path, keyframes, tracker="drift", existing=existing)
    assert again.retracked == (Span(1, 31, 44), Span(1, 46, FRAMES - 1))
    flagged = [r.box for r in again.annotations.records if r.keyframe]
    assert flagged == [k.box for k in precise] + [fixed.box]
    assert len(inits) == 3  # forward from 30, both ways from the correction


@pytest.mark.parametrize(
    ("keyframes", "error", "message"),
    [
        ([], IBFPError, "no keyframes"),
        ([Keyframe(FRAMES, 1, KF0.box)], IBFPError, f"0..{FRAMES - 1}"),
        ([KF0, Keyframe(0, 1, KF30.box)], IBFPError, "two keyframes on frame 0"),
        ([Keyframe(3, 1, Box(500, 5, 10, 10))], BoxError, "object 1 on frame 3.*outside"),
        ([Keyframe(0, 1, KF0.box, "a"), Keyframe(9, 1, KF0.box, "b")], IBFPError, "'a' and 'b'"),
    ],
)
def test_bad_keyframes_fail_before_tracking(video, drift, keyframes, error, message) -> None:
    path, _ = video
    with pytest.raises(error, match=message):
        retrack(path, keyframes, tracker="drift")
    assert drift[0] == []


def test_existing_boxes_of_another_video_are_refused(video, drift) -> None:
    path, _ = video
    other = Annotations(VideoMeta("other.mp4", 320, 240, 30.0, FRAMES), [])
    with pytest.raises(IBFPError, match="320x240"):
        retrack(path, [KF0], tracker="drift", existing=other)


# ---- loading keyframes --------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_corrections_csv_with_and_without_labels(tmp_path) -> None:
    text = "frame,id,x,y,w,h,label\n30,2,1.5,2,30,40,car\n0,1,1,2,3,4,\n"
    labelled = _write(tmp_path, "c1.csv", text)
    assert load_keyframes(labelled) == [Keyframe(0, 1, Box(1, 2, 3, 4)), Keyframe(30, 2, Box(1.5, 2, 30, 40), "car")]
    plain = _write(tmp_path, "c2.csv", "frame,id,x,y,w,h\n7,1,10,20,30,40\n")
    assert load_keyframes(plain) == [Keyframe(7, 1, Box(10, 20, 30, 40))]


def test_cvat_keyframes_are_the_boxes_a_person_set(tmp_path) -> None:
    records = [
        BoxRecord(f, 1, Box(10 + f, 20, 30.25, 40.5), score=0.5, keyframe=f in (0, 3), label="cat") for f in range(5)
    ]
    path = tmp_path / "task.xml"
    write_annotations(path, Annotations(VideoMeta("v.mp4", 160, 120, 25.0, 5), records))
    assert load_keyframes(path) == [
        Keyframe(0, 1, Box(10, 20, 30.25, 40.5), "cat"),
        Keyframe(3, 1, Box(13, 20, 30.25, 40.5), "cat"),
    ]


CVAT_MADE = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <track id="0" label="dog" source="manual">
    <box frame="0" outside="0" occluded="0" keyframe="1" xtl="1" ytl="2" xbr="11" ybr="22"/>
    <box frame="1" outside="0" occluded="0" keyframe="0" xtl="2" ytl="2" xbr="12" ybr="22"/>
    <box frame="4" outside="0" occluded="0" keyframe="1" xtl="5" ytl="2" xbr="15" ybr="22"/>
    <box frame="5" outside="1" occluded="0" keyframe="1" xtl="5" ytl="2" xbr="15" ybr="22"/>
  </track>
</annotations>
"""


def test_cvat_made_files_give_their_keyframe_boxes(tmp_path) -> None:
    path = _write(tmp_path, "cvat.xml", CVAT_MADE)
    assert load_keyframes(path) == [Keyframe(0, 1, Box(1, 2, 10, 20), "dog"), Keyframe(4, 1, Box(5, 2, 10, 20), "dog")]


def test_mot_keyframes_are_every_row_made_zero_based(tmp_path) -> None:
    path = _write(tmp_path, "fix.txt", "31,2,11,21,20,16,1,-1,-1,-1\n1,1,1,1,5,6\n")
    assert load_keyframes(path) == [Keyframe(0, 1, Box(0, 0, 5, 6)), Keyframe(30, 2, Box(10, 20, 20, 16))]
    records = [BoxRecord(f, 1, Box(f, 2, 8, 9), score=0.3) for f in (2, 9)]
    written = tmp_path / "ours.txt"
    write_annotations(written, Annotations(VideoMeta("v"), records))
    assert load_keyframes(written) == [Keyframe(f, 1, Box(f, 2, 8, 9)) for f in (2, 9)]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.csv", "frame,id,x,y,w,h\n1,1,1,1,5,5\n2,1,abc,1,5,5\n", r"line 3: x 'abc'"),
        ("c.csv", "frame,id,x,y,w\n1,1,1,1,5\n", "missing column"),
        ("c.csv", "frame,id,x,y,w,h\n", "no keyframes"),
        ("c.csv", "frame,id,x,y,w,h\n4,1,1,1,0,5\n", "object 1 on frame 4.*no area"),
        ("c.csv", "frame,id,x,y,w,h\n4,0,1,1,5,5\n", "object 0 on frame 4.*1 or more"),
        ("c.txt", "1,1,1,1,5\n", "line 1: 5 columns"),
        ("c.xml", CVAT_MADE.replace('keyframe="1"', 'keyframe="0"'), "no keyframes"),
        ("c.yaml", "frame: 1\n", "extension"),
    ],
)
def test_bad_keyframe_files_raise_format_errors(tmp_path, name, text, message) -> None:
    with pytest.raises(FormatError, match=message):
        load_keyframes(_write(tmp_path, name, text))


@pytest.mark.skipif(not shipped_weights(), reason="no weights shipped yet")
def test_a_local_correction_retracks_a_few_frames_and_matches_a_whole_retrack_there(tmp_path) -> None:
    """IBFP on a generated clip: a box nudged 2 px on frame 30 re-tracks a few frames around it
    (the passes rejoin the first run), not the 58 a whole retrack goes over; on the frames it
    tracked its boxes are the whole retrack's, elsewhere the first run's stand."""
    spec = SyntheticSpec(width=320, height=240, frames=60, object_size=(48, 36), seed=3)
    path = tmp_path / "clip.mp4"
    truth = write_synthetic_video(path, spec)
    first = track_video(path, [Seed(Box(*truth[0]))], device="cpu")
    tracked = first.track(1)[30].box
    keyframes = combined_keyframes(first, [Keyframe(30, 1, Box(tracked.x + 2, tracked.y, tracked.w, tracked.h))])
    local = retrack(path, keyframes, existing=first, device="cpu")
    whole = retrack(path, keyframes, existing=first, device="cpu", config=WHOLE)
    reached = {f for s in local.retracked for f in range(s.first, s.last + 1)}
    assert sum(s.last - s.first + 1 for s in whole.retracked) == spec.frames - 2
    assert len(reached) <= 3 * RetrackConfig().rejoin_frames < spec.frames // 3
    for new, full, old in zip(local.annotations.records, whole.annotations.records, first.records, strict=True):
        if new.frame in reached:
            assert new == full, new.frame
        elif new.frame != 30:
            assert new == old, new.frame
    pairs = zip(local.annotations.records, whole.annotations.records)
    assert np.mean([iou(a.box, b.box) for a, b in pairs]) >= RetrackConfig().rejoin_iou
