"""The two image-dataset layouts `ibfp export` writes: YOLO (Ultralytics) and COCO.

YOLO: `images/{train,val}/<video>_<frame:06d>.<ext>`, a `labels/{train,val}/<same stem>.txt`
per image with boxes (`class cx cy w h`, normalised to 0..1), and `data.yaml`.
COCO: the same images and `annotations/instances_{train,val}.json`, `bbox` as [x, y, w, h]
pixels. Class ids follow the labels' first-seen order: YOLO counts from 0, COCO from 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..boxes import Box

DatasetKind = Literal["yolo", "coco"]
DATASET_KINDS: tuple[str, ...] = ("yolo", "coco")
SIDES: tuple[str, ...] = ("train", "val")

IMAGES = "images"
LABELS = "labels"
ANNOTATIONS = "annotations"
DATA_YAML = "data.yaml"
FRAME_DIGITS = 6
"""Frame numbers in file names are zero-padded to 6 digits (a million frames: 9 h at 30 frames/s)."""
LABEL_DECIMALS = 6
"""Normalised values keep 6 decimals, as Ultralytics's own converters: 0.002 px on a 4K frame."""
YOLO_FIRST_CLASS = 0
"""YOLO class indices count from 0 (Ultralytics's `names` list)."""
COCO_FIRST_CATEGORY = 1
"""COCO category ids count from 1 (0 is background in many COCO tools)."""
FIRST_CLASS_ID: dict[str, int] = {"yolo": YOLO_FIRST_CLASS, "coco": COCO_FIRST_CATEGORY}
"""The id of the first class in the files of each layout (and in `ibfp export`'s summary line)."""
SUPERCATEGORY = "object"
INFO = {"description": "frames and boxes exported by ibfp export"}


@dataclass(frozen=True, slots=True)
class LabelledBox:
    """One exported box: class index (0-based), the box clipped to the frame, its object and score."""

    cls: int
    box: Box
    track_id: int
    score: float


@dataclass(frozen=True, slots=True)
class ExportedImage:
    """One exported frame: its file name (inside images/<side>), side, source and boxes."""

    file_name: str
    side: str
    video: str
    frame: int
    width: int
    height: int
    boxes: tuple[LabelledBox, ...]


def class_ids(kind: DatasetKind, classes: Sequence[str]) -> dict[int, str]:
    """The id each class (0-based index in `classes`) has in the files of layout `kind` -> its name."""
    return {FIRST_CLASS_ID[kind] + i: name for i, name in enumerate(classes)}


def image_name(video: str, frame: int, extension: str) -> str:
    """`<video>_<frame:06d>.<extension>`: the frame index is the 0-based decode index."""
    return f"{video}_{frame:0{FRAME_DIGITS}d}.{extension}"


def yolo_line(box: LabelledBox, width: int, height: int) -> str:
    """`class cx cy w h`, the box's centre and size divided by the frame's width and height."""
    b = box.box
    values = (b.cx / width, b.cy / height, b.w / width, b.h / height)
    return " ".join([str(box.cls), *(f"{v:.{LABEL_DECIMALS}f}" for v in values)])


def write_yolo_labels(root: Path, image: ExportedImage) -> None:
    """The image's label file; none for an image without boxes (a background image to Ultralytics)."""
    if not image.boxes:
        return
    path = root / LABELS / image.side / Path(image.file_name).with_suffix(".txt")
    path.write_text("".join(yolo_line(b, image.width, image.height) + "\n" for b in image.boxes), encoding="utf-8")


def data_yaml(dataset_path: Path, classes: Sequence[str], sides: Iterable[str]) -> str:
    """Ultralytics's dataset file: root, train and val image folders (val is train when there is
    no val split), class names by index. Strings are JSON-quoted, which YAML reads as they are."""
    folders = {side: f"{IMAGES}/{side}" for side in sides}
    lines = [
        "# written by ibfp export; train with: yolo train data=data.yaml",
        f"path: {json.dumps(str(dataset_path), ensure_ascii=False)}",
        f"train: {folders['train']}",
        f"val: {folders.get('val', folders['train'])}",
        f"nc: {len(classes)}",
        "names:",
        *(f"  {i}: {json.dumps(name, ensure_ascii=False)}" for i, name in class_ids("yolo", classes).items()),
    ]
    return "\n".join(lines) + "\n"


def coco_document(images: Sequence[ExportedImage], classes: Sequence[str], videos: Sequence[str]) -> dict[str, Any]:
    """COCO instances for one side: ids unique within the file; `track_id` and `score` kept on
    each annotation, `video_id` and `frame_index` on each image."""
    video_ids = {name: i for i, name in enumerate(videos, start=1)}
    coco_images, annotations = [], []
    for image_id, image in enumerate(images, start=1):
        coco_images.append(
            {
                "id": image_id,
                "file_name": image.file_name,
                "width": image.width,
                "height": image.height,
                "video_id": video_ids[image.video],
                "frame_index": image.frame,
            }
        )
        for b in image.boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": b.cls + FIRST_CLASS_ID["coco"],
                    "bbox": list(b.box.xywh()),
                    "area": b.box.area,
                    "iscrowd": 0,
                    "track_id": b.track_id,
                    "score": b.score,
                }
            )
    return {
        "info": INFO,
        "licenses": [],
        "videos": [{"id": i, "name": name} for name, i in video_ids.items()],
        "images": coco_images,
        "annotations": annotations,
        "categories": [
            {"id": i, "name": name, "supercategory": SUPERCATEGORY} for i, name in class_ids("coco", classes).items()
        ],
    }


def write_coco(root: Path, images: Sequence[ExportedImage], classes: Sequence[str], videos: Sequence[str]) -> None:
    """`annotations/instances_<side>.json` for each side that has images."""
    folder = root / ANNOTATIONS
    folder.mkdir()
    for side in SIDES:
        chosen = [image for image in images if image.side == side]
        if chosen:
            document = coco_document(chosen, classes, videos)
            (folder / f"instances_{side}.json").write_text(json.dumps(document), encoding="utf-8")
