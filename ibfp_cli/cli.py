"""The `ibfp` command line: parse arguments, call the library, report. No logic lives here."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from . import __version__, help_style
from .annotations import DEFAULT_LABEL
from .atomic import check_output
from .batch import DEFAULT_RETRIES, BatchResult, run_batch
from .batch_ray import DEFAULT_GPUS_PER_WORKER, LOCAL, RayOptions, is_ray_address
from .batch_summary import SUMMARY_NAME
from .boxes import BoxFormat, parse_box
from .config import Trainable, TrainConfig
from .convert import convert_annotations
from .correct.command import correct
from .dataset_export import DEFAULT_JPEG_QUALITY, ExportConfig, ImageFormat, export_batch, export_video
from .dataset_layout import DatasetKind, class_ids
from .dataset_split import DEFAULT_SEGMENT_FRAMES, DEFAULT_VAL_FRACTION, SplitBy, SplitConfig
from .demo import run_demo
from .errors import IBFPError, OtherFormatError
from .formats import FORMAT_BY_EXTENSION, format_names, read_annotations
from .frame_image import write_frame_image
from .keyframes import combined_keyframes, load_keyframes, retrack_to_file
from .opencv_trackers import MODELS_ENV
from .pipeline import Seed, track_to_file
from .progress import ProgressCallback, StageProgress
from .render import render_video
from .review import DEFAULT_THRESHOLD, MAX_TILES, TILE_CONTEXT, contact_sheet, low_confidence_segments
from .select_box import append_seeds, select_boxes, track_command
from .shards import Shard, parse_shard
from .trackers import create_tracker, tracker_descriptions, tracker_names
from .video import probe
from .wording import boxes_of_objects, counted

EXIT_ERROR = 1
EXIT_USAGE = 2  # a bad option value, an unknown option, a missing argument (Click's code)
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command stopped with Ctrl-C."""
DEFAULT_TRACKER = "ibfp"
PYDANTIC_VALUE_ERROR = "Value error, "
"""Pydantic, which Typer checks option values with, starts the message of a refused choice
with this; it tells the user nothing."""
TRAIN_DEFAULTS = TrainConfig()
"""The defaults `train run` shows and starts from."""

Device = Literal["auto", "cpu", "cuda"]
BackendName = Literal["auto", "torch", "onnx"]

help_style.apply()
app = typer.Typer(name="ibfp", no_args_is_help=True, add_completion=False)
train_app = typer.Typer(help="Train the IBFP tracker's weights (prepare data, run, resume).", no_args_is_help=True)
app.add_typer(train_app, name="train")

out = Console()
err = Console(stderr=True, highlight=False)

_FORMATS = ", ".join(format_names())
_EXTENSIONS = ", ".join(f"{ext} = {name}" for ext, name in FORMAT_BY_EXTENSION.items())

# Options shared by several commands.
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help=f"Annotation format: {_FORMATS}. Default: from the file extension ({_EXTENSIONS}).",
        show_default=False,
    ),
]
TrackerOption = Annotated[
    str,
    typer.Option(
        help="Tracker by name; `ibfp trackers` lists them and whether each can run here. "
        f"nano and vit read their ONNX files from the folder in ${MODELS_ENV}."
    ),
]
DeviceOption = Annotated[
    Device,
    typer.Option(
        help="Where the IBFP network runs: auto = CUDA if torch sees a GPU, else CPU. "
        "OpenCV trackers always run on the CPU."
    ),
]
BackendOption = Annotated[
    BackendName,
    typer.Option(
        help="How the IBFP network runs: onnx = ONNX Runtime (CPU only, the faster path there), "
        "torch = PyTorch (CPU or CUDA; the fallback), auto = onnx on the CPU when onnxruntime is "
        "installed, else torch. The ONNX graphs are exported from the weights at first use and cached "
        "in $IBFP_CACHE_DIR (default ~/.cache/ibfp)."
    ),
]
WeightsOption = Annotated[
    Path | None,
    typer.Option(
        help="IBFP weights file (.pt). Default: the weights shipped with ibfp.", show_default=False, dir_okay=False
    ),
]

RenderOption = Annotated[
    Path | None,
    typer.Option(help="Also write a preview video (.mp4) with the boxes drawn.", show_default=False, dir_okay=False),
]


