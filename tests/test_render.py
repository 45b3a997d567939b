"""Preview videos: every frame written, boxes drawn where the records say, lost ones dashed."""

from __future__ import annotations

import numpy as np
import pytest

from ibfp_cli.annotations import Annotations, BoxRecord, VideoMeta
from ibfp_cli.boxes import Box
from ibfp_cli.errors import IBFPError
from ibfp_cli.media.render import LOST_COLOUR, draw_boxes, render_video, track_colour
from ibfp_cli.media.video import probe, read_video

LINE_SHARE = 0.4
"""Least share of the way from the unboxed picture to the track colour that a drawn 2 px line keeps
after H.264 (measured 0.59 on the test clip; 4:2:0 chroma halves a thin line's colour, and a fixed
colour tolerance held with one encoder build and missed by 1 with the next)."""
UNTOUCHED_SHARE = 0.1
"""Largest such share three or more rows away from the line: the codec's ringing, not a drawing."""


def _edge(image: np.ndarray, box: Box) -> np.ndarray:
    """The pixels on the box's bottom edge (excluding the corners; the caption sits on top)."""
    x1, _, x2, y2 = (round(v) for v in box.xyxy())
    return image[y2, x1 + 1 : x2]


def test_box_drawn_in_its_track_colour_inside_left_untouched() -> None:
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    box = Box(40.4, 60.2, 50.0, 30.0)
    draw_boxes(image, 3, [BoxRecord(3, 2, box, score=0.75)])
    assert (_edge(image, box) == track_colour(2)).all()
    assert (image[70:85, 50:80] == 0).all()


def test_lost_box_is_grey_and_dashed() -> None:
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    box = Box(40, 80, 100, 30)
    draw_boxes(image, 0, [BoxRecord(0, 1, box, score=0.1, lost=True)])
    edge = _edge(image, box)
    grey = (edge == LOST_COLOUR).all(axis=1)
    untouched = (edge == 0).all(axis=1)
    assert grey.any() and untouched.any()
    assert not (edge == track_colour(1)).all(axis=1).any()


def test_ids_get_distinct_colours() -> None:
    assert len({track_colour(i) for i in range(1, 11)}) == 10


def test_preview_has_every_frame_and_draws_boxes(small_video, tmp_path) -> None:
    path, truth = small_video
    info = probe(path)
    records = [BoxRecord(i, 1, Box(*truth[i])) for i in range(0, info.frame_count, 2)]
    meta = VideoMeta(path.name, info.width, info.height, info.fps, info.frame_count)
    out = tmp_path / "preview.mp4"
    progress: list[tuple[int, int]] = []
    render_video(path, Annotations(meta, records), out, progress=lambda done, total: progress.append((done, total)))
    rendered = probe(out)
    assert rendered.frame_count == info.frame_count
    assert (rendered.width, rendered.height) == (info.width, info.height)
    assert progress[-1] == (info.frame_count, info.frame_count)
    bare = tmp_path / "bare.mp4"  # the same frames through the same encoder, no boxes
    render_video(path, Annotations(meta, []), bare)
    box = Box(*truth[10])
    drawn, plain = (next(f.image for f in read_video(p) if f.index == 10).astype(float) for p in (out, bare))
    colour = np.array(track_colour(1), dtype=float)

    def share_towards_colour(dy: int) -> float:
        """Median share of the way each pixel of the row dy below the box's bottom edge moved
        from the unboxed picture to the track colour."""
        row = Box(box.x, box.y + dy, box.w, box.h)
        before, after = _edge(plain, row), _edge(drawn, row)
        return float(np.median(((after - before) * (colour - before)).sum(1) / ((colour - before) ** 2).sum(1)))

    assert share_towards_colour(0) >= LINE_SHARE
    assert max(abs(share_towards_colour(dy)) for dy in (-6, -5, -4, -3, 3, 4, 5, 6)) < UNTOUCHED_SHARE
    assert not list(tmp_path.glob(".*partial*"))


def test_boxes_of_another_video_size_are_refused(small_video, tmp_path) -> None:
    path, _ = small_video
    meta = VideoMeta("other.mp4", 640, 480)
    out = tmp_path / "preview.mp4"
    with pytest.raises(IBFPError, match="640x480"):
        render_video(path, Annotations(meta, [BoxRecord(0, 1, Box(1, 1, 5, 5))]), out)
    assert list(tmp_path.iterdir()) == []
