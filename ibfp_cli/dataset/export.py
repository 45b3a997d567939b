"""`ibfp export`: frames and boxes of tracked videos as a YOLO or COCO image dataset.

Each video is decoded once; its chosen frames are encoded and written by a pool of threads
(OpenCV's encoders release the GIL) while the next frames decode. The dataset is built in
a temporary folder beside the target and renamed when complete, so an error or Ctrl-C
leaves nothing half-written.

Which frames: every `every`-th frame (0, N, 2N, ...). A frame is dropped when any box on it
is doubtful, that is lost or scored below `min_score` (boxes a person drew never are): the
object is there but where is not known, and an image with an unlabelled object teaches a
detector that the object is background. Boxes are clipped to the frame; a box wholly outside
it is left out (the object is not in the picture). Frames with no box are kept as
background images.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from ..annotate.review import DEFAULT_THRESHOLD, is_doubtful
from ..annotations import Annotations, BoxRecord
from ..batch.runner import find_video, outputs_in
from ..errors import IBFPError
from ..formats import FORMAT_BY_EXTENSION, read_annotations
from ..media.atomic import atomic_folder
from ..media.video import VideoInfo, VideoReader
from ..progress import StageProgress
from ..wording import counted
from .layout import (
    DATA_YAML,
    DATASET_KINDS,
    IMAGES,
    LABELS,
    SIDES,
    DatasetKind,
    ExportedImage,
    LabelledBox,
    data_yaml,
    image_name,
    write_coco,
    write_yolo_labels,
)
from .split import SplitConfig, no_split_reason, unit_of, val_units

ImageFormat = Literal["jpg", "png"]
IMAGE_FORMATS: tuple[str, ...] = ("jpg", "png")
DEFAULT_JPEG_QUALITY = 95
"""OpenCV's own default JPEG quality: artefacts well below what training augmentation adds."""
MAX_JPEG_QUALITY = 100
PENDING_PER_THREAD = 2
"""Frames queued per writer thread before decoding waits: enough to keep threads busy,
few enough that memory stays a handful of frames."""


@dataclass(frozen=True)
class ExportConfig:
    """What `export_dataset` writes: the layout, which frames, the split and the image files."""

    to: DatasetKind = "yolo"
    every: int = 1
    min_score: float = DEFAULT_THRESHOLD
    split: SplitConfig = field(default_factory=SplitConfig)
    image_format: ImageFormat = "jpg"
    quality: int = DEFAULT_JPEG_QUALITY
    threads: int | None = None
    """Image writer threads; None: one per CPU core."""

    def __post_init__(self) -> None:
        if self.to not in DATASET_KINDS:
            raise IBFPError(f"unknown dataset layout {self.to!r}; use one of {', '.join(DATASET_KINDS)}")
        if self.every < 1:
            raise IBFPError(f"--every {self.every} must be 1 or more")
        if self.image_format not in IMAGE_FORMATS:
            raise IBFPError(f"unknown image format {self.image_format!r}; use one of {', '.join(IMAGE_FORMATS)}")
        if not 1 <= self.quality <= MAX_JPEG_QUALITY:
            raise IBFPError(f"JPEG quality {self.quality} must be between 1 and {MAX_JPEG_QUALITY}")


@dataclass(frozen=True)
class ExportSource:
    """One video and its boxes; `name` (the video's stem) prefixes its image files."""

    video: Path
    boxes: Path
    fmt: str | None = None

    @property
    def name(self) -> str:
        return self.video.stem


@dataclass(frozen=True, slots=True)
class VideoExport:
    """What happened to one video: images per side, frames dropped as doubtful, or why it failed."""

    video: str
    status: Literal["done", "failed"]
    message: str
    images: dict[str, int] = field(default_factory=dict)
    boxes: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The dataset written: its folder, class names by index, each video's outcome, and why
    there is no validation split where one was asked for (None: there is one, or none was)."""

    out_dir: Path
    classes: tuple[str, ...]
    videos: tuple[VideoExport, ...]
    warning: str | None = None

    def images(self, side: str) -> int:
        return sum(v.images.get(side, 0) for v in self.videos)

    @property
    def failed(self) -> bool:
        return any(v.status == "failed" for v in self.videos)


@dataclass(frozen=True)
class _Plan:
    """One video ready to export: its reader, its kept frames' boxes, and its dropped count."""

    source: ExportSource
    reader: VideoReader
    frames: dict[int, list[BoxRecord]]
    dropped: int


