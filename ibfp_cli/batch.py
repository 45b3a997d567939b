"""Annotate a folder of videos from one seeds file, one output per video, resumable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .atomic import ensure_folder
from .errors import IBFPError
from .formats import read_annotations, resolve_format
from .pipeline import Seed, load_seeds, track_to_file
from .progress import StageProgress
from .render import render_video

VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
)
"""File suffixes taken for videos when listing a folder or completing a name without one."""
PREVIEW_SUFFIX = ".preview.mp4"
"""A video's preview is written beside its boxes as `<stem>.preview.mp4`."""

BatchStatus = Literal["done", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What happened to one video: its name, status, a one-line message and its output file."""

    video: str
    status: BatchStatus
    message: str
    output: Path | None = None


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
    render: bool = False,
    progress: StageProgress | None = None,
) -> list[BatchResult]:
    """Track the seeded objects of each video in `folder`, writing `<stem>.<ext>` to `out_dir`.

    Existing outputs are skipped (they are complete: every output is written atomically);
    a video that fails is reported and the others go on; videos without seeds are listed
    as skipped. The seeds file, format and output folder are checked before any video.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise IBFPError(f"video folder {folder} does not exist")
    seeds = load_seeds(seeds_csv)
    extension = resolve_format(Path(out_dir), fmt).extensions[0]
    out_dir = ensure_folder(out_dir)

    results: list[BatchResult] = []
    seeded: set[Path] = set()
    for name, video_seeds in seeds.items():
        try:
            video = find_video(folder, name)
            seeded.add(video.resolve())
            out = out_dir / f"{video.stem}{extension}"
            if any(r.output == out for r in results):
                raise IBFPError(f"another video already wrote {out.name}; rename one of them")
            preview = out_dir / f"{video.stem}{PREVIEW_SUFFIX}" if render else None
            results.append(
                _annotate(video, name, video_seeds, out, preview, fmt, tracker, device, backend, weights, progress)
            )
        except IBFPError as e:
            results.append(BatchResult(name, "failed", str(e)))
    for video in videos_in(folder):
        if video.resolve() not in seeded:
            results.append(BatchResult(video.name, "skipped", "no seeds"))
    return results


def find_video(folder: Path, name: str) -> Path:
    """The video `name` in `folder`: that file, or the one video file whose stem is `name`."""
    path = folder / name
    if path.is_file():
        return path
    if not Path(name).suffix:
        candidates = [p for p in videos_in(folder) if p.stem == name]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            names = ", ".join(p.name for p in candidates)
            raise IBFPError(f"video {name!r} is ambiguous in {folder}: {names}")
    raise IBFPError(f"video {name!r} not found in {folder}")


def videos_in(folder: Path) -> list[Path]:
    """The files in `folder` with a video suffix, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def _annotate(
    video: Path,
    name: str,
    seeds: list[Seed],
    out: Path,
    preview: Path | None,
    fmt: str,
    tracker: str,
    device: str,
    backend: str,
    weights: str | os.PathLike[str] | None,
    progress: StageProgress | None,
) -> BatchResult:
    """Track one video and render its preview, skipping whatever a previous run finished."""
    if out.exists() and (preview is None or preview.exists()):
        return BatchResult(name, "skipped", f"{out.name} already exists", out)
    if out.exists():
        annotations = read_annotations(out, fmt)
    else:
        annotations = track_to_file(
            video,
            seeds,
            out,
            fmt=fmt,
            tracker=tracker,
            device=device,
            backend=backend,
            weights=weights,
            progress=progress(f"tracking {video.name}") if progress else None,
        )
    if preview is not None:
        render_video(video, annotations, preview, progress=progress(f"rendering {video.name}") if progress else None)
    objects = len(annotations.ids())
    return BatchResult(name, "done", f"{len(annotations.records)} boxes of {objects} object(s)", out)
