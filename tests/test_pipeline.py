"""Tracking seeded objects through a video, and reading seeds files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ibfp_cli.annotate.pipeline import Seed, load_seeds, track_to_file, track_video
from ibfp_cli.boxes import Box, ious
from ibfp_cli.errors import BoxError, FormatError, IBFPError
from ibfp_cli.formats import read_annotations
from ibfp_cli.media.video import probe
from ibfp_cli.tracking import registry
from ibfp_cli.tracking.contract import TrackerOutput

MIN_MEAN_IOU = 0.5


class _ScriptedTracker:
    """A tracker whose every update answers the next item of a script, and logs its calls."""

    name = "scripted"

    def __init__(self, script: Iterator[TrackerOutput], calls: list[str]) -> None:
        self.script = script
        self.calls = calls

    def init(self, frame: np.ndarray, box: Box) -> None:
        self.calls.append(f"init {box}")

    def update(self, frame: np.ndarray) -> TrackerOutput:
        self.calls.append("update")
        return next(self.script)


@pytest.fixture
def scripted(monkeypatch) -> tuple[list[TrackerOutput], list[str]]:
    """Registers tracker "scripted"; tests fill its script (repeated) and read its call log."""
    script: list[TrackerOutput] = []
    calls: list[str] = []

    def factory(**_: object) -> _ScriptedTracker:
        calls.append("create")
        return _ScriptedTracker(iter(script * 1000), calls)

    monkeypatch.setitem(registry._REGISTRY, "scripted", (factory, "test double"))
    return script, calls


def test_tracks_every_frame_from_seed(small_video) -> None:
    path, truth = small_video
    info = probe(path)
    annotations = track_video(path, [Seed(Box(*truth[0]))], "kcf")
    records = annotations.records
    assert [r.frame for r in records] == list(range(info.frame_count))
    assert records[0].keyframe and records[0].score == 1.0 and records[0].box == Box(*truth[0])
    assert not any(r.keyframe for r in records[1:])
    assert [r.time_s for r in records] == pytest.approx(np.arange(info.frame_count) / info.fps)
    assert annotations.video.name == path.name
    assert (annotations.video.width, annotations.video.height) == (info.width, info.height)
    assert annotations.video.frame_count == info.frame_count
    tracked = np.array([r.box.xywh() for r in records])
    assert ious(tracked[1:], truth[1:]).mean() > MIN_MEAN_IOU


def test_objects_start_on_their_own_seed_frames(small_video, scripted) -> None:
    path, _ = small_video
    script, calls = scripted
    script.append(TrackerOutput(Box(50, 40, 20, 20), 0.5))
    seeds = [
        Seed(Box(10, 10, 20, 20), frame=5, id=1, label="car"),
        Seed(Box(30, 30, 20, 20), frame=12, id=7, label="dog"),
    ]
    frames = probe(path).frame_count
    annotations = track_video(path, seeds, "scripted")
    one, seven = annotations.track(1), annotations.track(7)
    assert [r.frame for r in one] == list(range(5, frames))
    assert [r.frame for r in seven] == list(range(12, frames))
    assert (one[0].keyframe, one[0].box, one[0].label) == (True, Box(10, 10, 20, 20), "car")
    assert (seven[1].box, seven[1].score, seven[1].label) == (Box(50, 40, 20, 20), 0.5, "dog")
    assert calls.count("create") == 2
    assert calls.count("update") == (frames - 5 - 1) + (frames - 12 - 1)


def test_progress_counts_frames_from_first_seed(small_video, scripted) -> None:
    path, _ = small_video
    scripted[0].append(TrackerOutput(Box(1, 1, 5, 5), 1.0))
    reports: list[tuple[int, int]] = []
    track_video(
        path, [Seed(Box(1, 1, 5, 5), frame=10)], "scripted", progress=lambda done, total: reports.append((done, total))
    )
    remaining = probe(path).frame_count - 10
    assert reports == [(i, remaining) for i in range(1, remaining + 1)]


def test_tracked_boxes_are_clipped_and_leaving_the_frame_is_lost(small_video, scripted) -> None:
    path, _ = small_video
    info = probe(path)
    script, _ = scripted
    script += [
        TrackerOutput(Box(info.width - 10, 5, 30, 20), 0.9),  # partly outside
        TrackerOutput(Box(info.width + 5, 5, 30, 20), 0.8),
    ]  # entirely outside
    records = track_video(path, [Seed(Box(1, 1, 10, 10))], "scripted").records
    assert records[1].box == Box(info.width - 10, 5, 10, 20) and not records[1].lost
    assert records[2].box == records[1].box and records[2].lost and records[2].score == 0.8


def test_seed_partly_outside_is_clipped(small_video, scripted) -> None:
    path, _ = small_video
    scripted[0].append(TrackerOutput(Box(1, 1, 5, 5), 1.0))
    first = track_video(path, [Seed(Box(-10, -5, 30, 25))], "scripted").records[0]
    assert first.box == Box(0, 0, 20, 20)


@pytest.mark.parametrize(
    ("seeds", "error", "message"),
    [
        ([Seed(Box(500, 500, 20, 20))], BoxError, "outside"),
        ([Seed(Box(10, 10, 20, 20), frame=40)], IBFPError, "0..39"),
        ([Seed(Box(10, 10, 20, 20), frame=-1)], IBFPError, "0..39"),
        ([Seed(Box(10, 10, 20, 20)), Seed(Box(50, 50, 20, 20))], IBFPError, "id 1"),
        ([], IBFPError, "no seed"),
    ],
)
def test_bad_seeds_fail_before_any_tracker_exists(small_video, scripted, seeds, error, message):
    path, _ = small_video
    with pytest.raises(error, match=message):
        track_video(path, seeds, "scripted")
    assert scripted[1] == []


def test_track_to_file_writes_format_from_extension(small_video, tmp_path) -> None:
    path, truth = small_video
    out = tmp_path / "boxes.txt"
    annotations = track_to_file(path, [Seed(Box(*truth[0]))], out, tracker="kcf")
    back = read_annotations(out)
    assert [r.frame for r in back.records] == [r.frame for r in annotations.records]
    assert [r.box for r in back.records] == [r.box for r in annotations.records]


def test_track_to_file_checks_format_and_folder_before_tracking(small_video, tmp_path, scripted):
    path, _ = small_video
    seeds = [Seed(Box(1, 1, 10, 10))]
    with pytest.raises(FormatError, match="extension"):
        track_to_file(path, seeds, tmp_path / "boxes.unknown", tracker="scripted")
    with pytest.raises(IBFPError, match="does not exist"):
        track_to_file(path, seeds, tmp_path / "missing" / "boxes.csv", tracker="scripted")
    assert scripted[1] == []
    assert list(tmp_path.iterdir()) == []


def test_interrupted_tracking_leaves_no_file(small_video, tmp_path, monkeypatch) -> None:
    path, _ = small_video

    class Interrupting(_ScriptedTracker):
        def update(self, frame: np.ndarray) -> TrackerOutput:
            raise KeyboardInterrupt

    monkeypatch.setitem(registry._REGISTRY, "interrupting", (lambda **_: Interrupting(iter(()), []), "test double"))
    with pytest.raises(KeyboardInterrupt):
        track_to_file(path, [Seed(Box(1, 1, 10, 10))], tmp_path / "boxes.csv", tracker="interrupting")
    assert list(tmp_path.iterdir()) == []


# ---- seeds files ----------------------------------------------------------------------------


def _seeds_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "seeds.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_seeds_groups_by_video_and_numbers_objects(tmp_path) -> None:
    path = _seeds_file(tmp_path, "video,frame,x,y,w,h\na.mp4,0,1,2,30,40\nb,5,10.5,20,30,40\na.mp4,3,5,6,7,8\n")
    assert load_seeds(path) == {
        "a.mp4": [Seed(Box(1, 2, 30, 40), 0, 1), Seed(Box(5, 6, 7, 8), 3, 2)],
        "b": [Seed(Box(10.5, 20, 30, 40), 5, 1)],
    }


def test_load_seeds_reads_optional_id_and_label(tmp_path) -> None:
    path = _seeds_file(
        tmp_path, "\ufeffvideo, frame, x, y, w, h, id, label\na.mp4,0,1,2,30,40,7,car\n\na.mp4,0,5,6,7,8,,\n"
    )
    assert load_seeds(path) == {"a.mp4": [Seed(Box(1, 2, 30, 40), 0, 7, "car"), Seed(Box(5, 6, 7, 8), 0, 2, "object")]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("video,frame,x,y,w,h,colour\na,0,1,2,3,4,red\n", "line 1: unknown column 'colour'"),
        ("video,frame,x,y,w\na,0,1,2,3\n", "line 1: missing column 'h'"),
        ("video,frame,x,y,w,h,x\na,0,1,2,3,4,5\n", "line 1: column 'x' appears twice"),
        ("video,frame,x,y,w,h\na,0,1,2,3,4\na,first,1,2,3,4\n", "line 3: frame 'first' is not"),
        ("video,frame,x,y,w,h\na,0,1,2,3,4\na,0,1,2,abc,4\n", "line 3: box '1,2,abc,4'"),
        ("video,frame,x,y,w,h\na,0,1,2,0,4\n", "line 2: box .* no area"),
        ("video,frame,x,y,w,h\na,0,1,2,3\n", "line 2: 5 fields where the header has 6"),
        ("video,frame,x,y,w,h\na,-2,1,2,3,4\n", "line 2: frame -2 is negative"),
        ("video,frame,x,y,w,h,id\na,0,1,2,3,4,0\n", "line 2: id 0 must be 1 or more"),
        ("video,frame,x,y,w,h\n,0,1,2,3,4\n", "line 2: empty video name"),
        ("video,frame,x,y,w,h\n", "no seed rows"),
        ("", "empty"),
    ],
)
def test_malformed_seeds_file_names_line(tmp_path, text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        load_seeds(_seeds_file(tmp_path, text))


def test_missing_or_binary_seeds_file(tmp_path) -> None:
    with pytest.raises(FormatError, match="not found"):
        load_seeds(tmp_path / "nope.csv")
    binary = tmp_path / "seeds.csv"
    binary.write_bytes(b"\xff\xfe\x00video")
    with pytest.raises(FormatError, match="UTF-8"):
        load_seeds(binary)