def export_video(
    video: str | os.PathLike[str],
    boxes: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: ExportConfig,
    *,
    fmt: str | None = None,
    progress: StageProgress | None = None,
) -> ExportResult:
    """Export one video's frames and boxes; any error stops the export and writes nothing."""
    source = ExportSource(Path(video), Path(boxes), fmt)
    return export_dataset([source], out_dir, config, keep_going=False, progress=progress)


def export_batch(
    folder: str | os.PathLike[str],
    boxes_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: ExportConfig,
    *,
    fmt: str | None = None,
    progress: StageProgress | None = None,
) -> ExportResult:
    """Export every annotation file in `boxes_dir` (an `ibfp batch` output folder) with its video
    in `folder`, found by the file's stem; a video that fails is reported, the others go on."""
    folder, boxes_dir = Path(folder), Path(boxes_dir)
    for path, what in ((folder, "video folder"), (boxes_dir, "boxes folder")):
        if not path.is_dir():
            raise IBFPError(f"{what} {path} does not exist")
    files = outputs_in(boxes_dir)
    if not files:
        raise IBFPError(f"{boxes_dir} holds no annotation files ({', '.join(FORMAT_BY_EXTENSION)})")
    sources, unmatched = [], []
    for path in files:
        try:
            sources.append(ExportSource(find_video(folder, path.stem), path, fmt))
        except IBFPError as e:
            unmatched.append(VideoExport(path.name, "failed", str(e)))
    return export_dataset(sources, out_dir, config, keep_going=True, failed=unmatched, progress=progress)


def export_dataset(
    sources: Sequence[ExportSource],
    out_dir: str | os.PathLike[str],
    config: ExportConfig,
    *,
    keep_going: bool = False,
    failed: Sequence[VideoExport] = (),
    progress: StageProgress | None = None,
) -> ExportResult:
    """Write the dataset for `sources` to `out_dir` (which must not exist, or be empty).

    With `keep_going`, a video whose boxes or frames cannot be read is reported in the
    result and left out; otherwise its error stops the export. `failed` are videos that
    failed before (reported after the others). No usable video is an error.
    """
    out_dir = Path(out_dir)
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise IBFPError(f"two videos are named {repeated[0]!r}; their image files would collide")
    outcomes: dict[str, VideoExport] = {v.video: v for v in failed}
    plans: list[_Plan] = []
    annotations: list[Annotations] = []
    for source in sources:
        try:
            found = read_annotations(source.boxes, source.fmt)
            plans.append(_plan(source, found, config))
            annotations.append(found)
        except IBFPError as e:
            if not keep_going:
                raise
            outcomes[source.name] = VideoExport(source.name, "failed", str(e))
    if not plans:
        raise IBFPError(_nothing_exported(outcomes.values(), config))
    classes = _classes(annotations)
    class_of = {label: i for i, label in enumerate(classes)}
    val = val_units((unit_of(p.source.name, f, config.split) for p in plans for f in p.frames), config.split)
    sides = SIDES if val else SIDES[:1]
    warning = no_split_reason(config.split) if config.split.val > 0 and not val else None

    images: list[ExportedImage] = []
    with atomic_folder(out_dir) as root:
        for side in sides:
            (root / IMAGES / side).mkdir(parents=True)
            if config.to == "yolo":
                (root / LABELS / side).mkdir(parents=True)
        for plan in plans:
            name = plan.source.name
            stage = progress(f"exporting {plan.source.video.name}") if progress else None
            try:
                exported = _export_frames(plan, root, config, class_of, val, stage)
            except IBFPError as e:
                if not keep_going:
                    raise
                outcomes[name] = VideoExport(name, "failed", str(e))
                continue
            images.extend(exported)
            counts = {side: sum(i.side == side for i in exported) for side in sides}
            boxes = sum(len(i.boxes) for i in exported)
            written = counted(sum(counts.values()), "image")
            message = f"{written}, {counted(boxes, 'box', 'boxes')}, {counted(plan.dropped, 'doubtful frame')} dropped"
            outcomes[name] = VideoExport(name, "done", message, counts, boxes, plan.dropped)
        if not images:
            raise IBFPError(_nothing_exported(outcomes.values(), config))
        if config.to == "yolo":
            # the absolute path: Ultralytics looks for `path` there first, wherever it is started
            (root / DATA_YAML).write_text(data_yaml(out_dir.resolve(), classes, sides), encoding="utf-8")
        else:
            write_coco(
                root, images, classes, [p.source.name for p in plans if outcomes[p.source.name].status == "done"]
            )
    return ExportResult(out_dir, tuple(classes), (*(outcomes[s.name] for s in sources), *failed), warning)


