"""Batch annotation: one output per video, failures isolated, finished outputs skipped;
shards, worker processes and the batch.csv record."""

from __future__ import annotations

import csv
import multiprocessing
import random
import re
import socket
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import BATCH_VIDEOS, batch_boxes, with_corrupt_video
from hypothesis import given, settings
from hypothesis import strategies as st

from ibfp_cli.batch.jobs import BatchResult
from ibfp_cli.batch.ray_runner import RayOptions, check_reachable
from ibfp_cli.batch.runner import find_video, outputs_in, run_batch
from ibfp_cli.batch.shards import Shard, parse_shard
from ibfp_cli.batch.summary import COLUMNS, LOCK_NAME, SUMMARY_NAME, update_summary
from ibfp_cli.cli.app import fill_optional_values
from ibfp_cli.errors import FormatError, IBFPError
from ibfp_cli.formats import read_annotations
from ibfp_cli.media.video import probe

BOX_TOLERANCE_PX = 0.5
"""Parallel and cluster runs must give the plain batch's boxes to this (issue 13); thread
counts differ between them, so convolution sums may differ in their last bits."""


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
    a = by_video["a.mp4"]
    assert (a.message, a.output) == (f"{2 * len(truth)} boxes of 2 objects", out / "a.json")
    assert (a.frames, a.objects) == (len(truth), 2)
    assert "outside" in by_video["b.mp4"].message
    assert "not found" in by_video["gone"].message
    assert by_video["c.mov"].message == "no seeds"
    assert _outputs(out) == ["a.json"]
    assert read_annotations(out / "a.json").ids() == [1, 2]
    rows = _summary(out)
    assert [(r["video"], r["status"]) for r in rows] == [
        ("a.mp4", "done"),
        ("b.mp4", "failed"),
        ("c.mov", "skipped"),
        ("gone", "failed"),
    ]
    assert (rows[0]["frames"], rows[0]["objects"], rows[0]["error"]) == ("40", "2", "")
    assert float(rows[0]["seconds"]) > 0 and "outside" in rows[1]["error"] and rows[2]["error"] == "no seeds"


def test_name_without_extension_finds_the_video(folder, tmp_path, small_video) -> None:
    _, truth = small_video
    results = run_batch(folder, _seeds(tmp_path, [f"b,5,{_box(truth[5])}"]), tmp_path / "out", fmt="mot", tracker="kcf")
    assert (results[0].video, results[0].status, results[0].output) == ("b.mp4", "done", tmp_path / "out" / "b.txt")
    assert (results[0].message, results[0].frames) == (f"{len(truth) - 5} boxes of 1 object", len(truth) - 5)
    frames = [r.frame for r in read_annotations(tmp_path / "out" / "b.txt").records]
    assert frames == list(range(5, len(truth)))


def test_a_video_named_with_and_without_its_extension_is_one_video(folder, tmp_path, small_video) -> None:
    """Issue 24.3: seeds that name a.mp4 once as `a` and once as `a.mp4` are two objects of one
    video, recorded once under its file name, in this run and the next."""
    _, truth = small_video
    seeds = _seeds(tmp_path, [f"a,0,{_box(truth[0])}", "a.mp4,0,5,5,20,20", f"b,0,{_box(truth[0])}"])
    out = tmp_path / "out"
    results = run_batch(folder, seeds, out, tracker="kcf")
    assert [(r.video, r.status) for r in results] == [("a.mp4", "done"), ("b.mp4", "done"), ("c.mov", "skipped")]
    assert results[0].objects == 2 and read_annotations(out / "a.csv").ids() == [1, 2]
    rerun = run_batch(folder, _seeds(tmp_path, [f"a.mp4,0,{_box(truth[0])}", f"b,0,{_box(truth[0])}"]), out)
    assert [(r.video, r.status) for r in rerun[:2]] == [("a.mp4", "skipped"), ("b.mp4", "skipped")]
    rows = [(r["video"], r["status"], r["objects"]) for r in _summary(out)]
    assert rows == [("a.mp4", "done", "2"), ("b.mp4", "done", "1"), ("c.mov", "skipped", "")]


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


def test_a_video_whose_output_would_be_the_batch_record_fails_alone(folder, tmp_path, small_video) -> None:
    """A video named batch.mp4 would write batch.csv over the record (issue 24.2: what batch
    writes and what `export --batch` reads as its outputs is one rule, `is_output`)."""
    _, truth = small_video
    (folder / "batch.mp4").write_bytes((folder / "a.mp4").read_bytes())
    seeds = _seeds(tmp_path, [f"batch.mp4,0,{_box(truth[0])}", f"a.mp4,0,{_box(truth[0])}"])
    out = tmp_path / "out"
    results = run_batch(folder, seeds, out, tracker="kcf")
    assert [(r.video, r.status) for r in results[:2]] == [("batch.mp4", "failed"), ("a.mp4", "done")]
    assert "batch.csv" in results[0].message and "rename the video" in results[0].message
    assert [r["video"] for r in _summary(out) if r["status"] != "skipped"] == ["a.mp4", "batch.mp4"]
    assert [p.name for p in outputs_in(out)] == ["a.csv"]


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


