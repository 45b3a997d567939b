"""Annotation files from one format to another, nothing tracked."""

from __future__ import annotations

import os
from pathlib import Path

from ..annotations import Annotations, VideoMeta
from ..errors import FormatError, IBFPError
from ..formats import read_annotations, resolve_format, write_annotations
from ..media.video import VideoInfo, probe


def convert_annotations(
    boxes: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    source_format: str | None = None,
    video: str | os.PathLike[str] | None = None,
) -> Annotations:
    """Read `boxes` (in `source_format`, else the one its extension picks) and write them to
    `out` (in `fmt`, else the one its extension picks), atomically; returns what was written.

    `video`, the video the boxes belong to, supplies its name and whatever of its frame size,
    frame count and rate the file does not store; a format whose writer needs one of those
    (Label Studio: size and rate) fails with a FormatError naming them when neither has it.
    Each format keeps the fields it can hold (see docs/FORMATS.md): Label Studio, for one,
    stores no scores, lost boxes or keyframe flags.
    """
    target = resolve_format(Path(out), fmt)
    annotations = read_annotations(Path(boxes), source_format)
    if video is not None:
        annotations = with_video(annotations, probe(video), Path(video).name)
    missing = [name for name in target.video_fields if not getattr(annotations.video, name)]
    if missing:
        raise FormatError(
            f"{target.name} files need the video's {', '.join(missing)}, which {boxes} does not store; "
            "give the video (--video)"
        )
    write_annotations(Path(out), annotations, target.name)
    return annotations


def with_video(annotations: Annotations, info: VideoInfo, name: str) -> Annotations:
    """The annotations with `name` and the video's size, rate and frame count where they lack
    them; IBFPError where the boxes cannot belong to that video (another frame size, or
    frames past its end)."""
    known = annotations.video
    if known.width and known.height and (known.width, known.height) != (info.width, info.height):
        raise IBFPError(
            f"the boxes are for a {known.width}x{known.height} video but {name} is {info.width}x{info.height}"
        )
    last = max((r.frame for r in annotations.records), default=-1)
    if last >= info.frame_count:
        raise IBFPError(f"the boxes reach frame {last} but {name} has frames 0..{info.frame_count - 1} (0-based)")
    meta = VideoMeta(
        name=name,
        width=known.width or info.width,
        height=known.height or info.height,
        fps=known.fps or info.fps,
        frame_count=known.frame_count or info.frame_count,
    )
    return Annotations(meta, annotations.records, annotations.scored)
