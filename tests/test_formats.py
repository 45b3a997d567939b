"""Annotation formats: round-trips, the conventions each format pins, and bad input."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import pytest

from ibfp_cli.annotations import DEFAULT_LABEL, Annotations, BoxRecord, VideoMeta
from ibfp_cli.boxes import Box
from ibfp_cli.errors import FormatError
from ibfp_cli.formats import FORMATS, format_names, read_annotations, resolve_format, write_annotations

WIDTH, HEIGHT, FPS, FRAME_COUNT = 160, 120, 25.0, 10
PTS = [0.0, 0.04, 0.081, 0.12, 0.165, 0.2, 0.24, 0.29, 0.32, 0.36]
"""Presentation times of a variable-frame-rate clip: not frame / FPS."""

PERSON_LOST = {4, 5}
CAR_FRAMES = [2, 3, 4, 6, 7]
"""The car is missing on frame 5 and leaves after frame 7, before the video ends."""
CAR_LOST = {3}

CVAT_CORNER_TOLERANCE = 0.005
"""CVAT stores corners with two decimals, so x, y are within half a hundredth..."""
CVAT_SIZE_TOLERANCE = 0.01
"""...and w = xbr - xtl within a hundredth."""
FLOAT_TOLERANCE = 1e-9
"""For formats that shift (MOT +1) or scale (Label Studio percent) coordinates."""


def make_annotations() -> Annotations:
    person = [
        BoxRecord(
            frame=f,
            id=1,
            box=Box(10.25 + 3.37 * f, 20.5 + 1.13 * f, 30.7, 40.3 + 0.21 * f),
            score=0.12 if f in PERSON_LOST else 0.9 - 0.013 * f,
            lost=f in PERSON_LOST,
            time_s=PTS[f],
            label="person",
            keyframe=f == 0,
        )
        for f in range(FRAME_COUNT)
    ]
    car = [
        BoxRecord(
            frame=f,
            id=2,
            box=Box(100.6 - 2.2 * f, 60.1, 25.45, 18.9),
            score=0.3 if f in CAR_LOST else 0.81,
            lost=f in CAR_LOST,
            time_s=PTS[f],
            label="car",
            keyframe=f == 6,
        )
        for f in CAR_FRAMES
    ]
    return Annotations(VideoMeta("walk.mp4", WIDTH, HEIGHT, FPS, FRAME_COUNT), person + car)


@pytest.fixture
def annotations() -> Annotations:
    return make_annotations()


def by_key(annotations: Annotations) -> dict[tuple[int, int], BoxRecord]:
    return {(r.frame, r.id): r for r in annotations.records}


def assert_boxes_close(got: Box, want: Box, corner: float, size: float) -> None:
    assert got.x == pytest.approx(want.x, abs=corner)
    assert got.y == pytest.approx(want.y, abs=corner)
    assert got.w == pytest.approx(want.w, abs=size)
    assert got.h == pytest.approx(want.h, abs=size)


# ---- csv -------------------------------------------------------------------------------


def test_csv_round_trip_is_exact(tmp_path: Path, annotations: Annotations) -> None:
    path = tmp_path / "walk.csv"
    write_annotations(path, annotations)
    assert path.read_text().splitlines()[0] == "frame,time_s,id,label,x,y,w,h,score,lost,keyframe"
    back = read_annotations(path)
    assert back.records == annotations.records
    assert back.video == VideoMeta(name="walk")


def test_csv_writes_empty_time_and_reads_it_as_none(tmp_path: Path) -> None:
    record = BoxRecord(frame=3, id=1, box=Box(1.5, 2.5, 3.5, 4.5), time_s=None)
    path = tmp_path / "t.csv"
    write_annotations(path, Annotations(VideoMeta("t"), [record]))
    assert path.read_text().splitlines()[1] == "3,,1,object,1.5,2.5,3.5,4.5,1.0,0,0"
    assert read_annotations(path).records == [record]


def test_csv_reads_a_hand_made_file_with_only_the_required_columns(tmp_path: Path) -> None:
    path = tmp_path / "seed.csv"
    path.write_text("frame,id,x,y,w,h\n4,2,10,20,30,40\n")
    assert read_annotations(path).records == [BoxRecord(4, 2, Box(10, 20, 30, 40))]


# ---- mot -------------------------------------------------------------------------------


def test_mot_round_trip(tmp_path: Path, annotations: Annotations) -> None:
    path = tmp_path / "walk.txt"
    write_annotations(path, annotations)
    back = read_annotations(path)
    assert len(back.records) == len(annotations.records)
    for want, got in zip(annotations.records, back.records):
        assert (got.frame, got.id, got.score) == (want.frame, want.id, want.score)
        assert_boxes_close(got.box, want.box, FLOAT_TOLERANCE, FLOAT_TOLERANCE)
        # MOT stores no lost flag, time, label or keyframe flag.
        assert (got.lost, got.time_s, got.label, got.keyframe) == (False, None, DEFAULT_LABEL, False)


def test_mot_is_one_based_in_frames_and_pixels(tmp_path: Path) -> None:
    record = BoxRecord(frame=0, id=7, box=Box(0.0, 4.5, 10.0, 20.0), score=0.25, lost=True)
    path = tmp_path / "r.txt"
    write_annotations(path, Annotations(VideoMeta("r"), [record]))
    assert path.read_text() == "1,7,1.0,5.5,10.0,20.0,0.25,-1,-1,-1\n"


@pytest.mark.filterwarnings("ignore:Operation with tuple is deprecated")  # motmetrics on pandas 3
def test_mot_loads_in_motmetrics(tmp_path: Path, annotations: Annotations) -> None:
    mm_io = pytest.importorskip("motmetrics.io")
    path = tmp_path / "walk.txt"
    write_annotations(path, annotations)
    table = mm_io.loadtxt(str(path), fmt="mot15-2D")
    assert len(table) == len(annotations.records)
    for r in annotations.records:
        row = table.loc[(r.frame + 1, r.id)]
        assert row["X"] == pytest.approx(r.box.x, abs=FLOAT_TOLERANCE)
        assert row["Y"] == pytest.approx(r.box.y, abs=FLOAT_TOLERANCE)
        assert (row["Width"], row["Height"]) == (r.box.w, r.box.h)
        assert row["Confidence"] == r.score


@pytest.mark.parametrize(
    ("line", "score"),
    [
        ("1 3 11 21 5 6", 1.0),
        ("1\t3\t11\t21\t5\t6\t0.5", 0.5),
        ("1,3,11,21,5,6,0,7,0.25", 0.0),
        ("1, 3, 11, 21, 5, 6, 0.75, -1, -1, -1", 0.75),
    ],
    ids=["6-columns-spaces", "7-columns-tabs", "9-columns-gt", "10-columns-comma-space"],
)
def test_mot_reads_every_column_layout(tmp_path: Path, line: str, score: float) -> None:
    path = tmp_path / "gt.txt"
    path.write_text(line + "\n\n")
    assert read_annotations(path).records == [BoxRecord(0, 3, Box(10, 20, 5, 6), score=score)]


def test_mot_needs_ids_from_one(tmp_path: Path) -> None:
    zero = Annotations(VideoMeta("z"), [BoxRecord(0, 0, Box(1, 1, 5, 5))])
    with pytest.raises(FormatError, match="ids >= 1"):
        write_annotations(tmp_path / "z.txt", zero)
    assert list(tmp_path.iterdir()) == []


# ---- coco ------------------------------------------------------------------------------


def test_coco_round_trip_is_exact(tmp_path: Path, annotations: Annotations) -> None:
    path = tmp_path / "walk.json"
    write_annotations(path, annotations)
    back = read_annotations(path)
    assert back.records == annotations.records
    assert back.video == annotations.video


def test_coco_loads_in_pycocotools(tmp_path: Path, annotations: Annotations) -> None:
    coco_module = pytest.importorskip("pycocotools.coco")
    path = tmp_path / "walk.json"
    write_annotations(path, annotations)
    coco = coco_module.COCO(str(path))
    assert len(coco.imgs) == FRAME_COUNT
    assert len(coco.anns) == len(annotations.records)
    assert sorted(c["name"] for c in coco.cats.values()) == ["car", "person"]
    want = by_key(annotations)
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.imgs[ann["image_id"]]
        record = want[(image["frame_index"], ann["track_id"])]
        assert ann["bbox"] == list(record.box.xywh())
        assert ann["area"] == record.box.w * record.box.h
        assert coco.cats[ann["category_id"]]["name"] == record.label
        assert image["frame_id"] == image["frame_index"]
        assert image["file_name"] == f"walk/{image['frame_index']:06d}.jpg"
        assert image["time_s"] == PTS[image["frame_index"]]


def test_coco_has_an_image_for_every_frame_even_without_boxes(tmp_path: Path) -> None:
    video = VideoMeta("v.mp4", WIDTH, HEIGHT, FPS, frame_count=4)
    path = tmp_path / "v.json"
    write_annotations(path, Annotations(video, [BoxRecord(2, 1, Box(1, 2, 3, 4))]))
    document = json.loads(path.read_text())
    assert [img["frame_index"] for img in document["images"]] == [0, 1, 2, 3]
    assert [img["id"] for img in document["images"]] == [1, 2, 3, 4]
    assert document["annotations"][0]["image_id"] == 3


# ---- cvat ------------------------------------------------------------------------------


def test_cvat_round_trip(tmp_path: Path, annotations: Annotations) -> None:
    path = tmp_path / "walk.xml"
    write_annotations(path, annotations)
    back = read_annotations(path)
    assert [(r.frame, r.id) for r in back.records] == [(r.frame, r.id) for r in annotations.records]
    for want, got in zip(annotations.records, back.records):
        assert_boxes_close(got.box, want.box, CVAT_CORNER_TOLERANCE, CVAT_SIZE_TOLERANCE)
        assert (got.score, got.lost, got.label, got.keyframe) == (want.score, want.lost, want.label, want.keyframe)
        assert got.time_s is None  # CVAT stores frame numbers, not times
    assert back.video == VideoMeta("walk.mp4", WIDTH, HEIGHT, None, FRAME_COUNT)


def test_cvat_xml_structure(tmp_path: Path, annotations: Annotations) -> None:
    path = tmp_path / "walk.xml"
    write_annotations(path, annotations)
    root = ET.parse(path).getroot()
    assert root.tag == "annotations"
    assert root.findtext("version") == "1.1"
    task = root.find("meta/task")
    assert task.findtext("size") == str(FRAME_COUNT)
    assert task.findtext("stop_frame") == str(FRAME_COUNT - 1)
    assert task.findtext("original_size/width") == str(WIDTH)
    assert task.findtext("original_size/height") == str(HEIGHT)
    assert [e.text for e in task.findall("labels/label/name")] == ["car", "person"]

    tracks = {t.get("id"): t for t in root.findall("track")}
    assert {k: t.get("label") for k, t in tracks.items()} == {"0": "person", "1": "car"}
    assert all(box.get("keyframe") == "1" for box in root.iter("box"))

    person = tracks["0"].findall("box")
    assert [b.get("frame") for b in person] == [str(f) for f in range(FRAME_COUNT)]
    assert all(b.get("outside") == "0" for b in person)  # the person stays to the last frame
    assert [b.get("occluded") for b in person].count("1") == len(PERSON_LOST)
    first = person[0]
    assert (first.get("xtl"), first.get("ytl"), first.get("xbr"), first.get("ybr")) == (
        "10.25",
        "20.50",
        "40.95",
        "60.80",
    )
    assert {a.get("name"): a.text for a in first.findall("attribute")} == {"score": "0.9", "manual": "true"}

    car = [(b.get("frame"), b.get("outside")) for b in tracks["1"].findall("box")]
    # Outside rows on the gap (frame 5) and on the frame after the car leaves (frame 8).
    assert car == [("2", "0"), ("3", "0"), ("4", "0"), ("5", "1"), ("6", "0"), ("7", "0"), ("8", "1")]


CVAT_EXPORT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><job><size>5</size><original_size><width>64</width><height>48</height></original_size>
  </job></meta>
  <track id="4" label="dog" source="manual">
    <box frame="0" outside="0" occluded="0" keyframe="1"
         xtl="1.00" ytl="2.00" xbr="11.00" ybr="22.00" z_order="0"/>
    <box frame="1" outside="0" occluded="1" keyframe="0"
         xtl="2.00" ytl="2.00" xbr="12.00" ybr="22.00" z_order="0"/>
    <box frame="2" outside="1" occluded="0" keyframe="1"
         xtl="2.00" ytl="2.00" xbr="12.00" ybr="22.00" z_order="0"/>
  </track>
</annotations>
"""