@contextmanager
def _reported_errors(format_options: Mapping[Path, str] | None = None) -> Iterator[None]:
    """Turn IBFPError into one red line and exit 1; Ctrl-C into 'interrupted' and exit 130.

    `format_options` (from `_format_options`) maps the annotation files the command reads to
    its option naming each one's format: a file that reads as another format gets that option
    and format as the fix.
    """
    options = format_options or {}
    try:
        yield
    except IBFPError as e:
        message = str(e)
        if isinstance(e, OtherFormatError) and e.path in options:
            message += f" ({options[e.path]} {e.likely})"
        err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        err.print("interrupted", soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _format_options(ctx: typer.Context, files: Mapping[Path | None, str]) -> dict[Path, str]:
    """Each annotation file given (None: not given) -> the running command's option that names
    its format, looked up by its parameter (e.g. source_format -> --from)."""
    flags = {param.name: param.opts[0] for param in ctx.command.params}
    return {path: flags[name] for path, name in files.items() if path is not None}


class _Speed(ProgressColumn):
    """Processing speed in units (frames, runs) per second, or seconds per unit (videos that
    take a minute each) when below one a second."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", self.unit)
        if not speed:
            text = f"-- {unit}/s"
        elif speed < 1:
            text = f"{1 / speed:.1f} s/{unit.removesuffix('s')}"
        else:
            text = f"{speed:.1f} {unit}/s"
        return Text(text, style="progress.data.speed")


def _progress_bars(unit: str) -> Progress:
    """Bars on stderr: description, bar, done/total, speed in `unit`/s (or a task's own unit), time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Speed(unit),
        TimeRemainingColumn(),
        console=err,
    )


@contextmanager
def _progress(unit: str = "frames") -> Iterator[StageProgress]:
    """Progress bars on stderr; yields a function that starts a bar for a stage and returns
    that stage's progress(done, total) callback. Nothing is drawn before the first report."""
    bars = _progress_bars(unit)

    def stage(description: str) -> ProgressCallback:
        task: list[TaskID] = []

        def update(done: int, total: int) -> None:
            if not task:
                bars.start()
                task.append(bars.add_task(description, total=total))
            bars.update(task[0], completed=done, total=total)

        return update

    try:
        yield stage
    finally:
        if bars.live.is_started:  # stopping bars never drawn still prints an empty line off a terminal
            bars.stop()


def _version(value: bool) -> None:
    if value:
        out.print(f"ibfp {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Video annotation assistant: draw a box on one frame, get the object's box on every frame."""


@app.command()
def track(
    video: Annotated[
        Path, typer.Argument(metavar="VIDEO", help="Video to annotate (any file FFmpeg reads).", show_default=False)
    ],
    box: Annotated[
        list[str],
        typer.Option(
            "--box",
            "-b",
            metavar="x,y,w,h",
            help="The object's box on the seed frame: x,y,w,h in pixels, top-left corner, 0-based "
            "(x1,y1,x2,y2 with --box-format xyxy). Repeat for several objects.",
            show_default=False,
        ),
    ],
    out_file: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output annotation file; its folder must exist. Written only when complete.",
            show_default=False,
            dir_okay=False,
        ),
    ],
    ids: Annotated[
        list[int] | None,
        typer.Option(
            "--id", metavar="N", help="Object id of each --box, in order. Default: 1, 2, ...", show_default=False
        ),
    ] = None,
    labels: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            metavar="NAME",
            help="Label of each --box in order, or one label for all. Default: object.",
            show_default=False,
        ),
    ] = None,
    box_format: Annotated[
        BoxFormat, typer.Option(help="How --box numbers are given: xywh or xyxy (corners).")
    ] = "xywh",
    frame: Annotated[
        int,
        typer.Option(
            "--frame",
            "-f",
            metavar="N",
            help="Frame the boxes are drawn on, as a 0-based decode index. "
            "Objects are tracked from this frame to the end of the video.",
        ),
    ] = 0,
    fmt: FormatOption = None,
    tracker: TrackerOption = DEFAULT_TRACKER,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    weights: WeightsOption = None,
    render: RenderOption = None,
) -> None:
    """Track objects from their boxes on one frame to the end of the video and save the boxes.

    Boxes are tracked forward only, from --frame on; frames before it get no box.
    """
    with _reported_errors():
        seeds = _seeds_from_options(box, ids or [], labels or [], box_format, frame)
        _check_outputs(out_file, render)
        with _progress() as stage:
            annotations = track_to_file(
                video,
                seeds,
                out_file,
                fmt=fmt,
                tracker=tracker,
                device=device,
                backend=backend,
                weights=weights,
                progress=stage(f"tracking {video.name}"),
            )
            if render is not None:
                render_video(video, annotations, render, progress=stage(f"rendering {render.name}"))
        boxes, objects = len(annotations.records), len(annotations.ids())
        out.print(f"wrote {boxes_of_objects(boxes, objects)} to {escape(str(out_file))}")
        if render is not None:
            out.print(f"wrote preview {escape(str(render))}")


def _check_outputs(*paths: Path | None) -> None:
    """Fail before any work where an output (None: not asked for) could not be written."""
    for path in paths:
        if path is not None:
            check_output(path)


def _seeds_from_options(
    boxes: list[str], ids: list[int], labels: list[str], box_format: BoxFormat, frame: int
) -> list[Seed]:
    if ids and len(ids) != len(boxes):
        raise IBFPError(f"give one --id per --box ({counted(len(boxes), 'box', 'boxes')}, {counted(len(ids), 'id')})")
    if len(labels) > 1 and len(labels) != len(boxes):
        given = f"{counted(len(boxes), 'box', 'boxes')}, {counted(len(labels), 'label')}"
        raise IBFPError(f"give one --label for all boxes or one per --box ({given})")
    ids = ids or list(range(1, len(boxes) + 1))
    labels = labels * len(boxes) if len(labels) == 1 else labels or [DEFAULT_LABEL] * len(boxes)
    return [
        Seed(parse_box(text, box_format), frame, track_id, label)
        for text, track_id, label in zip(boxes, ids, labels, strict=True)
    ]


