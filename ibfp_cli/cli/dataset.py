"""`ibfp export`: frames and boxes out as an image dataset for training a detector."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..annotate.review import DEFAULT_THRESHOLD
from ..dataset.export import DEFAULT_JPEG_QUALITY, ExportConfig, ImageFormat, export_batch, export_video
from ..dataset.layout import DatasetKind, class_ids
from ..dataset.split import DEFAULT_SEGMENT_FRAMES, DEFAULT_VAL_FRACTION, SplitBy, SplitConfig
from .common import EXIT_ERROR, FormatOption, err, format_options, out, reported_errors, stage_progress


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
    with reported_errors(format_options(ctx, {boxes: "fmt"})):
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
        with stage_progress() as stage:
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
