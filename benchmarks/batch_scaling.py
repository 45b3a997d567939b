"""Frames/s of `ibfp batch` over the same generated videos: one worker, N local worker
processes, and Ray, all in one run so the ratios hold on a busy machine too:

    python benchmarks/batch_scaling.py                    # 4 clips of 160x120, 40 frames; --workers 2
    python benchmarks/batch_scaling.py --videos 8 --frames 100 --workers 4

Each configuration starts from an empty output folder, so every video is tracked. Ray is
timed twice: with the start of its local cluster (`--ray local` as a user runs it) and on a
cluster already running (as on a real cluster, joined with `--ray auto`). Ray's overhead is
the share of the Ray run's time that the local run with as many workers did not need.
Without Ray installed its rows are left out.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ibfp_cli.batch import run_batch
from ibfp_cli.batch_pool import cpu_cores
from ibfp_cli.synthetic import SyntheticSpec, write_synthetic_video

CLIP = SyntheticSpec(width=160, height=120, frames=40, object_size=(32, 24))
"""The tests' clip (tests/conftest.py SMALL_SPEC): issue 13 asks for the scaling of these."""


def make_videos(folder: Path, count: int, frames: int) -> Path:
    """`count` different clips in `folder` and a seeds file with each one's true first box."""
    rows = ["video,frame,x,y,w,h"]
    for seed in range(1, count + 1):
        name = f"v{seed}.mp4"
        truth = write_synthetic_video(folder / name, replace(CLIP, frames=frames, seed=seed))
        rows.append(f"{name},0,{','.join(f'{v:g}' for v in truth[0])}")
    seeds = folder / "seeds.csv"
    seeds.write_text("\n".join(rows) + "\n")
    return seeds


def timed_batch(folder: Path, seeds: Path, out: Path, **options: object) -> tuple[float, int]:
    """Seconds of one batch run into the empty folder `out`, and the frames it tracked."""
    start = time.perf_counter()
    results = run_batch(folder, seeds, out, tracker="ibfp", device="cpu", **options)
    seconds = time.perf_counter() - start
    if any(r.status != "done" for r in results):
        raise SystemExit(f"a video did not finish: {[r for r in results if r.status != 'done']}")
    return seconds, sum(r.frames or 0 for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=CLIP.frames)
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel rows")
    args = parser.parse_args()
    load = os.getloadavg()[0]

    rows: list[tuple[str, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seeds = make_videos(folder, args.videos, args.frames)
        runs = iter(range(1000))

        def run(label: str, **options: object) -> float:
            seconds, frames = timed_batch(folder, seeds, folder / f"out{next(runs)}", **options)
            rows.append((label, seconds, frames))
            return seconds

        run("batch (one video at a time, this process)")
        local = run(f"batch --workers {args.workers}", workers=args.workers)
        ray_rows: list[tuple[str, float]] = []
        try:
            import ray

            from ibfp_cli.batch_ray import RayOptions
        except ImportError:
            ray = None
        if ray is not None:
            with_start = run(f"batch --ray local --workers {args.workers}", workers=args.workers, ray=RayOptions())
            ray.init(num_cpus=cpu_cores(), include_dashboard=False, log_to_driver=False)
            try:
                running = run(
                    f"batch --ray (cluster running) --workers {args.workers}", workers=args.workers, ray=RayOptions()
                )
            finally:
                ray.shutdown()
            ray_rows = [("with cluster start", with_start), ("cluster running", running)]

    size = f"{CLIP.width}x{CLIP.height}"
    table = Table(title=f"batch over {args.videos} clips of {size}, {args.frames} frames (IBFP, CPU)")
    for column in ("configuration", "seconds", "frames", "frames/s", "vs one at a time"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    base = rows[0][2] / rows[0][1]
    for label, seconds, frames in rows:
        speed = frames / seconds
        table.add_row(label, f"{seconds:.1f}", str(frames), f"{speed:.1f}", f"x{speed / base:.2f}")
    console = Console()
    console.print(table)
    for label, seconds in ray_rows:
        console.print(f"Ray overhead, {label}: {max(0.0, 1 - local / seconds):.0%} of the Ray run's time")
    console.print(f"{cpu_cores()} CPU cores; load average before the run {load:.1f}, after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