@app.command()
def render(
    ctx: typer.Context,
    video: Annotated[Path, typer.Argument(metavar="VIDEO", help="The video the boxes belong to.", show_default=False)],
    boxes: Annotated[Path, typer.Argument(metavar="BOXES", help="Annotation file with the boxes.", show_default=False)],
    out_file: Annotated[
        Path,
        typer.Option("--out", "-o", help="Preview video to write (.mp4, H.264).", show_default=False, dir_okay=False),
    ],
    fmt: FormatOption = None,
) -> None:
    """Draw each box with its id, label and score, and the frame number, onto the video.

    Boxes the tracker flagged lost are drawn grey and dashed.
    """
    with _reported_errors(_format_options(ctx, {boxes: "fmt"})):
        _check_outputs(out_file)
        annotations = read_annotations(boxes, fmt)
        with _progress() as stage:
            render_video(video, annotations, out_file, progress=stage(f"rendering {out_file.name}"))
        out.print(f"wrote preview {escape(str(out_file))}")


def _shard(text: str) -> Shard:
    try:
        return parse_shard(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _positive(value: float) -> float:
    if value <= 0:
        raise typer.BadParameter(f"{value:g} is not more than 0")
    return value


@app.command()
def convert(
    ctx: typer.Context,
    boxes: Annotated[
        Path,
        typer.Argument(metavar="BOXES", help="Annotation file to convert (any format ibfp reads).", show_default=False),
    ],
    out_file: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="File to write; its folder must exist. Written only when complete.",
            show_default=False,
            dir_okay=False,
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="NAME",
            help=f"Format to write: {_FORMATS}. Default: from the extension of --out ({_EXTENSIONS}).",
            show_default=False,
        ),
    ] = None,
    source_format: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="NAME",
            help="Format of BOXES, as for --format. Default: from its extension.",
            show_default=False,
        ),
    ] = None,
    video: Annotated[
        Path | None,
        typer.Option(
            metavar="VIDEO",
            help="The video the boxes belong to: gives its name, and its frame size, frame count and rate "
            "where BOXES does not store them (labelstudio needs size and rate; csv and mot store neither).",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Write the boxes of an annotation file in another format; nothing is tracked.

    Each format keeps what it can hold. labelstudio: no scores, lost boxes or keyframe flags.
    mot: no labels, lost or keyframe flags. cvat: corners to two decimals.
    """
    with _reported_errors(_format_options(ctx, {boxes: "source_format"})):
        _check_outputs(out_file)
        annotations = convert_annotations(boxes, out_file, fmt=fmt, source_format=source_format, video=video)
    boxes_count, objects = len(annotations.records), len(annotations.ids())
    out.print(f"converted {boxes_of_objects(boxes_count, objects)} to {escape(str(out_file))}", soft_wrap=True)


@app.command()
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
    fmt: Annotated[str, typer.Option("--format", help=f"Annotation format: {_FORMATS}.")] = "csv",
    tracker: TrackerOption = DEFAULT_TRACKER,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    weights: WeightsOption = None,
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
    cluster = RayOptions(ray, gpus_per_worker) if ray is not None else None
    with _reported_errors(), _BatchBars() as bars:
        results = run_batch(
            folder,
            seeds,
            out_dir,
            fmt=fmt,
            tracker=tracker,
            device=device,
            backend=backend,
            weights=weights,
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
        self.bars = _progress_bars("frames")
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


@app.command()
def info(video: Annotated[Path, typer.Argument(metavar="VIDEO", help="Video file.", show_default=False)]) -> None:
    """Show a video's container, codec, size, frame rate, exact frame count, duration, rotation."""
    with _reported_errors():
        v = probe(video)
    table = Table(title=escape(str(video)), show_header=False)
    table.add_column("property", style="bold")
    table.add_column("value")
    for name, value in (
        ("container", v.container),
        ("codec", v.codec),
        ("size", f"{v.width}x{v.height} px (as displayed)"),
        ("frame rate", f"{v.fps:.3f} frames/s"),
        ("frames", f"{v.frame_count} (0..{v.frame_count - 1})"),
        ("duration", f"{v.duration_s:.3f} s"),
        ("rotation", f"{v.rotation} degrees clockwise"),
    ):
        table.add_row(name, escape(value))
    out.print(table)


@app.command()
def demo(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder for demo.mp4, boxes.csv and preview.mp4; created if missing.", file_okay=False
        ),
    ] = Path("demo"),
    tracker: TrackerOption = DEFAULT_TRACKER,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    weights: WeightsOption = None,
) -> None:
    """Generate a 5 s clip with a known object, track it, write its boxes and a preview.

    Prints the equivalent `ibfp` command lines and the mean IoU against the true boxes.
    """
    with _reported_errors(), _progress() as stage:
        result = run_demo(out_dir, tracker, device=device, backend=backend, weights=weights, progress=stage)
    out.print("ran the equivalent of:")
    for command in result.commands:
        out.print(f"  {escape(command)}", soft_wrap=True)
    out.print(f"mean IoU against the generated truth: {result.mean_iou:.3f}")


