"""Batch annotation: one output per video, failures isolated, finished outputs skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ibfp_cli.batch import BatchResult, find_video, run_batch
from ibfp_cli.errors import FormatError, IBFPError
from ibfp_cli.formats import read_annotations
from ibfp_cli.video import probe


def _box(row: np.ndarray) -> str:
    return ",".join(f"{v:g}" for v in row)


@pytest.fixture
def folder(tmp_path, small_video) -> Path:
    """videos/ with a.mp4, b.mp4 and c.mov (copies of the small video)."""
    video, _ = small_video
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mov"):
        (videos / name).write_bytes(video.read_bytes())
    return videos


def _seeds(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "seeds.csv"
    path.write_text("video,frame,x,y,w,h\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_one_output_per_video_failures_isolated(folder, tmp_path, small_video) -> None:
    _, truth = small_video
    seeds = _seeds(
        tmp_path,
        [f"a.mp4,0,{_box(truth[0])}", "a.mp4,0,5,5,20,20", "b.mp4,0,900,900,10,10", f"gone,0,{_box(truth[0])}"],
    )
    out = tmp_path / "out"
    results = run_batch(folder, seeds, out, fmt="coco", tracker="kcf")
    by_video = {r.video: r for r in results}
    assert [r.status for r in results] == ["done", "failed", "failed", "skipped"]
    assert by_video["a.mp4"] == BatchResult("a.mp4", "done", f"{2 * len(truth)} boxes of 2 object(s)", out / "a.json")
    assert "outside" in by_video["b.mp4"].message
    assert "not found" in by_video["gone"].message
    assert by_video["c.mov"].message == "no seeds"
    assert sorted(p.name for p in out.iterdir()) == ["a.json"]
    assert read_annotations(out / "a.json").ids() == [1, 2]


def test_name_without_extension_finds_the_video(folder, tmp_path, small_video) -> None:
    _, truth = small_video
    results = run_batch(folder, _seeds(tmp_path, [f"b,5,{_box(truth[5])}"]), tmp_path / "out", fmt="mot", tracker="kcf")
    assert results[0] == BatchResult("b", "done", f"{len(truth) - 5} boxes of 1 object(s)", tmp_path / "out" / "b.txt")
    frames = [r.frame for r in read_annotations(tmp_path / "out" / "b.txt").records]
    assert frames == list(range(5, len(truth)))


def test_find_video_rejects_ambiguous_and_missing_names(folder) -> None:
    (folder / "a.mov").write_bytes(b"")
    assert find_video(folder, "b") == folder / "b.mp4"
    assert find_video(folder, "a.mov") == folder / "a.mov"
    with pytest.raises(IBFPError, match=r"ambiguous.*a\.mov, a\.mp4"):
        find_video(folder, "a")
    with pytest.raises(IBFPError, match="not found"):
        find_video(folder, "d")


def test_videos_with_the_same_stem_do_not_overwrite_each_other(folder, tmp_path, small_video):
    _, truth = small_video
    (folder / "a.mov").write_bytes((folder / "a.mp4").read_bytes())
    seeds = _seeds(tmp_path, [f"a.mp4,0,{_box(truth[0])}", f"a.mov,0,{_box(truth[0])}"])
    results = run_batch(folder, seeds, tmp_path / "out", tracker="kcf")
    assert [r.status for r in results[:2]] == ["done", "failed"]
    assert "a.csv" in results[1].message


def test_resume_renders_a_missing_preview_without_tracking_again(folder, tmp_path, small_video):
    _, truth = small_video
    seeds = _seeds(tmp_path, [f"a.mp4,0,{_box(truth[0])}"])
    out = tmp_path / "out"
    first = run_batch(folder, seeds, out, tracker="kcf", render=True)
    assert first[0].status == "done"
    boxes_mtime = (out / "a.csv").stat().st_mtime_ns
    (out / "a.preview.mp4").unlink()

    second = run_batch(folder, seeds, out, tracker="nosuch-tracker-never-used", render=True)
    assert second[0].status == "done"
    assert (out / "a.csv").stat().st_mtime_ns == boxes_mtime
    assert probe(out / "a.preview.mp4").frame_count == len(truth)

    third = run_batch(folder, seeds, out, tracker="kcf", render=True)
    assert third[0] == BatchResult("a.mp4", "skipped", "a.csv already exists", out / "a.csv")


def test_bad_batch_setup_fails_before_any_video(folder, tmp_path) -> None:
    seeds = _seeds(tmp_path, ["a.mp4,0,1,1,20,20"])
    out = tmp_path / "out"
    with pytest.raises(IBFPError, match="does not exist"):
        run_batch(tmp_path / "nowhere", seeds, out, tracker="kcf")
    with pytest.raises(FormatError, match="unknown format"):
        run_batch(folder, seeds, out, fmt="xyz", tracker="kcf")
    with pytest.raises(FormatError, match="not found"):
        run_batch(folder, tmp_path / "none.csv", out, tracker="kcf")
    assert not out.exists()
