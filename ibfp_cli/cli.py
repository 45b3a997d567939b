"""The `ibfp` command line: parse arguments, call the library, report. No logic lives here."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
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

from . import __version__
from .annotations import DEFAULT_LABEL
from .batch import run_batch
from .boxes import BoxFormat, parse_box
from .config import TrainConfig
from .demo import run_demo
from .errors import IBFPError
from .formats import FORMAT_BY_EXTENSION, format_names, read_annotations
from .keyframes import combined_keyframes, load_keyframes, retrack_to_file
from .opencv_trackers import MODELS_ENV
from .pipeline import Seed, track_to_file
from .progress import ProgressCallback, StageProgress
from .render import render_video
from .review import DEFAULT_THRESHOLD, MAX_TILES, contact_sheet, low_confidence_segments
from .trackers import create_tracker, tracker_descriptions, tracker_names
from .video import probe

EXIT_ERROR = 1
EXIT_USAGE = 2  # a bad option value, an unknown option, a missing argument (Click's code)
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command stopped with Ctrl-C."""
DEFAULT_TRACKER = "ibfp"

Device = Literal["auto", "cpu", "cuda"]
BackendName = Literal["auto", "torch", "onnx"]

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
def _reported_errors() -> Iterator[None]:
    """Turn IBFPError into one red line and exit 1; Ctrl-C into 'interrupted' and exit 130."""
    try:
        yield
    except IBFPError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        err.print("interrupted", soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


class _Speed(ProgressColumn):
    """Processing speed in units (frames, runs) per second."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = f"{speed:.1f} {self.unit}/s" if speed else f"-- {self.unit}/s"
        return Text(text, style="progress.data.speed")


@contextmanager
def _progress(unit: str = "frames") -> Iterator[StageProgress]:
    """Progress bars on stderr; yields a function that starts a bar for a stage and returns
    that stage's progress(done, total) callback. Nothing is drawn before the first report."""
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Speed(unit),
        TimeRemainingColumn(),
        console=err,
    )

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
    video: Annotated[Path, typer.Argument(help="Video to annotate (any file FFmpeg reads).", show_default=False)],
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
        out.print(f"wrote {boxes} boxes of {objects} object(s) to {escape(str(out_file))}")
        if render is not None:
            out.print(f"wrote preview {escape(str(render))}")


def _seeds_from_options(
    boxes: list[str], ids: list[int], labels: list[str], box_format: BoxFormat, frame: int
) -> list[Seed]:
    if ids and len(ids) != len(boxes):
        raise IBFPError(f"give one --id per --box ({len(boxes)} boxes, {len(ids)} ids)")
    if len(labels) > 1 and len(labels) != len(boxes):
        raise IBFPError(f"give one --label for all boxes or one per --box ({len(boxes)} boxes, {len(labels)} labels)")
    ids = ids or list(range(1, len(boxes) + 1))
    labels = labels * len(boxes) if len(labels) == 1 else labels or [DEFAULT_LABEL] * len(boxes)
    return [
        Seed(parse_box(text, box_format), frame, track_id, label)
        for text, track_id, label in zip(boxes, ids, labels, strict=True)
    ]


@app.command()
def render(
    video: Annotated[Path, typer.Argument(help="The video the boxes belong to.", show_default=False)],
    boxes: Annotated[Path, typer.Argument(help="Annotation file with the boxes.", show_default=False)],
    out_file: Annotated[
        Path,
        typer.Option("--out", "-o", help="Preview video to write (.mp4, H.264).", show_default=False, dir_okay=False),
    ],
    fmt: FormatOption = None,
) -> None:
    """Draw each box with its id, label and score, and the frame number, onto the video.

    Boxes the tracker flagged lost are drawn grey and dashed.
    """
    with _reported_errors():
        annotations = read_annotations(boxes, fmt)
        with _progress() as stage:
            render_video(video, annotations, out_file, progress=stage(f"rendering {out_file.name}"))
        out.print(f"wrote preview {escape(str(out_file))}")