@app.command()
def retrack(
    ctx: typer.Context,
    video: Annotated[Path, typer.Argument(metavar="VIDEO", help="The video the boxes belong to.", show_default=False)],
    keyframes: Annotated[
        Path,
        typer.Option(
            "--keyframes",
            "-k",
            help="Boxes you drew or corrected: a CSV with frame,id,x,y,w,h[,label] (0-based "
            "frames, pixels) or any annotation file ibfp reads. From CVAT XML only boxes "
            'marked manual are taken (keyframe="1" in CVAT\'s own exports).',
            show_default=False,
            dir_okay=False,
        ),
    ],
    out_file: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output annotation file; may be the --existing file. Written only when complete.",
            show_default=False,
            dir_okay=False,
        ),
    ],
    existing: Annotated[
        Path | None,
        typer.Option(
            help="A previous run's output. Its keyframes are kept (one in --keyframes on the "
            "same object and frame replaces it); only frames next to new, moved or removed "
            "keyframes are tracked again, the rest is copied.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    replace_keyframes: Annotated[
        bool,
        typer.Option(
            "--replace-keyframes",
            help="Use only the keyframes in --keyframes; those of --existing it does not list "
            "are dropped and the frames around them tracked again.",
        ),
    ] = False,
    keyframes_format: Annotated[
        str | None,
        typer.Option(help="Format of --keyframes, as for --format. Default: from its extension.", show_default=False),
    ] = None,
    fmt: FormatOption = None,
    tracker: TrackerOption = DEFAULT_TRACKER,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    weights: WeightsOption = None,
    render: RenderOption = None,
) -> None:
    """Track objects again from the boxes you drew or corrected, forward and backward.

    From each keyframe an object is tracked forward to the next keyframe and backward to the one before.
    Where both passes reach a frame the more confident box is kept.
    Keyframes are never changed and are flagged in the output.
    """
    with _reported_errors(_format_options(ctx, {keyframes: "keyframes_format"})):
        _check_outputs(out_file, render)
        given = load_keyframes(keyframes, keyframes_format)
        previous = read_annotations(existing) if existing is not None else None
        if previous is not None and not replace_keyframes:
            given = combined_keyframes(previous, given)
        with _progress() as stage:
            result = retrack_to_file(
                video,
                given,
                out_file,
                fmt=fmt,
                tracker=tracker,
                existing=previous,
                device=device,
                backend=backend,
                weights=weights,
                progress=stage(f"re-tracking {video.name}"),
            )
            annotations = result.annotations
            if render is not None:
                render_video(video, annotations, render, progress=stage(f"rendering {render.name}"))
        frames = sum(s.last - s.first + 1 for s in result.retracked)
        stretches = counted(len(result.retracked), "stretch", "stretches")
        out.print(f"tracked {counted(frames, 'frame')} again in {stretches}")
        for s in result.retracked:
            out.print(f"  object {s.id}: frames {s.first}..{s.last}")
        boxes, objects = len(annotations.records), len(annotations.ids())
        out.print(f"wrote {boxes_of_objects(boxes, objects)} to {escape(str(out_file))}", soft_wrap=True)
        if render is not None:
            out.print(f"wrote preview {escape(str(render))}", soft_wrap=True)