def _outputs(out: Path) -> list[str]:
    """The annotation and preview files in `out` (not the batch record or its lock)."""
    return sorted(p.name for p in out.iterdir() if p.name not in (SUMMARY_NAME, LOCK_NAME))


def _summary(out: Path) -> list[dict[str, str]]:
    with (out / SUMMARY_NAME).open(newline="") as f:
        return list(csv.DictReader(f))


# ---- shards ----------------------------------------------------------------------------------

_STEMS = st.lists(st.text("abcxyz019_-", min_size=1, max_size=6), unique=True, max_size=12)


@settings(max_examples=40, deadline=None)
@given(seeded=_STEMS, unseeded=_STEMS, count=st.integers(1, 6), order_seed=st.integers(0, 2**16))
def test_shards_of_a_seeds_file_partition_its_videos(seeded, unseeded, count, order_seed) -> None:
    """Over random folders: shards 1..N are disjoint, cover every seeded video, differ in size
    by one at most, and do not depend on the order of the seeds file."""
    unseeded = [s for s in unseeded if s not in seeded]
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "videos", Path(tmp) / "out"
        folder.mkdir()
        out.mkdir()
        for stem in [*seeded, *unseeded]:
            (folder / f"{stem}.mp4").write_bytes(b"")
        for stem in seeded:  # finished outputs: each shard lists its videos as skipped, tracks none
            (out / f"{stem}.csv").write_bytes(b"")
        rows = [f"{stem},0,1,1,4,4" for stem in seeded]
        random.Random(order_seed).shuffle(rows)
        seeds = Path(tmp) / "seeds.csv"
        seeds.write_text("video,frame,x,y,w,h\n" + "".join(f"{r}\n" for r in rows))
        shards = []
        for k in range(1, count + 1):
            if not seeded:
                with pytest.raises(FormatError, match="no seed rows"):
                    run_batch(folder, seeds, out, tracker="kcf", shard=Shard(k, count))
                continue
            results = run_batch(folder, seeds, out, tracker="kcf", shard=Shard(k, count))
            assert {r.status for r in results} <= {"skipped"}
            assert sorted(r.video for r in results if r.message == "no seeds") == sorted(f"{s}.mp4" for s in unseeded)
            shards.append([r.video for r in results if r.message != "no seeds"])
    if seeded:
        everything = [name for shard in shards for name in shard]
        assert sorted(everything) == sorted(f"{s}.mp4" for s in seeded)  # a cover, disjoint (no name twice)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "1-2", "1/2/3", ""])
def test_shard_specs_other_than_k_of_n_are_rejected(text) -> None:
    with pytest.raises(ValueError):
        parse_shard(text)
    assert parse_shard(" 2 / 3 ") == Shard(2, 3)
    assert str(Shard(2, 3)) == "2/3"


# ---- batch.csv -------------------------------------------------------------------------------


def test_batch_csv_keeps_one_row_per_video_across_reruns(folder, tmp_path, small_video) -> None:
    _, truth = small_video
    out = tmp_path / "out"
    run_batch(folder, _seeds(tmp_path, [f"a.mp4,0,{_box(truth[0])}", "b.mp4,0,900,900,10,10"]), out, tracker="kcf")
    first = {r["video"]: r for r in _summary(out)}
    assert (first["a.mp4"]["status"], first["a.mp4"]["frames"], first["b.mp4"]["status"]) == ("done", "40", "failed")

    fixed = _seeds(tmp_path, [f"a.mp4,0,{_box(truth[0])}", f"b.mp4,0,{_box(truth[0])}"])
    again = run_batch(folder, fixed, out, tracker="kcf")
    assert [r.status for r in again] == ["skipped", "done", "skipped"]
    rows = _summary(out)
    assert [r["video"] for r in rows] == ["a.mp4", "b.mp4", "c.mov"]
    assert rows[0] == first["a.mp4"]  # skipped because done: the row of the run that did it stays
    assert (rows[1]["status"], rows[1]["frames"], rows[1]["error"]) == ("done", "40", "")
    assert list(rows[0]) == list(COLUMNS)


def _write_rows(out: Path, prefix: str, count: int) -> None:
    for i in range(count):
        update_summary(out, [BatchResult(f"{prefix}-{i:02d}", "done", "", frames=i, objects=1, seconds=0.5)])


def test_batch_csv_updates_from_concurrent_processes_are_all_kept(tmp_path) -> None:
    """Shards on several machines update one batch.csv: every row of every writer survives."""
    writers, rows_each = 4, 15
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(writers, mp_context=context) as pool:
        for future in [pool.submit(_write_rows, tmp_path, f"shard{w}", rows_each) for w in range(writers)]:
            future.result()
    rows = _summary(tmp_path)
    assert len(rows) == writers * rows_each
    assert {r["video"] for r in rows} == {f"shard{w}-{i:02d}" for w in range(writers) for i in range(rows_each)}
    assert _outputs(tmp_path) == []  # no temporary file left behind


