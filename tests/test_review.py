"""Review: low-confidence segments and the contact sheet that shows them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ibfp_cli.annotate.pipeline import Seed, track_video
from ibfp_cli.annotate.review import (
    SHEET_COLUMNS,
    TILE_CONTEXT,
    TILE_GAP,
    Segment,
    contact_sheet,
    low_confidence_segments,
    tile_window,
)
from ibfp_cli.annotations import Annotations, BoxRecord, VideoMeta
from ibfp_cli.boxes import Box
from ibfp_cli.errors import IBFPError
from ibfp_cli.media.render import track_colour
from ibfp_cli.media.synthetic import OCCLUDER_RGB, SyntheticSpec, write_synthetic_video
from ibfp_cli.tracking import registry
from ibfp_cli.tracking.contract import TrackerOutput

OCCLUSION = (20, 30)
OCCLUDED_SPEC = SyntheticSpec(
    width=160,
    height=120,
    frames=40,
    object_size=(32, 24),
    scale_amplitude=0.0,
    speed=0.0,
    noise=0.0,
    occlusion=OCCLUSION,
    seed=3,
)
"""A still object hidden by the occluder bar on frames 20..29."""
OCCLUDER_TOLERANCE = 12
"""Largest difference per channel from OCCLUDER_RGB that H.264 leaves on the flat bar."""
TILE_WIDTH = 240
TILE_HEIGHT = 180  # 240 * 120 / 160


def _records(track_id: int, scores: dict[int, float], lost: tuple[int, ...] = ()) -> list[BoxRecord]:
    return [BoxRecord(f, track_id, Box(10, 10, 20, 20), s, f in lost) for f, s in scores.items()]


def _annotations(*records: list[BoxRecord]) -> Annotations:
    return Annotations(VideoMeta("v", 160, 120), [r for rs in records for r in rs])


# ---- segments ------------------------------------------------------------------------------


def test_segments_are_runs_of_low_or_lost_boxes_per_object() -> None:
    scores = [1.0, 0.9, 0.3, 0.2, 0.4, 0.8, 0.1, 0.9, 0.9]
    one = _records(1, dict(enumerate(scores)), lost=(7,))
    two = _records(2, {0: 0.1, 1: 0.45, 3: 0.2})  # frame 2 missing: the run ends
    assert low_confidence_segments(_annotations(one, two)) == [
        Segment(1, 2, 4, 0.2, 3),
        Segment(1, 6, 7, 0.1, 6),
        Segment(2, 0, 1, 0.1, 0),
        Segment(2, 3, 3, 0.2, 3),
    ]


def test_threshold_and_minimum_length() -> None:
    one = _records(1, {0: 0.6, 1: 0.65, 2: 0.9, 3: 0.3, 4: 0.55, 5: 0.95})
    annotations = _annotations(one)
    assert low_confidence_segments(annotations) == [Segment(1, 3, 3, 0.3, 3)]
    assert low_confidence_segments(annotations, threshold=0.7) == [Segment(1, 0, 1, 0.6, 0), Segment(1, 3, 4, 0.3, 3)]
    assert low_confidence_segments(annotations, threshold=0.7, min_length=3) == []
    with pytest.raises(IBFPError, match="1 or more"):
        low_confidence_segments(annotations, min_length=0)


def test_keyframes_are_never_doubtful() -> None:
    records = _records(1, {0: 0.1, 1: 0.1, 2: 0.1})
    records[1] = BoxRecord(1, 1, Box(10, 10, 20, 20), 0.1, lost=True, keyframe=True)
    assert low_confidence_segments(_annotations(records)) == [Segment(1, 0, 0, 0.1, 0), Segment(1, 2, 2, 0.1, 2)]


def test_boxes_without_scores_are_refused() -> None:
    unscored = Annotations(VideoMeta("walk.mp4"), _records(1, {0: 1.0, 1: 1.0}), scored=False)
    with pytest.raises(IBFPError, match=r"walk.mp4 carry no scores .*\(csv, mot, coco, cvat\)"):
        low_confidence_segments(unscored)


# ---- found in a video ------------------------------------------------------------------------


class _StillTracker:
    """Keeps the box it was started on; its score is the share of that box's pixels that do
    not look like the occluder."""

    name = "still"

    def init(self, frame: np.ndarray, box: Box) -> None:
        self.box = box

    def update(self, frame: np.ndarray) -> TrackerOutput:
        x1, y1, x2, y2 = (round(v) for v in self.box.xyxy())
        patch = frame[y1:y2, x1:x2].astype(np.int16)
        hidden = (np.abs(patch - OCCLUDER_RGB) <= OCCLUDER_TOLERANCE).all(axis=-1).mean()
        return TrackerOutput(self.box, float(1 - hidden))


@pytest.fixture(scope="module")
def occluded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Annotations]:
    """The occluded clip tracked by the still tracker from the true first box."""
    path = tmp_path_factory.mktemp("review") / "occluded.mp4"
    truth = write_synthetic_video(path, OCCLUDED_SPEC)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(registry._REGISTRY, "still", (lambda **_: _StillTracker(), "test double"))
        return path, track_video(path, [Seed(Box(*truth[0]))], "still")


def test_review_finds_the_occlusion(occluded) -> None:
    _, annotations = occluded
    (segment,) = low_confidence_segments(annotations)
    assert (segment.id, segment.first, segment.last) == (1, OCCLUSION[0], OCCLUSION[1] - 1)
    assert segment.lowest_score < 0.1
    assert OCCLUSION[0] <= segment.lowest_frame < OCCLUSION[1]


def test_contact_sheet_shows_the_segment_with_its_box(occluded, tmp_path) -> None:
    path, annotations = occluded
    segments = low_confidence_segments(annotations)
    out = tmp_path / "review.png"
    assert contact_sheet(path, annotations, segments, out) == segments
    sheet = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert sheet.shape == (TILE_HEIGHT + 2 * TILE_GAP, TILE_WIDTH + 2 * TILE_GAP, 3)
    box = annotations.records[segments[0].lowest_frame].box
    scale = TILE_WIDTH / OCCLUDED_SPEC.width
    top, middle = round(box.y * scale), round(box.cx * scale)
    assert tuple(sheet[TILE_GAP + top, TILE_GAP + middle]) == track_colour(1)


HD_SPEC = SyntheticSpec(width=1280, height=720, frames=3, object_size=(64, 48), noise=0.0, seed=5)
"""720p footage with a 64x48 object: scaled whole into a 240 px tile it would be 12x9 px."""
HD_TILE = (240, 135)  # 240 px wide, the 16:9 frame's aspect ratio


def test_a_tile_on_720p_footage_shows_the_box_large_enough_to_judge(tmp_path) -> None:
    """Issue 24.7: a tile shows a window around the box, TILE_CONTEXT times its size, not the whole frame."""
    path = tmp_path / "hd.mp4"
    truth = write_synthetic_video(path, HD_SPEC)
    records = [BoxRecord(f, 1, Box(*truth[f]), 0.2 if f == 1 else 0.9) for f in range(HD_SPEC.frames)]
    annotations = Annotations(VideoMeta("hd", HD_SPEC.width, HD_SPEC.height), records)
    out = tmp_path / "sheet.png"
    contact_sheet(path, annotations, low_confidence_segments(annotations), out)
    sheet = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    width, height = HD_TILE
    assert sheet.shape == (height + 2 * TILE_GAP, width + 2 * TILE_GAP, 3)
    tile = sheet[TILE_GAP : TILE_GAP + height, TILE_GAP : TILE_GAP + width]
    ys, xs = np.nonzero((tile == track_colour(1)).all(axis=-1))
    drawn_w, drawn_h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    box = records[1].box
    assert drawn_w >= width / TILE_CONTEXT - 2 or drawn_h >= height / TILE_CONTEXT - 2  # the box fills its share
    assert drawn_w / drawn_h == pytest.approx(box.w / box.h, rel=0.1)  # the same box, not stretched
    x, y, w, h = tile_window(box, HD_SPEC.width, HD_SPEC.height)  # where the box is drawn: around its place
    assert abs(xs.min() - (box.x - x) * width / w) <= 2 and abs(ys.min() - (box.y - y) * height / h) <= 2


@pytest.mark.parametrize(
    ("box", "frame", "window"),
    [
        (Box(600, 340, 64, 48), (1280, 720), (504, 292, 256, 144)),  # 3x the box, centred on it
        (Box(2, 3, 64, 48), (1280, 720), (0, 0, 256, 144)),  # kept inside the frame
        (Box(620, 355, 8, 6), (1280, 720), (504, 290, 240, 135)),  # never narrower than the tile
        (Box(100, 100, 900, 500), (1280, 720), (0, 0, 1280, 720)),  # never wider than the frame
        (Box(10, 10, 20, 20), (160, 120), (0, 0, 160, 120)),  # a frame narrower than the tile: all of it
    ],
)
def test_tile_window_geometry(box: Box, frame: tuple[int, int], window: tuple[int, int, int, int]) -> None:
    assert tile_window(box, *frame, tile_width=240) == window


def test_contact_sheet_keeps_the_least_confident_tiles(occluded, tmp_path) -> None:
    path, _ = occluded
    frames = range(2, 40, 5)  # 8 one-frame segments
    scores = {f: 0.1 + 0.05 * i for i, f in enumerate(reversed(frames))}
    annotations = _annotations(_records(1, {f: scores.get(f, 1.0) for f in range(40)}))
    segments = low_confidence_segments(annotations)
    assert len(segments) == len(frames)
    out = tmp_path / "sheet.png"
    shown = contact_sheet(path, annotations, segments, out, max_tiles=7)
    assert [s.first for s in shown] == list(frames)[1:]  # frame 2 scores highest
    rows = 2
    assert cv2.imread(str(out)).shape == (
        rows * (TILE_HEIGHT + TILE_GAP) + TILE_GAP,
        SHEET_COLUMNS * (TILE_WIDTH + TILE_GAP) + TILE_GAP,
        3,
    )


def test_contact_sheet_refuses_nothing_and_other_videos(occluded, tmp_path) -> None:
    path, annotations = occluded
    out = tmp_path / "sheet.png"
    with pytest.raises(IBFPError, match="no segments"):
        contact_sheet(path, annotations, [], out)
    wrong = Annotations(VideoMeta("v", 320, 240), annotations.records)
    with pytest.raises(IBFPError, match="320x240"):
        contact_sheet(path, wrong, low_confidence_segments(wrong), out)
    assert not out.exists()