def test_cvat_reads_an_export_without_ibfp_attributes(tmp_path: Path) -> None:
    path = tmp_path / "task.xml"
    path.write_text(CVAT_EXPORT)
    back = read_annotations(path)
    assert back.records == [
        BoxRecord(0, 5, Box(1, 2, 10, 20), score=1.0, lost=False, label="dog", keyframe=True),
        BoxRecord(1, 5, Box(2, 2, 10, 20), score=1.0, lost=True, label="dog", keyframe=False),
    ]
    assert back.video == VideoMeta("task", 64, 48, None, 5)


# ---- labelstudio -----------------------------------------------------------------------


def test_labelstudio_pins_percent_and_one_based_frames(tmp_path: Path, annotations: Annotations) -> None:
    path = tmp_path / "walk.json"
    write_annotations(path, annotations, fmt="labelstudio")
    tasks = json.loads(path.read_text())
    assert len(tasks) == 1 and tasks[0]["data"] == {"video": "walk.mp4"}
    regions = {r["id"]: r for r in tasks[0]["annotations"][0]["result"]}
    assert set(regions) == {"1", "2"}
    person = regions["1"]
    assert (person["type"], person["from_name"], person["to_name"]) == ("videorectangle", "box", "video")
    assert person["value"]["labels"] == ["person"]
    assert person["value"]["framesCount"] == FRAME_COUNT
    assert person["value"]["duration"] == FRAME_COUNT / FPS

    sequence = person["value"]["sequence"]
    # Lost frames 4 and 5 are left out; the box before them and the last box are disabled.
    assert [s["frame"] for s in sequence] == [1, 2, 3, 4, 7, 8, 9, 10]
    assert [s["enabled"] for s in sequence] == [True, True, True, False, True, True, True, False]
    assert [s["time"] for s in sequence] == [PTS[f - 1] for f in [1, 2, 3, 4, 7, 8, 9, 10]]
    first = sequence[0]
    assert (first["x"], first["y"], first["width"], first["height"], first["rotation"]) == (
        100 * 10.25 / WIDTH,
        100 * 20.5 / HEIGHT,
        100 * 30.7 / WIDTH,
        100 * 40.3 / HEIGHT,
        0,
    )

    car = regions["2"]["value"]["sequence"]
    assert [(s["frame"], s["enabled"]) for s in car] == [(3, False), (5, False), (7, True), (8, False)]


