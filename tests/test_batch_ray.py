"""`batch --ray` on a local Ray cluster: the plain batch's boxes, failures isolated, a killed
worker's video left clean and completed by the re-run. Skipped where Ray is not installed."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import BATCH_VIDEOS, batch_boxes, with_corrupt_video

from ibfp_cli.batch.jobs import BatchResult
from ibfp_cli.batch.ray_runner import RayOptions
from ibfp_cli.batch.runner import run_batch
from ibfp_cli.batch.summary import LOCK_NAME, SUMMARY_NAME

ray = pytest.importorskip("ray")

CLUSTER_CPUS = 2
"""The test cluster: this machine's two cores (CI's runners have two)."""
BOX_TOLERANCE_PX = 0.5
"""Cluster runs must give the plain batch's boxes to this (issue 13)."""


@pytest.fixture(scope="module")
def ray_cluster() -> None:
    """One local Ray cluster for all the Ray tests (all in this module), stopped after them so
    the rest of the suite runs without it; `run_batch` uses a connected Ray as it is."""
    ray.init(num_cpus=CLUSTER_CPUS, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with (out / SUMMARY_NAME).open(newline="") as f:
        return {row["video"]: row for row in csv.DictReader(f)}


def _outputs(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name not in (SUMMARY_NAME, LOCK_NAME))


def test_ray_batch_gives_the_plain_batchs_boxes_isolates_failures_and_resumes(
    ray_cluster, batch_videos, batch_reference, tmp_path
) -> None:
    folder, with_bad = with_corrupt_video(batch_videos, tmp_path)
    out = tmp_path / "out"
    frames: dict[str, int] = {}
    finished: list[tuple[int, int]] = []
    actors: set[str] = set()

    class Progress:
        def frames(self, video: str, stage: str, done: int, total: int) -> None:
            frames[video] = done
            actors.update(n for n in ray.util.list_named_actors() if n.startswith("ibfp-batch-"))

        def finished(self, result: BatchResult, done: int, total: int) -> None:
            finished.append((done, total))

    results = run_batch(folder, with_bad, out, tracker="ibfp", device="cpu", ray=RayOptions(), progress=Progress())
    assert [(r.video, r.status) for r in results] == [*((v, "done") for v in BATCH_VIDEOS), ("bad.mp4", "failed")]
    assert "corrupt" in results[-1].message
    assert frames == dict.fromkeys(BATCH_VIDEOS, 40)  # frames of every video reached the driver
    assert sorted(finished) == [(n, 5) for n in range(1, 6)]
    assert len(actors) == CLUSTER_CPUS  # one worker per CPU ran all five videos, its network loaded once
    boxes = batch_boxes(out)
    assert sorted(boxes) == sorted(batch_reference)
    for stem, expected in batch_reference.items():
        assert boxes[stem].shape == expected.shape
        np.testing.assert_allclose(boxes[stem], expected, rtol=0, atol=BOX_TOLERANCE_PX)
    summary = _summary(out)
    assert {v: (r["status"], r["frames"]) for v, r in summary.items()} == {
        **{v: ("done", "40") for v in BATCH_VIDEOS},
        "bad.mp4": ("failed", ""),
    }

    again = run_batch(folder, with_bad, out, tracker="ibfp", device="cpu", ray=RayOptions())
    assert [r.status for r in again] == ["skipped"] * len(BATCH_VIDEOS) + ["failed"]
    rerun = _summary(out)
    assert {v: rerun[v] for v in BATCH_VIDEOS} == {v: summary[v] for v in BATCH_VIDEOS}  # done rows kept as they were
    assert rerun["bad.mp4"]["status"] == "failed"


def test_a_killed_ray_worker_leaves_no_partial_output_and_the_rerun_completes_it(
    ray_cluster, batch_videos, batch_reference, tmp_path
) -> None:
    videos, seeds = batch_videos
    two = tmp_path / "seeds.csv"
    two.write_text("".join(seeds.read_text().splitlines(keepends=True)[:3]))  # header and v1, v2
    out = tmp_path / "out"
    killed: list[str] = []

    class KillOneWorkerMidVideo:
        def frames(self, video: str, stage: str, done: int, total: int) -> None:
            if not killed and 0 < done < total:
                name = sorted(n for n in ray.util.list_named_actors() if n.startswith("ibfp-batch-"))[0]
                ray.kill(ray.get_actor(name), no_restart=True)
                killed.append(name)

        def finished(self, result: BatchResult, done: int, total: int) -> None:
            pass

    killer = KillOneWorkerMidVideo()
    first = run_batch(videos, two, out, tracker="ibfp", device="cpu", ray=RayOptions(), retries=0, progress=killer)
    assert killed
    first = [r for r in first if r.message != "no seeds"]  # v3 and v4 are not in this seeds file
    assert sorted(r.status for r in first) == ["done", "failed"]  # the other worker's video finished
    failed = next(r for r in first if r.status == "failed")
    done = next(r for r in first if r.status == "done")
    assert "died" in failed.message
    assert _outputs(out) == [done.output.name]  # nothing of the killed video, not even a temporary file
    assert _summary(out)[failed.video]["status"] == "failed"

    second = run_batch(videos, two, out, tracker="ibfp", device="cpu", ray=RayOptions())
    second = {r.video: r.status for r in second if r.message != "no seeds"}
    assert second == {failed.video: "done", done.video: "skipped"}
    assert _outputs(out) == ["v1.csv", "v2.csv"]
    assert {v: r["status"] for v, r in _summary(out).items() if r["error"] != "no seeds"} == dict.fromkeys(
        ("v1.mp4", "v2.mp4"), "done"
    )
    boxes = batch_boxes(out)
    for stem in ("v1", "v2"):
        np.testing.assert_allclose(boxes[stem], batch_reference[stem], rtol=0, atol=BOX_TOLERANCE_PX)


@pytest.mark.parametrize("where", ["last", "before the folder"])
def test_ray_with_no_address_runs_the_batch_from_the_command_line(
    where, ray_cluster, batch_videos, batch_reference, tmp_path, monkeypatch
) -> None:
    """`ibfp batch ... --ray` as the README's cluster section runs it, the flag given alone
    (at the end, or with the folder after it); Ray here is the tests' connected cluster."""
    from ibfp_cli import cli

    videos, seeds = batch_videos
    out = tmp_path / "out"
    rest = ["--seeds", str(seeds), "--out-dir", str(out), "--device", "cpu"]
    args = [str(videos), *rest, "--ray"] if where == "last" else ["--ray", str(videos), *rest]
    monkeypatch.setattr("sys.argv", ["ibfp", "batch", *args])
    with pytest.raises(SystemExit) as exited:
        cli.run()
    assert exited.value.code == 0
    boxes = batch_boxes(out)
    assert sorted(boxes) == sorted(batch_reference)
    for stem, expected in batch_reference.items():
        np.testing.assert_allclose(boxes[stem], expected, rtol=0, atol=BOX_TOLERANCE_PX)
