"""COCO JSON with the video fields of COCO-VID/TAO: one image per frame, track ids on boxes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..annotations import DEFAULT_LABEL, Annotations, BoxRecord, VideoMeta
from ..boxes import Box
from ..errors import FormatError
from .fields import check_unique, load_json, parse_flag, parse_float, parse_int

VIDEO_ID = 1
"""The file holds one video."""

SUPERCATEGORY = "object"
FRAME_FILE = "{stem}/{frame:06d}.jpg"
"""Where a frame extracted as an image would live; COCO tools need a file_name."""

INFO = {"description": "ibfp tracking results"}


def write(path: Path, annotations: Annotations) -> None:
    """Write videos, one image per frame, one annotation per record, one category per label."""
    video = annotations.video
    records = annotations.records
    frames = sorted(set(range(video.frame_count or 0)) | {r.frame for r in records})
    image_ids = {frame: i for i, frame in enumerate(frames, start=1)}
    times: dict[int, float] = {}
    for r in records:
        if r.time_s is not None:
            times.setdefault(r.frame, float(r.time_s))
    labels = sorted({r.label for r in records}) or [DEFAULT_LABEL]
    category_ids = {label: i for i, label in enumerate(labels, start=1)}
    stem = Path(video.name).stem
    width, height = _optional(int, video.width), _optional(int, video.height)
    document = {
        "info": INFO,
        "videos": [
            {
                "id": VIDEO_ID,
                "name": video.name,
                "width": width,
                "height": height,
                "fps": _optional(float, video.fps),
                "frame_count": _optional(int, video.frame_count),
            }
        ],
        "images": [
            {
                "id": image_ids[frame],
                "video_id": VIDEO_ID,
                "frame_index": frame,
                "frame_id": frame,
                "file_name": FRAME_FILE.format(stem=stem, frame=frame),
                "width": width,
                "height": height,
                "time_s": times.get(frame),
            }
            for frame in frames
        ],
        "annotations": [
            _annotation(i, r, image_ids[r.frame], category_ids[r.label], annotations.scored)
            for i, r in enumerate(records, start=1)
        ],
        "categories": [{"id": category_ids[label], "name": label, "supercategory": SUPERCATEGORY} for label in labels],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)


def _optional(cast: Callable[[Any], Any], value: Any) -> Any:
    """`value` as a plain JSON number (an fps from PyAV may be a Fraction); None stays None."""
    return None if value is None else cast(value)


def _annotation(ann_id: int, r: BoxRecord, image_id: int, category_id: int, scored: bool) -> dict[str, Any]:
    """One box; without `scored` (boxes read from a file without scores) it has no score."""
    x, y, w, h = (float(v) for v in r.box.xywh())
    track_id, lost, keyframe = int(r.id), bool(r.lost), bool(r.keyframe)
    return {
        "id": ann_id,
        "image_id": image_id,
        "video_id": VIDEO_ID,
        "category_id": category_id,
        "bbox": [x, y, w, h],
        "area": w * h,
        "iscrowd": 0,
        **({"score": float(r.score)} if scored else {}),
        "lost": lost,
        "keyframe": keyframe,
        "track_id": track_id,
        "instance_id": track_id,
        "attributes": {"track_id": track_id, "lost": lost, "keyframe": keyframe},
    }


def read(path: Path) -> Annotations:
    """Read one video's boxes; ids from track_id (else attributes.track_id, else instance_id)."""
    document = load_json(path)
    if not isinstance(document, dict):
        raise FormatError(f"{path}: a COCO file is a JSON object, not {type(document).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if k not in document]
    if missing:
        raise FormatError(f"{path}: not a COCO file (no {', '.join(missing)})")
    videos = document.get("videos") or []
    if not isinstance(videos, list) or not all(isinstance(v, dict) for v in videos):
        raise FormatError(f"{path}: videos is not a list of JSON objects")
    if len(videos) > 1:
        raise FormatError(f"{path}: holds {len(videos)} videos; ibfp reads one video per file")
    try:
        images = {img["id"]: img for img in document["images"]}
        categories = {c["id"]: c["name"] for c in document["categories"]}
    except (KeyError, TypeError) as e:
        raise FormatError(f"{path}: an image or category has no {e}") from None
    records = [
        _record(ann, images, categories, f"{path} annotation {i}")
        for i, ann in enumerate(document["annotations"], start=1)
    ]
    check_unique(records, path)
    scored = any(isinstance(ann, dict) and "score" in ann for ann in document["annotations"]) or not records
    return Annotations(_video(videos[0] if videos else {}, images, path), records, scored=scored)


def _record(ann: Any, images: dict[Any, Any], categories: dict[Any, str], where: str) -> BoxRecord:
    if not isinstance(ann, dict):
        raise FormatError(f"{where}: not a JSON object")
    image = images.get(ann.get("image_id"))
    if image is None:
        raise FormatError(f"{where}: image_id {ann.get('image_id')!r} is not among the images")
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise FormatError(f"{where}: bbox {bbox!r} is not [x, y, w, h]")
    attributes = ann.get("attributes") or {}
    track_id = ann.get("track_id", attributes.get("track_id", ann.get("instance_id")))
    if track_id is None:
        raise FormatError(f"{where}: no track_id (a COCO file without tracks is not a video)")
    frame = image.get("frame_index", image.get("frame_id"))
    if frame is None:
        raise FormatError(f"{where}: its image has no frame_index")
    label = categories.get(ann.get("category_id"))
    if label is None:
        raise FormatError(f"{where}: category_id {ann.get('category_id')!r} is not a category")
    time_s = image.get("time_s")
    return BoxRecord(
        frame=parse_int(frame, "frame_index", where),
        id=parse_int(track_id, "track_id", where),
        box=Box(*(parse_float(v, "bbox value", where) for v in bbox)),
        score=parse_float(ann.get("score", 1.0), "score", where),
        lost=parse_flag(ann.get("lost", attributes.get("lost", False)), "lost", where),
        time_s=None if time_s is None else parse_float(time_s, "time_s", where),
        label=label,
        keyframe=parse_flag(ann.get("keyframe", attributes.get("keyframe", False)), "keyframe", where),
    )


def _video(video: dict[str, Any], images: dict[Any, Any], path: Path) -> VideoMeta:
    """The video's meta from `videos`, else the size of the first image."""
    first = next(iter(images.values()), {})
    where = f"{path} video"

    def whole(key: str, fallback: Any = None) -> int | None:
        value = video.get(key, fallback)
        return None if value is None else parse_int(value, key, where)

    fps = video.get("fps")
    return VideoMeta(
        name=str(video.get("name") or path.stem),
        width=whole("width", first.get("width")),
        height=whole("height", first.get("height")),
        fps=None if fps is None else parse_float(fps, "fps", where),
        frame_count=whole("frame_count"),
    )
