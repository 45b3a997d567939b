"""CVAT for video 1.1 XML: one <track> per object, one <box> per frame.

CVAT imports only the boxes marked keyframe="1" of a track and interpolates the
frames between them, so every tracked box is written as a CVAT keyframe; ibfp's own
keyframe flag (a box given by a person) travels in the "manual" attribute.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..annotations import DEFAULT_LABEL, Annotations, BoxRecord, VideoMeta
from ..boxes import Box
from ..errors import FormatError
from .fields import check_unique, format_float, parse_flag, parse_float, parse_int, require_ids_from_one

CVAT_VERSION = "1.1"
SOURCE = "semi-auto"
"""CVAT's source for shapes an AI tool made from a person's box (it accepts manual, semi-auto,
auto and file; any other value is imported as manual)."""

ID_OFFSET = 1
"""CVAT track ids count from 0, ibfp's from 1: CVAT id = ibfp id - 1."""

COORD_FORMAT = "{:.2f}"
"""CVAT writes box corners with two decimals."""

SCORE_ATTRIBUTE = "score"
MANUAL_ATTRIBUTE = "manual"
"""Per-box attributes; CVAT keeps them when the task's label declares them (see the meta)."""

_LABEL_ATTRIBUTES = (
    # name, input_type, default, values: as CVAT declares label attributes in the meta.
    # score is text, not number: CVAT checks numbers against a min/max/step grid.
    (SCORE_ATTRIBUTE, "text", "1", "1"),
    (MANUAL_ATTRIBUTE, "checkbox", "false", "false"),
)


def write(path: Path, annotations: Annotations) -> None:
    """Write the meta (task size, frame size, labels) and one track per object."""
    require_ids_from_one(annotations, "CVAT")
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = CVAT_VERSION
    root.append(_meta(annotations))
    labels = annotations.labels()
    for track_id in annotations.ids():
        track = ET.SubElement(
            root, "track", {"id": str(track_id - ID_OFFSET), "label": labels[track_id], "source": SOURCE}
        )
        _write_boxes(track, annotations.track(track_id), annotations.video.frame_count, annotations.scored)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _meta(annotations: Annotations) -> ET.Element:
    video = annotations.video
    size = video.frame_count
    if size is None:
        size = max((r.frame for r in annotations.records), default=-1) + 1
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    for tag, text in (
        ("name", video.name),
        ("size", str(size)),
        ("mode", "interpolation"),
        ("overlap", "0"),
        ("start_frame", "0"),
        ("stop_frame", str(max(size - 1, 0))),
        ("frame_filter", ""),
        ("z_order", "False"),
    ):
        ET.SubElement(task, tag).text = text
    labels = ET.SubElement(task, "labels")
    for name in sorted(set(annotations.labels().values())) or [DEFAULT_LABEL]:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        attributes = ET.SubElement(label, "attributes")
        for attr_name, input_type, default, values in _LABEL_ATTRIBUTES:
            attribute = ET.SubElement(attributes, "attribute")
            for tag, text in (
                ("name", attr_name),
                ("mutable", "True"),
                ("input_type", input_type),
                ("default_value", default),
                ("values", values),
            ):
                ET.SubElement(attribute, tag).text = text
    if video.width is not None and video.height is not None:
        original_size = ET.SubElement(task, "original_size")
        ET.SubElement(original_size, "width").text = str(video.width)
        ET.SubElement(original_size, "height").text = str(video.height)
    ET.SubElement(task, "source").text = video.name
    return meta


def _write_boxes(track: ET.Element, records: list[BoxRecord], frame_count: int | None, scored: bool) -> None:
    """One box per record, and an outside box on the frame after each run that stops early;
    without `scored` (boxes read from a file without scores) the boxes get no score."""
    for i, r in enumerate(records):
        _box(track, r, outside=False, scored=scored)
        after = r.frame + 1
        continues = i + 1 < len(records) and records[i + 1].frame == after
        more_follow = i + 1 < len(records) or (frame_count is not None and after < frame_count)
        if not continues and more_follow:
            _box(track, r, outside=True, scored=scored, frame=after)


