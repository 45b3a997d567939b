"""The whole flow on a generated clip: video, seed box, tracking, boxes file, preview, score."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boxes import Box, ious
from ..media.atomic import atomic_output, ensure_folder
from ..media.render import render_video
from ..media.synthetic import SyntheticSpec, write_synthetic_video
from ..progress import StageProgress
from .pipeline import Seed, track_to_file

DEMO_SPEC = SyntheticSpec(frames=150)
"""5 s of the default 640x480, 30 fps generated clip: long enough to see tracking work."""
VIDEO_NAME = "demo.mp4"
BOXES_NAME = "boxes.csv"
PREVIEW_NAME = "preview.mp4"


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The demo's files, the seed box it used, equivalent command lines and its accuracy."""

    video: Path
    boxes: Path
    preview: Path
    seed: Box
    commands: list[str]
    mean_iou: float
    """Mean IoU of the tracked boxes against the generated truth, seed frame excluded."""


def run_demo(
    out_dir: str | os.PathLike[str],
    tracker: str = "ibfp",
    *,
    device: str = "auto",
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    progress: StageProgress | None = None,
) -> DemoResult:
    """Generate a clip with a known object, track it from its first-frame box, write and score."""
    out_dir = ensure_folder(out_dir)
    video, boxes, preview = out_dir / VIDEO_NAME, out_dir / BOXES_NAME, out_dir / PREVIEW_NAME

    with atomic_output(video) as tmp:
        truth = write_synthetic_video(tmp, DEMO_SPEC)
    seed = Box(*truth[0])
    annotations = track_to_file(
        video,
        [Seed(seed)],
        boxes,
        tracker=tracker,
        device=device,
        backend=backend,
        weights=weights,
        progress=progress("tracking") if progress else None,
    )
    render_video(video, annotations, preview, progress=progress("rendering") if progress else None)

    tracked = np.array([r.box.xywh() for r in annotations.records])
    mean_iou = float(ious(tracked[1:], truth[1:]).mean())
    options = ["--tracker", tracker]
    if device != "auto":
        options += ["--device", device]
    if backend != "auto":
        options += ["--backend", backend]
    if weights is not None:
        options += ["--weights", str(weights)]
    commands = [
        shlex.join(["ibfp", "track", str(video), "--box", str(seed), "--out", str(boxes), *options]),
        shlex.join(["ibfp", "render", str(video), str(boxes), "--out", str(preview)]),
    ]
    return DemoResult(video, boxes, preview, seed, commands, mean_iou)