@app.command()
def review(
    ctx: typer.Context,
    video: Annotated[Path, typer.Argument(metavar="VIDEO", help="The video the boxes belong to.", show_default=False)],
    boxes: Annotated[
        Path,
        typer.Argument(
            metavar="BOXES",
            help="Annotation file with scores (csv, mot, coco or cvat; labelstudio stores no scores).",
            show_default=False,
        ),
    ],
    threshold: Annotated[
        float, typer.Option(help="Boxes scored below this, or flagged lost, are doubtful.", min=0.0)
    ] = DEFAULT_THRESHOLD,
    min_length: Annotated[int, typer.Option(help="List only runs of at least this many doubtful frames.", min=1)] = 1,
    sheet: Annotated[
        Path | None,
        typer.Option(
            help=f"Also write a contact sheet (PNG): the least confident frame of each run around "
            f"its box ({TILE_CONTEXT:g} times its size, at most the whole frame), the {MAX_TILES} least "
            "confident runs at most.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """List the runs of frames where the tracker was unsure: where to draw keyframes.

    Boxes drawn by a person (keyframes) are never listed.
    Frames are 0-based decode indices, as in `ibfp retrack --keyframes` files.
    """
    with _reported_errors(_format_options(ctx, {boxes: "fmt"})):
        _check_outputs(sheet)
        annotations = read_annotations(boxes, fmt)
        segments = low_confidence_segments(annotations, threshold, min_length)
        if not segments:
            out.print(f"no doubtful boxes (score below {threshold:g} or lost)")
            return
        table = Table(title=f"doubtful boxes in {escape(boxes.name)}")
        for column in ("id", "frames", "length", "lowest score", "at frame"):
            table.add_column(column, justify="right")
        for s in segments:
            table.add_row(
                str(s.id), f"{s.first}..{s.last}", str(s.length), f"{s.lowest_score:.2f}", str(s.lowest_frame)
            )
        out.print(table)
        if sheet is not None:
            with _progress() as stage:
                shown = contact_sheet(video, annotations, segments, sheet, progress=stage(f"reading {video.name}"))
            out.print(
                f"wrote contact sheet {escape(str(sheet))} ({len(shown)} of {counted(len(segments), 'run')})",
                soft_wrap=True,
            )


app.command()(correct)  # ibfp_cli/correct/command.py


@app.command(name="eval")
def evaluate(
    dataset: Annotated[
        Path,
        typer.Argument(
            metavar="DATASET",
            help="Benchmark folder (project layout <name>.mp4 + <name>.gt.csv, OTB, GOT-10k or LaSOT).",
            show_default=False,
        ),
    ],
    trackers: Annotated[
        str | None,
        typer.Option(
            "--tracker",
            help="Comma-separated trackers to compare, e.g. ibfp,nano,csrt. "
            "Default: every tracker `ibfp trackers` lists.",
            show_default=False,
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Report folder; finished runs found there are reused.", file_okay=False)
    ] = Path("report"),
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    weights: WeightsOption = None,
    opencv_models: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the NanoTrack and VitTrack ONNX files.",
            envvar=MODELS_ENV,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Parallel tracking processes. Default: half the CPU cores.", min=1, show_default=False),
    ] = None,
    sequences: Annotated[
        str | None, typer.Option(help="Comma-separated sequence names to run. Default: all.", show_default=False)
    ] = None,
    val_split: Annotated[
        bool,
        typer.Option(
            "--val-split",
            help="Run only the validation split that training never sees (the names in ibfp_cli/train/val_split.txt).",
        ),
    ] = False,
    network_check: Annotated[
        bool,
        typer.Option(
            "--network-check",
            help="Also check the IBFP network alone: its box on search crops centred on the true box, "
            "every 5th frame (network_check.csv and a section of report.md).",
        ),
    ] = False,
) -> None:
    """Score trackers on a benchmark (OTB success AUC, precision, normalised precision, speed)."""
    from .evaluate import render_rich_table, run_evaluation  # pandas and friends: load on demand
    from .train.prepare import val_sequences

    if val_split:
        sequences = ",".join(sorted(val_sequences()))

    if opencv_models is not None:
        os.environ[MODELS_ENV] = str(opencv_models)  # worker processes inherit it
    with _reported_errors(), _progress(unit="runs") as stage:
        runs = stage("tracker x sequence runs")
        report = run_evaluation(
            dataset,
            _comma_list(trackers) if trackers else tracker_names(),
            out_dir,
            device=device,
            backend=backend,
            weights=weights,
            workers=workers,
            sequences=_comma_list(sequences) if sequences else None,
            progress=lambda done, total, _label: runs(done, total),
            network=network_check,
        )
    out.print(render_rich_table(report))
    out.print(f"report written to {escape(str(out_dir))}")


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


@app.command(name="trackers")
def list_trackers() -> None:
    """List the trackers and whether each can run here (and if not, why)."""
    table = Table(title="trackers")
    for column in ("name", "description", "available"):
        table.add_column(column)
    for name, description in tracker_descriptions().items():
        try:
            create_tracker(name)
            status = "[green]yes[/]"
        except IBFPError as e:
            status = f"[red]no[/]: {escape(str(e))}"
        table.add_row(name, escape(description), status)
    out.print(table)


# --- from video to a training set: export, frame, select --------------------------------------


@app.command()
def export(
    ctx: typer.Context,
    video: Annotated[
        Path,
        typer.Argument(
            help="The video (with --batch: the folder of videos given to `ibfp batch`).", show_default=False
        ),
    ],
    boxes: Annotated[
        Path,
        typer.Argument(
            help="Its annotation file (with --batch: the --out-dir of `ibfp batch`; each annotation file "
            "there is exported with the video of the same stem; batch.csv, the batch's record, is not one).",
            show_default=False,
        ),
    ],
    to: Annotated[
        DatasetKind,
        typer.Option(
            help="yolo: Ultralytics layout (images/, labels/, data.yaml); "
            "coco: images/ and annotations/instances_{train,val}.json.",
            show_default=False,
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Dataset folder to create (it must not exist, or be empty; its parent must exist). "
            "Written in a temporary folder and renamed when complete.",
            show_default=False,
            file_okay=False,
        ),
    ],
    batch: Annotated[
        bool, typer.Option("--batch", help="VIDEO is a folder of videos and BOXES the folder of their boxes.")
    ] = False,
    every: Annotated[
        int, typer.Option(min=1, help="Export every N-th frame (0, N, 2N, ...); file names keep the frame index.")
    ] = 1,
    min_score: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="A box scored below this, or flagged lost, is uncertain, and a frame with any uncertain "
            "box is dropped whole: leaving just that box out would show the detector an unlabelled object "
            "as background. Boxes a person drew (keyframes) are never uncertain. The same rule as "
            "`ibfp review --threshold`.",
        ),
    ] = DEFAULT_THRESHOLD,
    val: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.99,
            help="Fraction of videos or segments (see --split-by) for validation; 0: everything is train. "
            "A single video or segment cannot be split: everything is train then too, with a warning.",
        ),
    ] = DEFAULT_VAL_FRACTION,
    split_by: Annotated[
        SplitBy,
        typer.Option(
            help="Split unit: whole videos, or segments of --segment-frames consecutive frames, so that "
            "neighbouring frames never land on both sides. Units are picked by a seeded hash: the same "
            "split on every run."
        ),
    ] = "segment",
    segment_frames: Annotated[
        int, typer.Option(min=1, help="Frames per segment with --split-by segment (frame // N is the segment).")
    ] = DEFAULT_SEGMENT_FRAMES,
    seed: Annotated[int, typer.Option(help="Seed of the split; another seed picks other units.")] = 0,
    image_format: Annotated[
        ImageFormat, typer.Option(help="Image files: jpg (small) or png (lossless, the decoded pixels exactly).")
    ] = "jpg",
    quality: Annotated[
        int, typer.Option(min=1, max=100, help="JPEG quality, 1-100 (png ignores it).")
    ] = DEFAULT_JPEG_QUALITY,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="Threads encoding and writing images. Default: one per CPU core.", show_default=False),
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Write the frames and boxes as an image dataset for training a detector (YOLO or COCO).

    Images are named <video stem>_<frame:06d>.<ext> (frame = 0-based decode index). Class ids
    follow the labels in first-seen order (YOLO from 0, COCO from 1). Frames without boxes are
    kept as background images (YOLO: no label file). Each video is decoded once.
    """
    with _reported_errors(_format_options(ctx, {boxes: "fmt"})):
        split = SplitConfig(val=val, by=split_by, segment_frames=segment_frames, seed=seed)
        config = ExportConfig(
            to=to,
            every=every,
            min_score=min_score,
            split=split,
            image_format=image_format,
            quality=quality,
            threads=threads,
        )
        export = export_batch if batch else export_video
        with _progress() as stage:
            result = export(video, boxes, out_dir, config, fmt=fmt, progress=stage)
    if result.warning is not None:
        err.print(f"[yellow]warning:[/yellow] {escape(result.warning)}", soft_wrap=True)
    if batch:
        table = Table(title="export")
        for column in ("video", "status", "message"):
            table.add_column(column)
        for v in result.videos:
            style = "green" if v.status == "done" else "red"
            table.add_row(escape(v.video), f"[{style}]{v.status}[/]", escape(v.message))
        out.print(table)
    else:
        out.print(escape(result.videos[0].message))
    classes = ", ".join(f"{i} {name}" for i, name in class_ids(to, result.classes).items())
    out.print(
        f"wrote {result.images('train')} train and {result.images('val')} val images to "
        f"{escape(str(out_dir))} (classes: {escape(classes)})",
        soft_wrap=True,
    )
    if to == "yolo":
        out.print(f"next: yolo train data={escape(str(out_dir / 'data.yaml'))} model=yolo11n.pt", soft_wrap=True)
    if result.failed:
        raise typer.Exit(EXIT_ERROR)


@app.command(name="frame")
def frame_image(
    video: Annotated[Path, typer.Argument(help="Video file.", show_default=False)],
    out_file: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Image to write; .png keeps the decoded pixels exactly (.jpg is smaller, lossy).",
            show_default=False,
            dir_okay=False,
        ),
    ],
    frame: Annotated[
        int, typer.Option("--frame", "-f", metavar="N", help="0-based decode index, the one `track --frame` takes.")
    ] = 0,
    grid: Annotated[
        bool,
        typer.Option(
            "--grid",
            help="Draw a pixel grid with each line's coordinate (x along the top, y down the left) "
            "onto the frame, to read a box's x,y,w,h off the image in any viewer.",
        ),
    ] = False,
    grid_step: Annotated[
        int | None,
        typer.Option(
            min=1, help="Grid spacing in px. Default: 10, 20, 50, ... for at most 20 lines across.", show_default=False
        ),
    ] = None,
) -> None:
    """Write one decoded frame as an image, optionally with a coordinate grid."""
    with _reported_errors():
        width, height = write_frame_image(video, frame, out_file, grid=grid, step=grid_step)
    out.print(f"wrote frame {frame} ({width}x{height}) to {escape(str(out_file))}", soft_wrap=True)


@app.command(name="select")
def select(
    video: Annotated[Path, typer.Argument(help="Video file.", show_default=False)],
    frame: Annotated[
        int, typer.Option("--frame", "-f", metavar="N", help="0-based decode index of the frame to draw on.")
    ] = 0,
    label: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Label of the objects (in the printed line and the seeds rows).", show_default=False
        ),
    ] = None,
    seeds: Annotated[
        Path | None,
        typer.Option(
            help="Also append one row per box to this `ibfp batch` seeds CSV (created with a header if "
            "missing); ids continue after the video's rows already there.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    out_name: Annotated[str, typer.Option("--out", help="The --out of the printed `ibfp track` line.")] = "boxes.csv",
) -> None:
    """Drag a box around each object on a frame; prints the matching `ibfp track` line.

    Keys: n or enter: next object; u or backspace: undo; d, q or closing the window: done.
    Needs a display and matplotlib with a GUI toolkit (install ibfp with its select extra);
    without them, `ibfp frame VIDEO --grid` writes the frame with coordinates instead.
    """
    with _reported_errors():
        boxes = select_boxes(video, frame)
        if seeds is not None:
            ids = append_seeds(seeds, video.name, frame, boxes, label)
            err.print(f"added ids {', '.join(map(str, ids))} to {escape(str(seeds))}", soft_wrap=True)
    out.print(escape(track_command(video, frame, boxes, label, out_name)), soft_wrap=True)


# --- ibfp train ------------------------------------------------------------------------------

DEFAULT_DATA = Path("../shared/data")
PresetOption = Annotated[
    str, typer.Option(help="Model preset: mobile (MobileNetV2, CPU-friendly widths) or paper (ResNet18, paper widths).")
]
InitOption = Annotated[
    Path | None,
    typer.Option(
        help="ImageNet backbone weights to start from (torchvision-format ResNet18 file for --preset paper, "
        "the MobileNetV2 file for --preset mobile). Default: random initialisation.",
        show_default=False,
        dir_okay=False,
        exists=True,
    ),
]


@train_app.command("prepare")
def train_prepare(
    data: Annotated[
        Path, typer.Option(help="Folder with sot/ (videos + .gt.csv) and det/ (images + boxes.csv).")
    ] = DEFAULT_DATA,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Crop cache folder to write (one H.264 video per source + index.csv).")
    ] = Path("cache/crops"),
    frame_step: Annotated[int, typer.Option(min=1, help="Keep every N-th annotated video frame.")] = 2,
) -> None:
    """Build the compact crop cache: every training target cropped with context (val split left out)."""
    from dataclasses import replace

    from .train.prepare import CacheConfig, prepare_crop_cache

    with _reported_errors():
        index = prepare_crop_cache(
            data, out_dir, replace(CacheConfig(), frame_step=frame_step), progress=lambda n: err.print(f"cropping {n}")
        )
    size = sum(p.stat().st_size for p in out_dir.iterdir()) / 2**20
    out.print(f"{len(index)} crops from {index.source.nunique()} sources in {out_dir} ({size:.1f} MiB)")