def _nothing_exported(outcomes: Iterable[VideoExport], config: ExportConfig) -> str:
    """Why a dataset would have no image: every video failed, or every frame was dropped."""
    outcomes = list(outcomes)
    failed = [f"{v.video}: {v.message}" for v in outcomes if v.status == "failed"]
    if failed and all(v.status == "failed" for v in outcomes):
        return f"no video could be exported: {'; '.join(failed)}"
    return (
        f"no frame left to export: every frame has a box that is lost or scored below {config.min_score:g} "
        "(lower --min-score, or add keyframes and retrack)"
    )


def _plan(source: ExportSource, annotations: Annotations, config: ExportConfig) -> _Plan:
    """The frames to export and their boxes; checks the boxes fit the video."""
    reader = VideoReader(source.video)
    info = reader.info
    known = annotations.video
    if known.width is not None and (known.width, known.height) != (info.width, info.height):
        raise IBFPError(
            f"{source.boxes} is for a {known.width}x{known.height} video "
            f"but {source.video} is {info.width}x{info.height}"
        )
    by_frame: dict[int, list[BoxRecord]] = {}
    for r in annotations.records:
        by_frame.setdefault(r.frame, []).append(r)
    beyond = [f for f in by_frame if f >= info.frame_count]
    if beyond:
        raise IBFPError(
            f"{source.boxes} has boxes on frame {min(beyond)}, but {source.video} has frames 0..{info.frame_count - 1}"
        )
    frames: dict[int, list[BoxRecord]] = {}
    dropped = 0
    for frame in range(0, info.frame_count, config.every):
        records = by_frame.get(frame, [])
        if any(is_doubtful(r, config.min_score) for r in records):
            dropped += 1
        else:
            frames[frame] = records
    return _Plan(source, reader, frames, dropped)


def _classes(annotations: Sequence[Annotations]) -> list[str]:
    """Labels in first-seen order: videos in order, each by frame then object id."""
    return list(dict.fromkeys(r.label for a in annotations for r in a.records))


def _export_frames(
    plan: _Plan,
    root: Path,
    config: ExportConfig,
    class_of: dict[str, int],
    val: frozenset[tuple[str, int]],
    progress: StageProgress | None,
) -> list[ExportedImage]:
    """Decode the video once, hand each kept frame to the writer threads, write its labels.

    If the video fails part way, the files it wrote are removed before the error goes on.
    """
    name, info = plan.source.name, plan.reader.info
    last = max(plan.frames, default=-1)
    threads = config.threads or os.cpu_count() or 1
    exported: list[ExportedImage] = []
    pending: deque[Future[None]] = deque()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ibfp-export") as pool:
        try:
            with plan.reader as reader:
                for frame in reader:
                    if frame.index > last:
                        break
                    if frame.index in plan.frames:
                        side = "val" if unit_of(name, frame.index, config.split) in val else "train"
                        image = _exported(name, frame.index, side, plan.frames[frame.index], info, class_of, config)
                        path = root / IMAGES / side / image.file_name
                        pending.append(pool.submit(_write_image, path, frame.image, config))
                        if config.to == "yolo":
                            write_yolo_labels(root, image)
                        exported.append(image)
                        while len(pending) > threads * PENDING_PER_THREAD:
                            pending.popleft().result()
                    if progress is not None:
                        progress(frame.index + 1, last + 1)
            while pending:
                pending.popleft().result()
        except BaseException:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)
            _remove(root, exported)
            raise
    return exported


def _exported(
    name: str,
    frame: int,
    side: str,
    records: list[BoxRecord],
    info: VideoInfo,
    class_of: dict[str, int],
    config: ExportConfig,
) -> ExportedImage:
    """A frame's file name, side and boxes: clipped to the frame, those wholly outside it left out."""
    width, height = info.width, info.height
    boxes = []
    for r in records:
        clipped = r.box.clip(width, height)
        if clipped.w > 0 and clipped.h > 0:
            boxes.append(LabelledBox(class_of[r.label], clipped, r.id, r.score))
    file_name = image_name(name, frame, config.image_format)
    return ExportedImage(file_name, side, name, frame, width, height, tuple(boxes))


def _write_image(path: Path, image: np.ndarray, config: ExportConfig) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, config.quality] if config.image_format == "jpg" else []
    ok, data = cv2.imencode(f".{config.image_format}", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise IBFPError(f"OpenCV could not encode {path.name}")
    path.write_bytes(data.tobytes())


def _remove(root: Path, images: list[ExportedImage]) -> None:
    """Delete a failed video's image and label files."""
    for image in images:
        (root / IMAGES / image.side / image.file_name).unlink(missing_ok=True)
        (root / LABELS / image.side / Path(image.file_name).with_suffix(".txt")).unlink(missing_ok=True)
