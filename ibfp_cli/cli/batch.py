"""`ibfp batch`: every video of a folder, here, in worker processes or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table

from ..batch.jobs import BatchResult
from ..batch.ray_runner import DEFAULT_GPUS_PER_WORKER, RayOptions
from ..batch.runner import DEFAULT_RETRIES, run_batch
from ..batch.shards import Shard, parse_shard
from ..batch.summary import SUMMARY_NAME
from .common import (
    DEFAULT_TRACKER,
    EXIT_ERROR,
    FORMAT_LIST,
    BackendOption,
    DeviceOption,
    TrackerConfigOption,
    TrackerOption,
    WeightsOption,
    out,
    progress_bars,
    reported_errors,
)


def _shard(text: str) -> Shard:
    try:
        return parse_shard(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _positive(value: float) -> float:
    if value <= 0:
        raise typer.BadParameter(f"{value:g} is not more than 0")
    return value


def batch(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="Folder holding the videos.", show_default=False)],
    seeds: Annotated[
        Path,
        typer.Option(
            help="CSV with a header and one row per object: video,frame,x,y,w,h and "
            "optionally id,label. video is a file in FOLDER, with or without its extension (both "
            "name one video, recorded by its file name); frame is 0-based; x,y,w,h are pixels.",
            show_default=False,
            dir_okay=False,
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option(
            help="Folder for the outputs, one <video stem>.<format extension> per video, and batch.csv; "
            "created if missing. Outputs already there are skipped (resume).",
            show_default=False,
            file_okay=False,
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", help=f"Annotation format: {FORMAT_LIST}.")] = "csv",
    tracker: TrackerOption = DEFAULT_TRACKER,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    weights: WeightsOption = None,
    tracker_config: TrackerConfigOption = None,
    render: Annotated[bool, typer.Option(help="Also write a preview <video stem>.preview.mp4 per video.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Videos tracked at once, each in its own process, the CPU cores divided between them. "
            "Default: 1 (in this process); with --ray, as many as the cluster has room for.",
            min=1,
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        Shard | None,
        typer.Option(
            parser=_shard,
            metavar="K/N",
            help="Run only shard K of N (1-based): the seeded videos sorted by name, every N-th from "
            "the K-th. Shards 1..N together cover every video once; for job arrays.",
            show_default=False,
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="Run the videos on a Ray cluster (needs Ray: ibfp's ray extra). --ray alone or --ray local: "
            "a new cluster of this machine's cores; auto: the cluster this machine belongs to; or HOST:PORT. "
            "Videos and --out-dir must be at the same paths on every node.",
            show_default=False,
        ),
    ] = None,
    gpus_per_worker: Annotated[
        float,
        typer.Option(
            help="With --ray and the network on CUDA: the share of a GPU each worker asks for "
            "(0.25: four workers share one GPU).",
            callback=_positive,
        ),
    ] = DEFAULT_GPUS_PER_WORKER,
    retries: Annotated[
        int, typer.Option(help="Times a video is run again after the worker running it died.", min=0)
    ] = DEFAULT_RETRIES,
) -> None:
    """Annotate every video of a folder from one seeds file; exit 1 if any video failed."""
    from ..config import TrackerConfig, parse_settings

    cluster = RayOptions(ray, gpus_per_worker) if ray is not None else None
    with reported_errors(), _BatchBars() as bars:
        settings = parse_settings(TrackerConfig, tracker_config or [])
        results = run_batch(
            folder,
            seeds,
            out_dir,
            fmt=fmt,
            tracker=tracker,
            device=device,
            backend=backend,
            weights=weights,
            tracker_config=settings,
            render=render,
            shard=shard,
            workers=workers,
            retries=retries,
            ray=cluster,
            progress=bars,
        )
    title = f"batch, shard {shard}" if shard is not None else "batch"
    table = Table(title=title)
    for column in ("video", "status", "message"):
        table.add_column(column)
    styles = {"done": "green", "skipped": "yellow", "failed": "red"}
    for r in results:
        table.add_row(escape(r.video), f"[{styles[r.status]}]{r.status}[/]", escape(r.message))
    out.print(table)
    out.print(f"record of every run into this folder: {escape(str(out_dir / SUMMARY_NAME))}")
    if any(r.status == "failed" for r in results):
        raise typer.Exit(EXIT_ERROR)


class _BatchBars:
    """Batch progress on stderr: videos finished, frames tracked over all videos, and one bar
    per video stage while it runs (wherever it runs). Nothing is drawn before the first report."""

    def __init__(self) -> None:
        self.bars = progress_bars("frames")
        self.videos: TaskID | None = None
        self.tracked: TaskID | None = None
        self.stages: dict[tuple[str, str], TaskID] = {}
        self.totals: dict[str, int] = {}  # video -> frames to track
        self.done: dict[str, int] = {}  # video -> frames tracked

    def __enter__(self) -> _BatchBars:
        return self

    def __exit__(self, *_: object) -> None:
        self.bars.stop()

    def _start(self) -> None:
        if self.videos is None:
            self.bars.start()
            self.videos = self.bars.add_task("videos", total=None, unit="videos")
            self.tracked = self.bars.add_task("frames tracked, all videos", total=None)

    def frames(self, video: str, stage: str, done: int, total: int) -> None:
        self._start()
        key = (video, stage)
        if key not in self.stages:
            self.stages[key] = self.bars.add_task(f"{stage} {escape(video)}", total=total)
        self.bars.update(self.stages[key], completed=done, total=total)
        if stage == "tracking":
            self.totals[video], self.done[video] = total, done
            self.bars.update(self.tracked, completed=sum(self.done.values()), total=sum(self.totals.values()))

    def finished(self, result: BatchResult, done: int, total: int) -> None:
        self._start()
        self.bars.update(self.videos, completed=done, total=total)
        for key in [k for k in self.stages if k[0] == result.video]:
            self.bars.remove_task(self.stages.pop(key))
        if result.status != "done":  # frames of a failed video are not counted as tracked
            self.totals.pop(result.video, None)
            self.done.pop(result.video, None)
            self.bars.update(self.tracked, completed=sum(self.done.values()), total=sum(self.totals.values()))
