"""Annotate a folder of videos from one seeds file, one output per video, resumable.

A batch is planned here (which videos, which outputs, which are already done), then its
videos are run here one after another, in a pool of local worker processes
(`pool`) or on a Ray cluster (`ray_runner`), each as a `jobs.VideoJob`. However they run,
each finished video is recorded in `DIR/batch.csv` (`summary`) as soon as it finishes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..annotate.pipeline import Seed, load_seeds
from ..errors import IBFPError
from ..formats import FORMAT_BY_EXTENSION, resolve_format
from ..media.atomic import ensure_folder
from .jobs import BatchProgress, BatchResult, TrackOptions, VideoJob, annotate
from .shards import Shard
from .summary import RECORD_NAMES, update_summary

if TYPE_CHECKING:
    from .ray_runner import RayOptions

VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
)
"""File suffixes taken for videos when listing a folder or completing a name without one."""
PREVIEW_SUFFIX = ".preview.mp4"
"""A video's preview is written beside its boxes as `<stem>.preview.mp4`."""
DEFAULT_RETRIES = 1
"""Times a video is run again after the worker running it died (a crash, a lost node)."""


def run_batch(
    folder: str | os.PathLike[str],
    seeds_csv: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    fmt: str = "csv",
    tracker: str = "ibfp",
    device: str = "auto",
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    tracker_config: dict[str, Any] | None = None,
    render: bool = False,
    shard: Shard | None = None,
    workers: int | None = None,
    retries: int = DEFAULT_RETRIES,
    ray: RayOptions | None = None,
    progress: BatchProgress | None = None,
) -> list[BatchResult]:
    """Track the seeded objects of each video in `folder`, writing `<stem>.<ext>` to `out_dir`.

    Existing outputs are skipped (they are complete: every output is written atomically);
    a video that fails is reported and the others go on; videos without seeds are listed
    as skipped. The seeds file, format and output folder are checked before any video.
    `shard` keeps only that shard's seeded videos. `workers` videos run at once: here in
    worker processes (default 1, in this process), or as Ray actors with `ray` (default:
    as many as the cluster has room for). A video whose worker died is run again up to
    `retries` times. `tracker_config`: IBFP tracker settings in place of the weights' own (as
    `parse_settings` gives them). Every result is also merged into `out_dir/batch.csv`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise IBFPError(f"video folder {folder} does not exist")
    listing = videos_in(folder)
    seeds = load_seeds(seeds_csv, key=lambda name: video_key(folder, name, listing))
    extension = resolve_format(Path(out_dir), fmt).extensions[0]
    if workers is not None and workers < 1:
        raise IBFPError(f"--workers must be 1 or more, not {workers}")
    if retries < 0:
        raise IBFPError(f"--retries must be 0 or more, not {retries}")
    out_dir = ensure_folder(out_dir)
    options = TrackOptions(
        fmt, tracker, device, Path(weights) if weights is not None else None, backend, dict(tracker_config or {})
    )

    planned, jobs = _plan(folder, listing, seeds, out_dir, extension, render, shard)
    results = {r.video: r for r in planned}
    update_summary(out_dir, planned)

    def finished(result: BatchResult) -> None:
        results[result.video] = result
        update_summary(out_dir, [result])
        if progress is not None:
            progress.finished(result, len(results) - len(planned), len(jobs))

    frames = progress.frames if progress is not None else None
    if ray is not None:
        from .ray_runner import run_on_ray

        run_on_ray(jobs, options, ray, workers, retries, frames, finished)
    elif workers is not None and workers > 1 and len(jobs) > 1:
        from .pool import run_in_pool

        run_in_pool(jobs, options, workers, retries, frames, finished)
    else:
        for job in jobs:
            report = (lambda stage, done, total, name=job.name: frames(name, stage, done, total)) if frames else None
            finished(annotate(job, options, report))
    order = [*seeds, *(r.video for r in planned)]
    return [results[name] for name in dict.fromkeys(order) if name in results]


def _plan(
    folder: Path,
    listing: Sequence[Path],
    seeds: dict[str, list[Seed]],
    out_dir: Path,
    extension: str,
    render: bool,
    shard: Shard | None,
) -> tuple[list[BatchResult], list[VideoJob]]:
    """Results known without running anything (missing or clashing videos, finished outputs,
    videos without seeds) and the jobs to run, in the seeds file's order. `seeds` are keyed
    by `video_key`; `listing` is the folder's videos."""
    keep = set(shard.select(seeds)) if shard is not None else set(seeds)
    known: list[BatchResult] = []
    jobs: list[VideoJob] = []
    writers: dict[Path, str] = {}  # output -> the seeds name that writes it (over all shards)
    for name, video_seeds in seeds.items():
        try:
            video = find_video(folder, name, listing)
            out = out_dir / f"{video.stem}{extension}"
            if not is_output(out):
                raise IBFPError(f"its output would be {out.name}, a name the batch keeps for itself; rename the video")
            if writers.setdefault(out, name) != name:
                raise IBFPError(f"another video already wrote {out.name}; rename one of them")
        except IBFPError as e:
            if name in keep:
                known.append(BatchResult(name, "failed", str(e)))
            continue
        if name not in keep:
            continue
        preview = out_dir / f"{video.stem}{PREVIEW_SUFFIX}" if render else None
        if out.exists() and (preview is None or preview.exists()):
            known.append(BatchResult(name, "skipped", f"{out.name} already exists", out))
        else:
            jobs.append(VideoJob(name, video, tuple(video_seeds), out, preview))
    for video in listing:
        if video.name not in seeds:
            known.append(BatchResult(video.name, "skipped", "no seeds"))
    return known, jobs


def find_video(folder: Path, name: str, videos: Sequence[Path] | None = None) -> Path:
    """The video `name` in `folder`: that file, or the one video file whose stem is `name`.
    `videos` is the folder's listing when the caller already has it."""
    path = folder / name
    if path.is_file():
        return path
    if not Path(name).suffix:
        candidates = [p for p in (videos_in(folder) if videos is None else videos) if p.stem == name]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            names = ", ".join(p.name for p in candidates)
            raise IBFPError(f"video {name!r} is ambiguous in {folder}: {names}")
    raise IBFPError(f"video {name!r} not found in {folder}")


def video_key(folder: Path, name: str, videos: Sequence[Path]) -> str:
    """The one name a batch records a video under, however the seeds name it: its file's path
    in `folder` (`walk` and `walk.mp4` are both `walk.mp4`); a name that finds no single video
    is kept as written (its error is reported under it)."""
    try:
        return find_video(folder, name, videos).relative_to(folder).as_posix()
    except IBFPError:
        return name


def outputs_in(out_dir: Path) -> list[Path]:
    """The annotation files in a batch's output folder, sorted by name (see `is_output`)."""
    return sorted(p for p in out_dir.iterdir() if p.is_file() and is_output(p))


def is_output(path: Path) -> bool:
    """Whether a file in a batch's output folder is an annotation file: it has an annotation
    format's extension and is neither the batch's record (batch.csv, its lock) nor hidden
    (a temporary file of an unfinished write, `.<stem>.<random>.partial<ext>`)."""
    name = path.name
    return path.suffix.lower() in FORMAT_BY_EXTENSION and name not in RECORD_NAMES and not name.startswith(".")


def videos_in(folder: Path) -> list[Path]:
    """The files in `folder` with a video suffix, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
