"""Frames/s of `ibfp batch` over the same generated videos: one worker, N local worker
processes, and Ray, all in one run so the ratios hold on a busy machine too:

    python benchmarks/batch_scaling.py                    # 4 clips of 160x120, 40 frames; --workers 2
    python benchmarks/batch_scaling.py --size 640x480 --frames 300   # clips as users annotate them
    python benchmarks/batch_scaling.py --videos 8 --frames 100 --workers 4
    python benchmarks/batch_scaling.py --device cuda --workers 4 --gpus-per-worker 0.25

Each configuration starts from an empty output folder, so every video is tracked. Ray is
timed twice: with the start and stop of its local cluster (`--ray` as a user runs it) and on a
cluster already running (as on a real cluster, joined with `--ray auto`). For each run with
workers, "outside videos" is the share of the workers' time (workers x wall time) not spent
inside a video (process or actor start, torch import, cluster start, scheduling, waiting on
the slowest video); Ray's overhead is how much more of it a Ray run has than the local run
with as many workers. Without Ray installed its rows are left out.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ibfp_cli.batch.pool import cpu_cores
from ibfp_cli.batch.ray_runner import DEFAULT_GPUS_PER_WORKER, RayOptions
from ibfp_cli.batch.runner import run_batch
from ibfp_cli.media.synthetic import SyntheticSpec, write_synthetic_video

CLIP = SyntheticSpec(width=160, height=120, frames=40, object_size=(32, 24))
"""The tests' clip (tests/conftest.py SMALL_SPEC): issue 13 asks for the scaling of these."""


def make_videos(folder: Path, count: int, clip: SyntheticSpec) -> Path:
    """`count` different clips like `clip` in `folder` and a seeds file with each one's true first box."""
    rows = ["video,frame,x,y,w,h"]
    for seed in range(1, count + 1):
        name = f"v{seed}.mp4"
        truth = write_synthetic_video(folder / name, replace(clip, seed=seed))
        rows.append(f"{name},0,{','.join(f'{v:g}' for v in truth[0])}")
    seeds = folder / "seeds.csv"
    seeds.write_text("\n".join(rows) + "\n")
    return seeds


@dataclass(frozen=True)
class Run:
    label: str
    workers: int
    seconds: float
    frames: int
    video_seconds: float
    """Sum of the seconds each video took inside its worker."""

    @property
    def outside_videos(self) -> float:
        return 1 - self.video_seconds / (self.workers * self.seconds)


def timed_batch(label: str, folder: Path, seeds: Path, out: Path, workers: int = 1, **options: object) -> Run:
    """One batch run into the empty folder `out`."""
    start = time.perf_counter()
    results = run_batch(folder, seeds, out, tracker="ibfp", workers=workers, **options)
    seconds = time.perf_counter() - start
    if any(r.status != "done" for r in results):
        raise SystemExit(f"a video did not finish: {[r for r in results if r.status != 'done']}")
    frames = sum(r.frames or 0 for r in results)
    return Run(label, workers, seconds, frames, sum(r.seconds or 0 for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=CLIP.frames)
    parser.add_argument("--size", default=f"{CLIP.width}x{CLIP.height}", help="WxH (the object scales with it)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel rows")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--gpus-per-worker", type=float, default=DEFAULT_GPUS_PER_WORKER, help="Ray rows on CUDA")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    scale = width / CLIP.width
    clip = replace(
        CLIP,
        width=width,
        height=height,
        frames=args.frames,
        object_size=(round(CLIP.object_size[0] * scale), round(CLIP.object_size[1] * scale)),
    )
    load = os.getloadavg()[0]

    rows: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seeds = make_videos(folder, args.videos, clip)

        def run(label: str, **options: object) -> Run:
            out = folder / f"out{len(rows)}"
            rows.append(timed_batch(label, folder, seeds, out, device=args.device, **options))
            return rows[-1]

        run("batch (one video at a time, this process)")
        local = run(f"batch --workers {args.workers}", workers=args.workers)
        ray_runs: list[Run] = []
        try:
            import ray
        except ImportError:
            ray = None
        if ray is not None:
            cluster = RayOptions(gpus_per_worker=args.gpus_per_worker)
            label = f"batch --ray --workers {args.workers} (cluster start and stop included)"
            ray_runs.append(run(label, workers=args.workers, ray=cluster))
            ray.init(include_dashboard=False, log_to_driver=False)  # this machine's CPUs and GPUs
            try:
                label = f"batch --ray (cluster running) --workers {args.workers}"
                ray_runs.append(run(label, workers=args.workers, ray=cluster))
            finally:
                ray.shutdown()

    size = f"{clip.width}x{clip.height}"
    table = Table(title=f"batch over {args.videos} clips of {size}, {args.frames} frames (IBFP, {args.device})")
    for column in ("configuration", "seconds", "frames", "frames/s", "vs one at a time", "outside videos"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    base = rows[0].frames / rows[0].seconds
    for r in rows:
        speed = r.frames / r.seconds
        outside = f"{r.outside_videos:.0%}" if r.workers > 1 else ""
        table.add_row(r.label, f"{r.seconds:.1f}", str(r.frames), f"{speed:.1f}", f"x{speed / base:.2f}", outside)
    console = Console()
    console.print(table)
    for r in ray_runs:
        extra = r.outside_videos - local.outside_videos
        console.print(f"Ray overhead ({r.label}): {extra:+.0%} of its time beyond the local run's")
    console.print(f"{cpu_cores()} CPU cores; load average before the run {load:.1f}, after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
