"""`ibfp track`, `render`, `info`, `demo`, `frame` and `select`: a video in, its boxes or pictures of it out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..annotate.demo import run_demo
from ..annotate.pipeline import Seed, track_to_file
from ..annotate.select_box import append_seeds, select_boxes, track_command
from ..annotations import DEFAULT_LABEL
from ..boxes import BoxFormat, parse_box
from ..config import TrackerConfig, parse_settings
from ..errors import IBFPError
from ..formats import read_annotations
from ..media.frame_image import write_frame_image
from ..media.render import render_video
from ..media.video import probe
from ..wording import boxes_of_objects, counted
from .common import (
    DEFAULT_TRACKER,
    BackendOption,
    DeviceOption,
    FormatOption,
    RenderOption,
    TrackerConfigOption,
    TrackerOption,
    WeightsOption,
    check_outputs,
    err,
    format_options,
    out,
    reported_errors,
    stage_progress,
)


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
    tracker_config: TrackerConfigOption = None,
    render: RenderOption = None,
) -> None:
    """Track objects from their boxes on one frame to the end of the video and save the boxes.

    Boxes are tracked forward only, from --frame on; frames before it get no box.
    """
    with reported_errors():
        seeds = _seeds_from_options(box, ids or [], labels or [], box_format, frame)
        settings = parse_settings(TrackerConfig, tracker_config or [])
        check_outputs(out_file, render)
        with stage_progress() as stage:
            annotations = track_to_file(
                video,
                seeds,
                out_file,
                fmt=fmt,
                tracker=tracker,
                device=device,
                backend=backend,
                weights=weights,
                tracker_options={"tracker_config": settings},
                progress=stage(f"tracking {video.name}"),
            )
            if render is not None:
                render_video(video, annotations, render, progress=stage(f"rendering {render.name}"))
        boxes, objects = len(annotations.records), len(annotations.ids())
        out.print(f"wrote {boxes_of_objects(boxes, objects)} to {escape(str(out_file))}")
        if render is not None:
            out.print(f"wrote preview {escape(str(render))}")


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
    with reported_errors(format_options(ctx, {boxes: "fmt"})):
        check_outputs(out_file)
        annotations = read_annotations(boxes, fmt)
        with stage_progress() as stage:
            render_video(video, annotations, out_file, progress=stage(f"rendering {out_file.name}"))
        out.print(f"wrote preview {escape(str(out_file))}")


def info(video: Annotated[Path, typer.Argument(metavar="VIDEO", help="Video file.", show_default=False)]) -> None:
    """Show a video's container, codec, size, frame rate, exact frame count, duration, rotation."""
    with reported_errors():
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
    with reported_errors(), stage_progress() as stage:
        result = run_demo(out_dir, tracker, device=device, backend=backend, weights=weights, progress=stage)
    out.print("ran the equivalent of:")
    for command in result.commands:
        out.print(f"  {escape(command)}", soft_wrap=True)
    out.print(f"mean IoU against the generated truth: {result.mean_iou:.3f}")


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
    with reported_errors():
        width, height = write_frame_image(video, frame, out_file, grid=grid, step=grid_step)
    out.print(f"wrote frame {frame} ({width}x{height}) to {escape(str(out_file))}", soft_wrap=True)


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
    with reported_errors():
        boxes = select_boxes(video, frame)
        if seeds is not None:
            ids = append_seeds(seeds, video.name, frame, boxes, label)
            err.print(f"added ids {', '.join(map(str, ids))} to {escape(str(seeds))}", soft_wrap=True)
    out.print(escape(track_command(video, frame, boxes, label, out_name)), soft_wrap=True)
