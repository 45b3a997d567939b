"""Label Studio video tasks: one videorectangle region per object, boxes in percent of the frame.

Label Studio numbers the frames of a sequence from 1 and interpolates between
consecutive sequence items while an item is enabled, so the last box before a gap
or a lost stretch is written with enabled=false.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..annotations import DEFAULT_LABEL, Annotations, BoxRecord, VideoMeta
from ..boxes import Box
from ..errors import FormatError
from .fields import check_unique, load_json, parse_float, parse_int

LS_FRAME_BASE = 1
"""Label Studio's first frame is 1 in the files it exports (its docs say 0)."""

PERCENT = 100.0
FROM_NAME = "box"
TO_NAME = "video"
"""The names of the <VideoRectangle> and <Video> tags in Label Studio's video tracking template."""

REGION_TYPE = "videorectangle"
VIDEO_FIELDS: tuple[str, ...] = ("width", "height", "fps")
"""What the writer needs of the video: percentages need the frame size, times the rate."""


def write(path: Path, annotations: Annotations) -> None:
    """Write a list with one task whose annotation holds one region per object."""
    video = annotations.video
    missing = [k for k in VIDEO_FIELDS if not getattr(video, k)]
    if missing:
        raise FormatError(f"Label Studio export needs the video's {', '.join(missing)}")
    frame_count = video.frame_count
    if frame_count is None:
        frame_count = max((r.frame for r in annotations.records), default=-1) + 1
    width, height, fps = int(video.width), int(video.height), float(video.fps)
    labels = annotations.labels()
    regions = []
    for track_id in annotations.ids():
        sequence = _sequence(annotations.track(track_id), width, height, fps)
        if sequence:
            regions.append(
                {
                    "id": str(track_id),
                    "type": REGION_TYPE,
                    "from_name": FROM_NAME,
                    "to_name": TO_NAME,
                    "original_width": width,
                    "original_height": height,
                    "value": {
                        "labels": [labels[track_id]],
                        "framesCount": frame_count,
                        "duration": frame_count / fps,
                        "sequence": sequence,
                    },
                }
            )
    tasks = [{"data": {"video": video.name}, "annotations": [{"result": regions}]}]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tasks, f, indent=1)


def _sequence(records: list[BoxRecord], width: int, height: int, fps: float) -> list[dict[str, Any]]:
    """The boxes the tracker kept hold of; each run's last box is disabled to stop interpolation."""
    kept = [r for r in records if not r.lost]
    return [
        {
            "frame": int(r.frame) + LS_FRAME_BASE,
            "x": PERCENT * float(r.box.x) / width,
            "y": PERCENT * float(r.box.y) / height,
            "width": PERCENT * float(r.box.w) / width,
            "height": PERCENT * float(r.box.h) / height,
            "enabled": i + 1 < len(kept) and kept[i + 1].frame == r.frame + 1,
            "time": float(r.time_s) if r.time_s is not None else r.frame / fps,
            "rotation": 0,
        }
        for i, r in enumerate(kept)
    ]


def read(path: Path) -> Annotations:
    """Read the regions of the first annotation (or prediction) of a one-task file."""
    tasks = load_json(path)
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or len(tasks) != 1 or not isinstance(tasks[0], dict):
        raise FormatError(f"{path}: expected a list with one Label Studio task")
    task = tasks[0]
    results = (task.get("annotations") or task.get("predictions") or [{}])[0].get("result", [])
    regions = [r for r in results if isinstance(r, dict) and r.get("type") == REGION_TYPE]
    records = []
    for track_id, region in zip(_track_ids(regions), regions):
        records.extend(_records(region, track_id, f"{path} region {region.get('id')!r}"))
    check_unique(records, path)
    name = str((task.get("data") or {}).get("video") or path.stem)
    return Annotations(_video(name, regions, path), records, scored=False)


def _track_ids(regions: list[dict[str, Any]]) -> list[int]:
    """The regions' own ids where all are distinct whole numbers >= 1, else 1, 2, 3..."""
    texts = [str(r.get("id", "")) for r in regions]
    if all(t.isdigit() and int(t) >= 1 for t in texts) and len(set(texts)) == len(texts):
        return [int(t) for t in texts]
    return list(range(1, len(regions) + 1))


def _frame_size(region: dict[str, Any], where: str) -> tuple[float, float]:
    if "original_width" not in region or "original_height" not in region:
        raise FormatError(
            f"{where}: no original_width/original_height, so its percentages cannot be turned into pixels"
        )
    return (
        parse_float(region["original_width"], "original_width", where),
        parse_float(region["original_height"], "original_height", where),
    )


def _records(region: dict[str, Any], track_id: int, where: str) -> list[BoxRecord]:
    width, height = _frame_size(region, where)
    value = region.get("value") or {}
    label = str((value.get("labels") or [DEFAULT_LABEL])[0])
    records = []
    for item in value.get("sequence") or []:
        item_where = f"{where} frame {item.get('frame')!r}"
        x, y, w, h = (parse_float(item.get(k), k, item_where) for k in ("x", "y", "width", "height"))
        time_s = item.get("time")
        records.append(
            BoxRecord(
                frame=parse_int(item.get("frame"), "frame", item_where) - LS_FRAME_BASE,
                id=track_id,
                box=Box(x * width / PERCENT, y * height / PERCENT, w * width / PERCENT, h * height / PERCENT),
                time_s=None if time_s is None else parse_float(time_s, "time", item_where),
                label=label,
            )
        )
    return records


def _video(name: str, regions: list[dict[str, Any]], path: Path) -> VideoMeta:
    """Frame size, frame count and fps (framesCount / duration) from the first region."""
    if not regions:
        return VideoMeta(name=name)
    where = f"{path} region {regions[0].get('id')!r}"
    width, height = _frame_size(regions[0], where)
    value = regions[0].get("value") or {}
    frame_count = fps = None
    if "framesCount" in value:
        frame_count = parse_int(value["framesCount"], "framesCount", where)
        duration = parse_float(value.get("duration", 0), "duration", where)
        fps = frame_count / duration if duration > 0 else None
    return VideoMeta(name, round(width), round(height), fps, frame_count)