@train_app.command("features")
def train_features(
    crops: Annotated[Path | None, typer.Option(help="Crop cache from `ibfp train prepare`.")] = Path("cache/crops"),
    out_dir: Annotated[Path, typer.Option("--out", help="Feature cache folder to write.")] = Path("cache/features"),
    preset: PresetOption = "mobile",
    init: InitOption = None,
    views: Annotated[
        int, typer.Option(min=1, help="Jittered search views cached per crop, besides its one template view.")
    ] = 1,
    step: Annotated[
        list[str] | None,
        typer.Option(help="KEY=N: keep every N-th crop of the sources of that kind (sot, det) or name (repeatable)."),
    ] = None,
    synthetic: Annotated[int, typer.Option(min=0, help="Generated clips added as a source.")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed of the jitter.")] = 0,
) -> None:
    """CPU path, step 1: run the frozen backbone once over jittered views and cache its features."""
    from .train.api import build_features

    with _reported_errors(), _progress("views") as stage:
        steps = _key_values(step or ["sot=2"])
        n = build_features(
            crops,
            out_dir,
            preset=preset,
            init=init,
            views=views,
            synthetic=synthetic,
            seed=seed,
            steps=steps,
            progress=stage("backbone"),
        )
    out.print(f"{n} views cached in {out_dir}")


def _key_values(items: list[str]) -> dict[str, int]:
    """["sot=2", ...] -> {"sot": 2, ...}; a malformed item is an IBFPError."""
    pairs = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key or not value.isdigit() or int(value) < 1:
            raise IBFPError(f"--step {item!r} must look like NAME=N with N >= 1")
        pairs[key] = int(value)
    return pairs


@train_app.command("run")
def train_run(
    run_dir: Annotated[
        Path, typer.Option("--run", help="Run folder: checkpoint.pt and log.csv; an existing checkpoint is resumed.")
    ],
    features: Annotated[
        Path | None,
        typer.Option(help="Feature cache (CPU path: backbone frozen). Omit to train end to end from --crops."),
    ] = None,
    crops: Annotated[Path | None, typer.Option(help="Crop cache for end-to-end training (GPU path).")] = None,
    synthetic: Annotated[int, typer.Option(min=0, help="Generated clips added to --crops (end-to-end path).")] = 0,
    preset: PresetOption = "mobile",
    init: InitOption = None,
    steps: Annotated[
        int, typer.Option(min=1, help="Total optimiser steps of the run (resumes count).")
    ] = TRAIN_DEFAULTS.max_steps,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Pairs per step (per GPU under torchrun).")
    ] = TRAIN_DEFAULTS.batch_size,
    lr: Annotated[
        float, typer.Option(help="Adam learning rate of the new modules (backbone: x0.1).")
    ] = TRAIN_DEFAULTS.learning_rate,
    decay_every: Annotated[
        int, typer.Option(min=1, help="Multiply the learning rate by 0.2 every this many steps (counted from step 0).")
    ] = TRAIN_DEFAULTS.decay_every,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop after this many minutes on a resumable checkpoint.")
    ] = None,
    device: DeviceOption = "auto",
    start_from: Annotated[
        Path | None,
        typer.Option(
            help="Start a new run from trained IBFP weights (e.g. weights/ibfp-0.2.1.pt) instead of a new "
            "network; --init is then not needed. Ignored when the run folder already has a checkpoint.",
            dir_okay=False,
            exists=True,
        ),
    ] = None,
    trainable: Annotated[
        Trainable,
        typer.Option(
            help="What trains: all = the whole network but the frozen backbone layers; box = only the "
            "head's box branch (with --start-from: better boxes, the same target-finding), on "
            "positive pairs only."
        ),
    ] = TRAIN_DEFAULTS.trainable,
) -> None:
    """Train (or resume) a run. Multi-GPU: `torchrun --nproc_per_node N -m ibfp_cli train run ...`."""
    from dataclasses import replace

    from .train.api import run_training
    from .train.data import SamplingConfig

    cfg = replace(
        TRAIN_DEFAULTS,
        max_steps=steps,
        batch_size=batch_size,
        learning_rate=lr,
        decay_every=decay_every,
        trainable=trainable,
    )

    def report(step: int, row: dict[str, float]) -> None:
        err.print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "step"))

    with _reported_errors():
        state = run_training(
            run_dir,
            features=features,
            crops=crops,
            synthetic=synthetic,
            preset=preset,
            init=init,
            start_from=start_from,
            cfg=cfg,
            sampling=SamplingConfig(),
            device=device,
            max_minutes=max_minutes,
            report=report,
        )
    out.print(f"run {run_dir}: step {state.step} of {steps}; checkpoint saved")