def test_a_malformed_batch_csv_is_reported_not_overwritten(folder, tmp_path, small_video) -> None:
    _, truth = small_video
    out = tmp_path / "out"
    out.mkdir()
    (out / SUMMARY_NAME).write_text("name,state\nx,y\n")
    with pytest.raises(FormatError, match="expected video,status"):
        run_batch(folder, _seeds(tmp_path, [f"a.mp4,0,{_box(truth[0])}"]), out, tracker="kcf")
    assert (out / SUMMARY_NAME).read_text() == "name,state\nx,y\n"


# ---- worker processes ------------------------------------------------------------------------


def _assert_same_boxes(out: Path, reference: dict[str, np.ndarray]) -> None:
    boxes = batch_boxes(out)
    assert sorted(boxes) == sorted(reference)
    for stem, expected in reference.items():
        assert boxes[stem].shape == expected.shape
        np.testing.assert_allclose(boxes[stem], expected, rtol=0, atol=BOX_TOLERANCE_PX)


def test_two_workers_give_the_plain_batchs_boxes_retry_a_killed_worker_and_isolate_a_corrupt_video(
    batch_videos, batch_reference, tmp_path
) -> None:
    folder, seeds = with_corrupt_video(batch_videos, tmp_path)
    out = tmp_path / "out"
    seen: dict[str, int] = {}
    killed: list[int] = []

    class KillOnceMidVideo:
        def frames(self, video: str, stage: str, done: int, total: int) -> None:
            seen[video] = done
            if not killed and 0 < done < total:  # both workers are busy: the pool breaks
                for process in multiprocessing.active_children():
                    process.kill()
                    killed.append(process.pid)

        def finished(self, result: BatchResult, done: int, total: int) -> None:
            assert total == len(BATCH_VIDEOS) + 1

    results = run_batch(folder, seeds, out, tracker="ibfp", device="cpu", workers=2, progress=KillOnceMidVideo())
    assert killed
    assert [(r.video, r.status) for r in results] == [*((v, "done") for v in BATCH_VIDEOS), ("bad.mp4", "failed")]
    assert "corrupt" in results[-1].message
    assert seen == dict.fromkeys(BATCH_VIDEOS, 40)  # every frame of every video reported to this process
    assert _outputs(out) == [f"{Path(v).stem}.csv" for v in BATCH_VIDEOS]  # nothing left of the killed run
    _assert_same_boxes(out, batch_reference)
    assert [r["status"] for r in _summary(out)] == ["failed", "done", "done", "done", "done"]


def test_ray_batch_without_ray_installed_says_how_to_install_it(folder, tmp_path, small_video, monkeypatch) -> None:
    _, truth = small_video
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(IBFPError, match=r"--ray needs Ray 2\.x: pip install"):
        run_batch(folder, _seeds(tmp_path, [f"a.mp4,0,{_box(truth[0])}"]), tmp_path / "out", ray=RayOptions())
    assert _outputs(tmp_path / "out") == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["batch", "v", "--ray"], ["batch", "v", "--ray", "local"]),
        (["batch", "--ray", "v", "--seeds", "s"], ["batch", "--ray", "local", "v", "--seeds", "s"]),
        (["batch", "v", "--ray", "--workers", "2"], ["batch", "v", "--ray", "local", "--workers", "2"]),
        (["batch", "v", "--ray", "auto"], ["batch", "v", "--ray", "auto"]),
        (["batch", "v", "--ray", "local"], ["batch", "v", "--ray", "local"]),
        (["batch", "v", "--ray", "10.0.0.7:6379"], ["batch", "v", "--ray", "10.0.0.7:6379"]),
        (["batch", "v", "--ray", "head-node.cluster:6379"], ["batch", "v", "--ray", "head-node.cluster:6379"]),
        (["batch", "v", "--ray", "ray://head:10001"], ["batch", "v", "--ray", "ray://head:10001"]),
        (["batch", "v", "--ray", "[::1]:6379"], ["batch", "v", "--ray", "[::1]:6379"]),
        (["batch", "v", "--ray=auto"], ["batch", "v", "--ray=auto"]),
        (["batch", "--", "--ray"], ["batch", "--", "--ray"]),
        (["track", "video.mp4"], ["track", "video.mp4"]),
    ],
)
def test_ray_given_alone_means_a_local_cluster(args, expected) -> None:
    assert fill_optional_values(args) == expected


def test_a_ray_address_nobody_listens_on_fails_at_once_with_one_line() -> None:
    with socket.socket() as listener:  # a port that was just free: nothing listens on it now
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}", f"[::1]:{port}"):
        with pytest.raises(IBFPError, match=rf"cannot reach Ray at {re.escape(address)}: \S"):
            check_reachable(address)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        check_reachable(f"127.0.0.1:{listener.getsockname()[1]}")  # someone listens: no error
    for address in ("local", "auto"):
        check_reachable(address)  # not network addresses: Ray's to handle
