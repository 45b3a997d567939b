"""`ibfp convert`, `retrack`, `review` and `trackers`: work on boxes already there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..annotate.convert import convert_annotations
from ..annotate.keyframes import RetrackConfig, keyframes_to_retrack, retrack_to_file
from ..annotate.review import DEFAULT_THRESHOLD, MAX_TILES, TILE_CONTEXT, contact_sheet, low_confidence_segments
from ..formats import read_annotations
from ..media.render import render_video
from ..tracking.registry import tracker_availability
from ..wording import boxes_of_objects, counted
from .common import (
    DEFAULT_TRACKER,
    EXTENSION_LIST,
    FORMAT_LIST,
    BackendOption,
    DeviceOption,
    FormatOption,
    RenderOption,
    TrackerOption,
    WeightsOption,
    check_outputs,
    format_options,
    out,
    reported_errors,
    stage_progress,
)

REJOIN = RetrackConfig()
"""Where a pass stops with --existing, as --help states it."""


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
            help=f"Format to write: {FORMAT_LIST}. Default: from the extension of --out ({EXTENSION_LIST}).",
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
    with reported_errors(format_options(ctx, {boxes: "source_format"})):
        check_outputs(out_file)
        annotations = convert_annotations(boxes, out_file, fmt=fmt, source_format=source_format, video=video)
    boxes_count, objects = len(annotations.records), len(annotations.ids())
    out.print(f"converted {boxes_of_objects(boxes_count, objects)} to {escape(str(out_file))}", soft_wrap=True)


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
            "keyframes are tracked again, the rest is copied. A pass from a keyframe stops "
            f"once its boxes rejoin this run's (IoU {REJOIN.rejoin_iou:g} on {REJOIN.rejoin_frames} frames in a "
            "row); this run's boxes stand beyond.",
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
    with reported_errors(format_options(ctx, {keyframes: "keyframes_format"})):
        check_outputs(out_file, render)
        given, previous = keyframes_to_retrack(keyframes, keyframes_format, existing, replace_keyframes)
        with stage_progress() as stage:
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
    with reported_errors(format_options(ctx, {boxes: "fmt"})):
        check_outputs(sheet)
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
            with stage_progress() as stage:
                shown = contact_sheet(video, annotations, segments, sheet, progress=stage(f"reading {video.name}"))
            out.print(
                f"wrote contact sheet {escape(str(sheet))} ({len(shown)} of {counted(len(segments), 'run')})",
                soft_wrap=True,
            )


def list_trackers() -> None:
    """List the trackers and whether each can run here (and if not, why)."""
    table = Table(title="trackers")
    for column in ("name", "description", "available"):
        table.add_column(column)
    for name, (description, problem) in tracker_availability().items():
        status = "[green]yes[/]" if problem is None else f"[red]no[/]: {escape(problem)}"
        table.add_row(name, escape(description), status)
    out.print(table)
