"""One video of a batch: the job, how it runs, what it gives back; shared by every runner.

The runner (`runner`) plans the jobs; they run in its process, in local worker processes
(`pool`) or on Ray actors (`ray_runner`), each through `annotate`. All of them import the
types here, and this module imports none of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ..annotate.pipeline import Seed, track_to_file
from ..errors import IBFPError
from ..formats import read_annotations
from ..media.atomic import remove_partials
from ..media.render import render_video
from ..wording import boxes_of_objects

BatchStatus = Literal["done", "skipped", "failed"]
Stage = Literal["tracking", "rendering"]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What happened to one video: its name, status, a one-line message, its output file and,
    for a video run now, the frames tracked, the objects and the seconds it took."""

    video: str
    status: BatchStatus
    message: str
    output: Path | None = None
    frames: int | None = None
    objects: int | None = None
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class TrackOptions:
    """How every video of a batch is tracked (sent as is to worker processes)."""

    fmt: str = "csv"
    tracker: str = "ibfp"
    device: str = "auto"
    weights: Path | None = None
    backend: str = "auto"
    tracker_config: dict[str, Any] = field(default_factory=dict)  # IBFP settings over the weights' own


@dataclass(frozen=True, slots=True)
class VideoJob:
    """One video to run: its name in the seeds file, its file, seeds and outputs."""

    name: str
    video: Path
    seeds: tuple[Seed, ...]
    out: Path
    preview: Path | None


class BatchProgress(Protocol):
    """What a batch reports while it runs, wherever its videos run."""

    def frames(self, video: str, stage: Stage, done: int, total: int) -> None:
        """`done` of `total` frames of `video` went through `stage`."""

    def finished(self, result: BatchResult, done: int, total: int) -> None:
        """A video finished (done, failed or skipped by its worker); `done` of `total` have."""


FramesCallback = Callable[[Stage, int, int], None]
"""Called as report(stage, done, total) while one video is processed."""
VideoFrames = Callable[[str, Stage, int, int], None]
"""Called as frames(video, stage, done, total) in the process that runs the batch."""
ResultCallback = Callable[[BatchResult], None]
"""Called with each video's result as it finishes, in the process that runs the batch."""


def annotate(job: VideoJob, options: TrackOptions, report: FramesCallback | None = None) -> BatchResult:
    """Track one video and render its preview, skipping whatever a previous run finished.

    Runs wherever the batch puts it (this process, a worker process, a Ray actor). Any error
    fails this video only; leftovers of a run killed on this video are removed first.
    """
    start = time.perf_counter()
    for target in (job.out, job.preview):
        if target is not None:
            remove_partials(target)
    try:
        if job.out.exists():
            annotations = read_annotations(job.out, options.fmt)
        else:
            annotations = track_to_file(
                job.video,
                job.seeds,
                job.out,
                fmt=options.fmt,
                tracker=options.tracker,
                device=options.device,
                backend=options.backend,
                weights=options.weights,
                tracker_options={"tracker_config": options.tracker_config},
                progress=(lambda done, total: report("tracking", done, total)) if report else None,
            )
        if job.preview is not None:
            render_video(
                job.video,
                annotations,
                job.preview,
                progress=(lambda done, total: report("rendering", done, total)) if report else None,
            )
    except Exception as e:  # one bad video never stops the others (IBFPError or not)
        message = str(e) if isinstance(e, IBFPError) else f"{type(e).__name__}: {e}"
        return BatchResult(job.name, "failed", message, seconds=time.perf_counter() - start)
    objects = len(annotations.ids())
    return BatchResult(
        job.name,
        "done",
        boxes_of_objects(len(annotations.records), objects),
        job.out,
        frames=len({r.frame for r in annotations.records}),
        objects=objects,
        seconds=time.perf_counter() - start,
    )


def worker_died(job: VideoJob, attempts: int) -> BatchResult:
    """The result of a video whose worker died on each of its `attempts`; removes its leftovers."""
    for target in (job.out, job.preview):
        if target is not None:
            remove_partials(target)
    times = "once" if attempts == 1 else f"{attempts} times"
    return BatchResult(job.name, "failed", f"the worker running it died ({times}); run the batch again to retry")