def test_labelstudio_round_trip(tmp_path: Path, annotations: Annotations) -> None:
    path = tmp_path / "walk.json"
    write_annotations(path, annotations, fmt="labelstudio")
    back = read_annotations(path, fmt="labelstudio")
    kept = [r for r in annotations.records if not r.lost]
    assert [(r.frame, r.id) for r in back.records] == [(r.frame, r.id) for r in kept]
    for want, got in zip(kept, back.records):
        assert_boxes_close(got.box, want.box, FLOAT_TOLERANCE, FLOAT_TOLERANCE)
        assert (got.label, got.time_s) == (want.label, want.time_s)
        # Label Studio stores no score, lost flag or keyframe flag.
        assert (got.score, got.lost, got.keyframe) == (1.0, False, False)
    assert back.video.name == "walk.mp4"
    assert (back.video.width, back.video.height, back.video.frame_count) == (WIDTH, HEIGHT, FRAME_COUNT)
    assert back.video.fps == pytest.approx(FPS)


def test_labelstudio_needs_the_frame_size(tmp_path: Path, annotations: Annotations) -> None:
    no_size = Annotations(VideoMeta("walk.mp4", fps=FPS), annotations.records)
    with pytest.raises(FormatError, match="width, height"):
        write_annotations(tmp_path / "walk.json", no_size, fmt="labelstudio")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["coco", "labelstudio"])