@app.command()
def batch(
    folder: Annotated[Path, typer.Argument(help="Folder holding the videos.", show_default=False)],
    seeds: Annotated[
        Path,
        typer.Option(
            help="CSV with a header and one row per object: video,frame,x,y,w,h and "
            "optionally id,label. video is a file in FOLDER, with or without its extension; "
            "frame is 0-based; x,y,w,h are pixels.",
            show_default=False,
            dir_okay=False,
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option(
            help="Folder for the outputs, one <video stem>.<format extension> per video; "
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
) -> None:
    """Annotate every video of a folder from one seeds file; exit 1 if any video failed."""
    with _reported_errors(), _progress() as stage:
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
            progress=stage,
        )
    table = Table(title="batch")
    for column in ("video", "status", "message"):
        table.add_column(column)
    styles = {"done": "green", "skipped": "yellow", "failed": "red"}
    for r in results:
        table.add_row(escape(r.video), f"[{styles[r.status]}]{r.status}[/]", escape(r.message))
    out.print(table)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(EXIT_ERROR)


@app.command()
def info(video: Annotated[Path, typer.Argument(help="Video file.", show_default=False)]) -> None:
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
    video: Annotated[Path, typer.Argument(help="The video the boxes belong to.", show_default=False)],
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
    with _reported_errors():
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
        out.print(f"tracked {frames} frame(s) again in {len(result.retracked)} stretch(es)")
        for s in result.retracked:
            out.print(f"  object {s.id}: frames {s.first}..{s.last}")
        boxes, objects = len(annotations.records), len(annotations.ids())
        out.print(f"wrote {boxes} boxes of {objects} object(s) to {escape(str(out_file))}", soft_wrap=True)
        if render is not None:
            out.print(f"wrote preview {escape(str(render))}", soft_wrap=True)


@app.command()
def review(
    video: Annotated[Path, typer.Argument(help="The video the boxes belong to.", show_default=False)],
    boxes: Annotated[
        Path,
        typer.Argument(
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
            help=f"Also write a contact sheet (PNG): the least confident frame of each run with "
            f"its box, the {MAX_TILES} least confident runs at most.",
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
    with _reported_errors():
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
                f"wrote contact sheet {escape(str(sheet))} ({len(shown)} of {len(segments)} runs)", soft_wrap=True
            )


@app.command(name="eval")
def evaluate(
    dataset: Annotated[
        Path,
        typer.Argument(
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
            help="Run only the validation split that training never sees "
            "(the names in ibfp_cli/train/val_split.txt; for ../shared/data/sot).",
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
    views: Annotated[int, typer.Option(min=2, help="Jittered views cached per crop (2 or more: pairs need two).")] = 2,
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
    ] = TrainConfig().max_steps,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Pairs per step (per GPU under torchrun).")
    ] = TrainConfig().batch_size,
    lr: Annotated[
        float, typer.Option(help="Adam learning rate of the new modules (backbone: x0.1).")
    ] = TrainConfig().learning_rate,
    decay_every: Annotated[
        int, typer.Option(min=1, help="Multiply the learning rate by 0.2 every this many steps (counted from step 0).")
    ] = TrainConfig().decay_every,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop after this many minutes on a resumable checkpoint.")
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Train (or resume) a run. Multi-GPU: `torchrun --nproc_per_node N -m ibfp_cli train run ...`."""
    from dataclasses import replace

    from .train.api import run_training
    from .train.data import SamplingConfig

    cfg = replace(TrainConfig(), max_steps=steps, batch_size=batch_size, learning_rate=lr, decay_every=decay_every)

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
        meta = export_weights(run_dir, out_file, data_note)
    out.print(f"wrote {out_file} ({out_file.stat().st_size / 2**20:.1f} MiB, step {meta['steps']})")


def run() -> None:
    """The `ibfp` console command: the app, with usage errors (an unknown option, a bad value,
    a missing argument) on one `error:` line like every other error, and exit code 2."""
    try:
        code = app(prog_name="ibfp", standalone_mode=False)
    except Exception as e:  # Click's UsageError, vendored or not depending on the Typer version
        if getattr(e, "exit_code", None) != EXIT_USAGE or not hasattr(e, "format_message"):
            raise
        if type(e).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            ctx = getattr(e, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            err.print(f"[red]error:[/red] {escape(e.format_message())}{hint}", soft_wrap=True)
        sys.exit(EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else 0)