@train_app.command("export")
def train_export(
    run_dir: Annotated[Path, typer.Option("--run", help="Run folder with checkpoint.pt.")],
    out_file: Annotated[Path, typer.Option("--out", help="Weights file to write, e.g. weights/ibfp-0.1.0.pt.")],
    data_note: Annotated[
        str, typer.Option("--data", help="What the run was trained on (kept in the file's metadata).")
    ] = "",
) -> None:
    """Write a run's model as an fp16 weights file that `ibfp track` loads."""
    from .train.api import export_weights

    with _reported_errors():
        _check_outputs(out_file)
        meta = export_weights(run_dir, out_file, data_note)
    out.print(f"wrote {out_file} ({out_file.stat().st_size / 2**20:.1f} MiB, step {meta['steps']})")


campaign_app = typer.Typer(
    help="The long training run that resumes wherever it stopped (weights/TRAINING.md).", no_args_is_help=True
)
train_app.add_typer(campaign_app, name="campaign")
CampaignName = Annotated[
    str, typer.Option("--name", help="Campaign name: run folder $IBFP_RUNS/NAME, resume point weights/resume/NAME.pt.")
]


@campaign_app.command("run")
def campaign_run(
    crops: Annotated[Path, typer.Option(help="Crop cache from `ibfp train prepare`.")] = Path("cache/crops"),
    minutes: Annotated[
        float | None,
        typer.Option(help="Stop after this many minutes, on a checkpoint. Default: until stopped (Ctrl-C, kill)."),
    ] = None,
    name: CampaignName = "campaign",
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Pairs per step. Default: the recipe's.", show_default=False)
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Train the campaign from the newer of its run folder's checkpoint and its committed resume point,
    with fresh augmented views every step; a checkpoint at least every 10 minutes, so it can be killed."""
    from .train.campaign import run_campaign

    def report(step: int, row: dict[str, float]) -> None:
        err.print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "step"))

    with _reported_errors():
        state = run_campaign(
            name, crops, minutes=minutes, device=device, batch_size=batch_size, say=err.print, report=report
        )
    out.print(f"campaign {name}: step {state.step}, {state.pairs:,} pairs; checkpoint saved")


@campaign_app.command("save")
def campaign_save(
    data: Annotated[
        Path, typer.Option(help="Data folder with the validation sequences (sot/, sot-train/).")
    ] = DEFAULT_DATA,
    name: CampaignName = "campaign",
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="A resume point a device stretch brought back (campaign.pt, its log.csv beside it) "
            "instead of the run folder's checkpoint.",
            dir_okay=False,
            exists=True,
            show_default=False,
        ),
    ] = None,
    device: DeviceOption = "cpu",
    backend: BackendOption = "auto",
) -> None:
    """End a stretch: write the resume point to commit, check the network on the validation
    sequences, and add the stretch's row to weights/TRAINING.md."""
    from .train.campaign import TRAINING_LOG, end_stretch, resume_point

    with _reported_errors(), _progress("sequences"):
        stretch = end_stretch(name, data, source=source, device=device, backend=backend)
    out.print(stretch.row())
    out.print(f"commit {resume_point(name)} and {TRAINING_LOG}")


OPTIONAL_VALUES = {"--ray": (LOCAL, is_ray_address)}
"""Options whose value may be left out, with the value then used and what counts as a value
(Typer has no options with optional values)."""


def fill_optional_values(args: list[str]) -> list[str]:
    """Command-line arguments with the default value put after each such option given alone."""
    filled: list[str] = []
    for i, arg in enumerate(args):
        filled.append(arg)
        if arg == "--":  # everything after is an argument
            return filled + args[i + 1 :]
        if arg in OPTIONAL_VALUES:
            default, is_value = OPTIONAL_VALUES[arg]
            if i + 1 == len(args) or not is_value(args[i + 1]):
                filled.append(default)
    return filled


def run() -> None:
    """The `ibfp` console command: the app, with usage errors (an unknown option, a bad value,
    a missing argument) on one `error:` line like every other error, and exit code 2."""
    try:
        code = app(args=fill_optional_values(sys.argv[1:]), prog_name="ibfp", standalone_mode=False)
    except Exception as e:  # Click's UsageError, vendored or not depending on the Typer version
        if getattr(e, "exit_code", None) != EXIT_USAGE or not hasattr(e, "format_message"):
            raise
        if type(e).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            ctx = getattr(e, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            message = e.format_message().replace(PYDANTIC_VALUE_ERROR, "")
            err.print(f"[red]error:[/red] {escape(message)}{hint}", soft_wrap=True)
        sys.exit(EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else 0)