def test_json_formats_accept_a_fractional_frame_rate(tmp_path: Path, annotations: Annotations, fmt: str) -> None:
    ntsc = Fraction(30000, 1001)
    video = dataclasses.replace(annotations.video, fps=ntsc)
    path = tmp_path / "ntsc.json"
    write_annotations(path, Annotations(video, annotations.records), fmt=fmt)
    assert read_annotations(path, fmt=fmt).video.fps == pytest.approx(float(ntsc))


# ---- registry and errors -----------------------------------------------------------------


def test_format_names() -> None:
    assert format_names() == ["csv", "mot", "coco", "cvat", "labelstudio"]


@pytest.mark.parametrize(
    ("filename", "name"), [("a.csv", "csv"), ("a.txt", "mot"), ("a.json", "coco"), ("a.xml", "cvat"), ("A.CSV", "csv")]
)
def test_resolve_format_by_extension(filename: str, name: str) -> None:
    assert resolve_format(Path(filename)).name == name


def test_resolve_format_by_name_beats_the_extension() -> None:
    assert resolve_format(Path("a.json"), "labelstudio").name == "labelstudio"
    assert resolve_format(Path("a.dat"), "mot").name == "mot"


def test_resolve_format_unknown_extension_names_the_choices() -> None:
    with pytest.raises(FormatError, match=r"'out\.dat'.*csv, mot, coco, cvat, labelstudio"):
        resolve_format(Path("out.dat"))