def _box(track: ET.Element, r: BoxRecord, outside: bool, scored: bool, frame: int | None = None) -> None:
    x1, y1, x2, y2 = r.box.xyxy()
    box = ET.SubElement(
        track,
        "box",
        {
            "frame": str(r.frame if frame is None else frame),
            "outside": str(int(outside)),
            "occluded": str(int(r.lost)),
            "keyframe": "1",
            "xtl": COORD_FORMAT.format(x1),
            "ytl": COORD_FORMAT.format(y1),
            "xbr": COORD_FORMAT.format(x2),
            "ybr": COORD_FORMAT.format(y2),
            "z_order": "0",
        },
    )
    if not outside and scored:
        ET.SubElement(box, "attribute", {"name": SCORE_ATTRIBUTE}).text = format_float(r.score)
    if not outside:
        ET.SubElement(box, "attribute", {"name": MANUAL_ATTRIBUTE}).text = "true" if r.keyframe else "false"


def read(path: Path) -> Annotations:
    """Read the box tracks (other shapes are skipped); outside boxes mean "not in view"."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise FormatError(f"{path}: not valid XML ({e})") from None
    if root.tag != "annotations":
        raise FormatError(f"{path}: not a CVAT file (root element <{root.tag}>, not <annotations>)")
    tracks = root.findall("track")
    if not tracks and root.find("image") is not None:
        raise FormatError(f"{path}: is 'CVAT for images'; export 'CVAT for video 1.1' instead")
    records, scored = [], False
    for track in tracks:
        where = f"{path} track {track.get('id')!r}"
        track_id = parse_int(track.get("id"), "id", where) + ID_OFFSET
        label = track.get("label") or DEFAULT_LABEL
        for box in track.findall("box"):
            if box.get("outside", "0") != "1":
                records.append(_record(box, track_id, label, f"{where} frame {box.get('frame')!r}"))
                scored = scored or any(a.get("name") == SCORE_ATTRIBUTE for a in box.findall("attribute"))
    check_unique(records, path)
    return Annotations(_video(root.find("meta"), path), records, scored=scored or not records)


def _record(box: ET.Element, track_id: int, label: str, where: str) -> BoxRecord:
    attributes = {a.get("name"): a.text or "" for a in box.findall("attribute")}
    x1, y1, x2, y2 = (parse_float(box.get(k), k, where) for k in ("xtl", "ytl", "xbr", "ybr"))
    manual = attributes.get(MANUAL_ATTRIBUTE)
    return BoxRecord(
        frame=parse_int(box.get("frame"), "frame", where),
        id=track_id,
        box=Box.from_xyxy(x1, y1, x2, y2),
        score=parse_float(attributes.get(SCORE_ATTRIBUTE, 1.0), SCORE_ATTRIBUTE, where),
        lost=parse_flag(box.get("occluded", "0"), "occluded", where),
        label=label,
        keyframe=(
            parse_flag(box.get("keyframe", "0"), "keyframe", where) if manual is None else _checkbox(manual, where)
        ),
    )


def _checkbox(text: str, where: str) -> bool:
    if text.strip().lower() not in ("true", "false"):
        raise FormatError(f"{where}: {MANUAL_ATTRIBUTE} {text!r} must be true or false")
    return text.strip().lower() == "true"


def _video(meta: ET.Element | None, path: Path) -> VideoMeta:
    """Name, frame count and size from <meta><task> (or <meta><job>, as CVAT exports jobs).

    CVAT writes a task's frame size in <task><original_size>, a job's beside <job>, in
    <meta><original_size> (cvat/apps/dataset_manager/bindings.py): both are read.
    """
    info = None
    if meta is not None:
        info = next((e for e in (meta.find("task"), meta.find("job")) if e is not None), None)
    if meta is None or info is None:
        return VideoMeta(name=path.stem)
    where = f"{path} meta"

    def whole(element: ET.Element, tag: str) -> int | None:
        text = element.findtext(tag)
        return None if not text else parse_int(text, tag.rsplit("/")[-1], where)

    size = info if info.find("original_size") is not None else meta
    return VideoMeta(
        name=info.findtext("name") or path.stem,
        width=whole(size, "original_size/width"),
        height=whole(size, "original_size/height"),
        frame_count=whole(info, "size"),
    )
