"""Annotation file formats by name: each has a writer and (all but one) a reader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..annotations import Annotations
from ..errors import FormatError, OtherFormatError
from ..media.atomic import atomic_output
from . import coco, cvat, labelstudio, mot
from . import csv as csv_format


@dataclass(frozen=True)
class Format:
    """A file format: `write` writes to exactly the given path; `read` is None if unsupported.

    scores: its files keep each box's tracker score; video_fields: the VideoMeta fields its
    writer needs (the boxes' source may lack them; `ibfp convert --video` supplies them).
    """

    name: str
    extensions: tuple[str, ...]
    description: str
    write: Callable[[Path, Annotations], None]
    read: Callable[[Path], Annotations] | None
    scores: bool = True
    video_fields: tuple[str, ...] = ()


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("csv", (".csv",), "ibfp CSV: every field, exact round-trip", csv_format.write, csv_format.read),
        Format("mot", (".txt",), "MOTChallenge results (1-based frames and pixels)", mot.write, mot.read),
        Format("coco", (".json",), "COCO JSON with video and track ids (COCO-VID/TAO style)", coco.write, coco.read),
        Format("cvat", (".xml",), "CVAT for video 1.1 XML", cvat.write, cvat.read),
        Format(
            "labelstudio",
            (".json",),
            "Label Studio video tracking task (JSON)",
            labelstudio.write,
            labelstudio.read,
            scores=False,
            video_fields=labelstudio.VIDEO_FIELDS,
        ),
    )
}

FORMAT_BY_EXTENSION: dict[str, str] = {".csv": "csv", ".txt": "mot", ".json": "coco", ".xml": "cvat"}
"""The format a file's suffix picks when none is named; labelstudio shares .json, so it is
chosen only by name."""

_READ_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)
"""What a reader may raise on a file whose structure it did not expect."""


def format_names() -> list[str]:
    return list(FORMATS)


def scored_format_names() -> list[str]:
    """The formats whose files keep each box's tracker score."""
    return [f.name for f in FORMATS.values() if f.scores]


def resolve_format(path: Path, name: str | None = None) -> Format:
    """The format called `name`, else the one `path`'s extension picks."""
    choices = ", ".join(FORMATS)
    if name is not None:
        if name not in FORMATS:
            raise FormatError(f"unknown format {name!r}; choose one of {choices}")
        return FORMATS[name]
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_BY_EXTENSION:
        extensions = ", ".join(FORMAT_BY_EXTENSION)
        raise FormatError(
            f"cannot tell the format of {Path(path).name!r} from its extension; "
            f"name one of {choices}, or use {extensions}"
        )
    return FORMATS[FORMAT_BY_EXTENSION[suffix]]


def write_annotations(path: Path, annotations: Annotations, fmt: str | None = None) -> None:
    """Write `annotations` to `path` atomically: the file appears complete or not at all."""
    writer = resolve_format(path, fmt).write
    with atomic_output(path) as tmp:
        writer(tmp, annotations)


def read_annotations(path: Path, fmt: str | None = None) -> Annotations:
    """Read an annotation file; a missing or malformed file raises FormatError, an
    OtherFormatError naming the format the file does read as, if one does."""
    path = Path(path)
    format_ = resolve_format(path, fmt)
    if format_.read is None:
        raise FormatError(f"format {format_.name!r} can be written but not read")
    if not path.is_file():
        raise FormatError(f"annotation file {path} does not exist")
    try:
        return _read(path, format_.name, format_.read)
    except FormatError as e:
        likely = _likely_format(path, format_)
        if likely is None:
            raise
        raise OtherFormatError(f"{e}; it reads as a {likely} file", path, likely) from None


def _read(path: Path, name: str, reader: Callable[[Path], Annotations]) -> Annotations:
    try:
        return reader(path)
    except OSError as e:
        raise FormatError(f"cannot read {path}: {e.strerror or e}") from None
    except _READ_ERRORS as e:
        raise FormatError(f"{path}: not a valid {name} file ({e})") from None


def _likely_format(path: Path, tried: Format) -> str | None:
    """The first other readable format that finds boxes in the file, else None."""
    for other in FORMATS.values():
        if other is tried or other.read is None:
            continue
        try:
            if _read(path, other.name, other.read).records:
                return other.name
        except FormatError:
            continue
    return None