def test_resolve_format_unknown_name_names_the_choices() -> None:
    with pytest.raises(FormatError, match=r"unknown format 'yolo'; choose one of csv, mot"):
        resolve_format(Path("a.csv"), "yolo")


CSV_HEADER = "frame,time_s,id,label,x,y,w,h,score,lost,keyframe\n"


@pytest.mark.parametrize(
    ("filename", "fmt", "content", "message"),
    [
        ("a.csv", None, "", "empty file"),
        ("a.csv", None, "frame,id,x,y,w\n0,1,1,2,3\n", r"missing column\(s\) h"),
        ("a.csv", None, CSV_HEADER + "0,,1,object,abc,2,3,4,1.0,0,0\n", "line 2: x 'abc' is not a number"),
        ("a.csv", None, CSV_HEADER + "0,,1,object,1,2,3,4,1.0,0,0,9\n", "line 2: expected 11 fields"),
        ("a.csv", None, CSV_HEADER + "0,,1,object,1,2,3,4,1.0,maybe,0\n", "lost 'maybe' must be 0 or 1"),
        (
            "a.csv",
            None,
            CSV_HEADER + "0,,1,o,1,2,3,4,1,0,0\n0,,1,o,1,2,3,4,1,0,0\n",
            "object 1 has two boxes on frame 0",
        ),
        ("a.txt", None, "1,1,1,1,5\n", "line 1: 5 columns"),
        ("a.txt", None, "1,1,1,1,5,5\n2,1,1,x,5,5\n", "line 2: bb_top 'x' is not a number"),
        ("a.txt", None, "0,1,1,1,5,5\n", "frame 0 is below 1"),
        ("a.txt", None, "1,-1,1,1,5,5\n", "id -1 is below 1"),
        ("a.json", None, "{not json", "not valid JSON"),
        ("a.json", None, '{"images": []}', r"not a COCO file \(no annotations, categories\)"),
        (
            "a.json",
            None,
            '{"images": [{"id": 1, "frame_index": 0}], "categories": [{"id": 1, "name": "o"}],'
            ' "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "track_id": 1}]}',
            r"annotation 1: bbox \[1, 2, 3\] is not \[x, y, w, h\]",
        ),
        ("a.json", None, "[1, 2]", "a COCO file is a JSON object"),
        ("a.xml", None, "<annotations><track", "not valid XML"),
        ("a.xml", None, "<html/>", "not a CVAT file"),
        (
            "a.xml",
            None,
            '<annotations><track id="0" label="o"><box frame="0" outside="0" occluded="0" '
            'keyframe="1" xtl="a" ytl="0" xbr="5" ybr="5"/></track></annotations>',
            "xtl 'a' is not a number",
        ),
        (
            "a.json",
            "labelstudio",
            '[{"data": {"video": "v"}, "annotations": [{"result": [{"id": "1", '
            '"type": "videorectangle", "value": {"sequence": []}}]}]}]',
            "cannot be turned into pixels",
        ),
        ("a.json", "labelstudio", '[{"annotations": [7]}]', "not a valid labelstudio file"),
    ],
)
def test_malformed_files_raise_one_line_format_errors(
    tmp_path: Path, filename: str, fmt: str | None, content: str, message: str
) -> None:
    path = tmp_path / filename
    path.write_text(content)
    with pytest.raises(FormatError, match=message) as caught:
        read_annotations(path, fmt)
    assert "\n" not in str(caught.value)


def test_missing_file_raises_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="does not exist"):
        read_annotations(tmp_path / "nothing.csv")


def test_write_leaves_no_file_when_the_writer_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, annotations: Annotations
) -> None:
    def fail_midway(path: Path, annotations: Annotations) -> None:
        path.write_text("frame,time_s\n0,")
        raise RuntimeError("disk full")

    monkeypatch.setitem(FORMATS, "csv", dataclasses.replace(FORMATS["csv"], write=fail_midway))
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError, match="disk full"):
        write_annotations(target, annotations)
    assert list(tmp_path.iterdir()) == []

    target.write_text("previous results\n")
    with pytest.raises(RuntimeError):
        write_annotations(target, annotations)
    assert target.read_text() == "previous results\n"
    assert list(tmp_path.iterdir()) == [target]
