"""`ibfp export`: YOLO and COCO image datasets from a video and its boxes.

Ultralytics itself is not installed in the test environment (pip would replace this
project's torch with another build and add opencv-python beside the headless build), so
the YOLO folder is checked against Ultralytics's documented format instead: data.yaml
read by a YAML parser, every label line parsed field by field. The COCO files are loaded
with pycocotools.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import SMALL_SPEC
from pycocotools.coco import COCO
from typer.testing import CliRunner, Result

import ibfp_cli.dataset.export as dataset_export
from ibfp_cli.annotations import Annotations, BoxRecord, VideoMeta
from ibfp_cli.batch.summary import LOCK_NAME, SUMMARY_NAME
from ibfp_cli.boxes import Box
from ibfp_cli.cli import app
from ibfp_cli.dataset.export import ExportConfig, export_video
from ibfp_cli.dataset.split import SplitConfig, no_split_reason, unit_of, val_units
from ibfp_cli.formats import write_annotations
from ibfp_cli.media.synthetic import SyntheticSpec, write_synthetic_video

runner = CliRunner()

SPEC = SyntheticSpec(width=160, height=120, frames=300, object_size=(32, 24), seed=11)
"""The acceptance clip: 300 generated frames, small to keep the test quick."""
W, H = SPEC.width, SPEC.height
SEGMENT = 50
"""--segment-frames in these tests: 6 segments in 300 frames, one of them val at --val 0.2."""
UNSURE = {100, 101, 102, 103, 104}
"""Frames where the car's box scores 0.2, below the default --min-score 0.5."""
LOST = 200
"""The person's box is flagged lost there."""
KEYFRAME = 150
"""The car's box there scores 0.2 but was drawn by a person: never dropped."""
CAR_LAST, PERSON_FIRST, PERSON_LAST = 279, 30, 289
"""Frames 290..299 have no box at all: background images without a label file."""
OUTSIDE = 260
"""The person's box lies wholly left of the frame there: left out, the frame kept."""
PARTLY = range(250, 260)
"""The person's box sticks out of the frame's left edge there: clipped."""


def ibfp(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def _records(truth: np.ndarray) -> list[BoxRecord]:
    records = []
    for f, (x, y, w, h) in enumerate(truth):
        if f <= CAR_LAST:
            score = 0.2 if f in UNSURE or f == KEYFRAME else 0.9
            records.append(BoxRecord(f, 1, Box(x, y, w, h), score=score, label="car", keyframe=f == KEYFRAME))
        if PERSON_FIRST <= f <= PERSON_LAST:
            px = W - x - w  # the car's path mirrored left-right
            if f in PARTLY:
                px = -w / 2
            if f == OUTSIDE:
                px = -w - 5
            records.append(BoxRecord(f, 2, Box(px, y + 0.25, w, h), score=0.8, lost=f == LOST, label="person"))
    return records


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[BoxRecord]]:
    """The 300-frame video, its boxes.csv with two labelled objects, and those records."""
    folder = tmp_path_factory.mktemp("export")
    video = folder / "walk.mp4"
    records = _records(write_synthetic_video(video, SPEC))
    boxes = folder / "boxes.csv"
    write_annotations(boxes, Annotations(VideoMeta("walk"), records))
    return video, boxes, records


def _expected(records: list[BoxRecord], every: int = 1) -> dict[int, list[tuple[int, int, Box]]]:
    """Exported frames -> (class, track id, clipped box), computed here from the rule in --help."""
    frames: dict[int, list[tuple[int, int, Box]]] = {f: [] for f in range(0, SPEC.frames, every)}
    for f in UNSURE | {LOST}:
        frames.pop(f, None)
    for r in records:
        if r.frame in frames:
            clipped = r.box.clip(W, H)
            if clipped.w > 0 and clipped.h > 0:
                frames[r.frame].append((0 if r.label == "car" else 1, r.id, clipped))
    return frames


def _frame_of(name: str) -> int:
    match = re.fullmatch(r"walk_(\d{6})\.(jpg|png|txt)", name)
    assert match, name
    return int(match.group(1))


LABEL_LINE = re.compile(r"(\d+)( (?:0|1)\.\d{6}){4}")
"""Ultralytics's label line: class index, then x_center y_center width height in 0..1."""


def _parse_label_line(line: str) -> tuple[int, Box]:
    """A YOLO line back to a class and a pixel box, by the format's definition."""
    assert LABEL_LINE.fullmatch(line), line
    cls, *values = line.split()
    cx, cy, w, h = (float(v) for v in values)
    assert all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)), line
    return int(cls), Box.from_center(cx * W, cy * H, w * W, h * H)


def test_yolo_export_is_ultralytics_layout_with_exact_labels_and_a_segment_split(clip, tmp_path) -> None:
    video, boxes, records = clip
    out = tmp_path / "dataset"
    result = ibfp("export", video, boxes, "--to", "yolo", "--out", out, "--segment-frames", SEGMENT)
    assert result.exit_code == 0, result.output
    assert "(classes: 0 car, 1 person)" in result.stdout

    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val",
        "nc": 2,
        "names": {0: "car", 1: "person"},
    }
    expected = _expected(records)
    images = {side: sorted(p.name for p in (out / "images" / side).iterdir()) for side in ("train", "val")}
    frames = {side: {_frame_of(n) for n in names} for side, names in images.items()}
    assert len(images["train"]) + len(images["val"]) == len(expected) == SPEC.frames - len(UNSURE) - 1
    assert frames["train"] | frames["val"] == set(expected)
    assert not frames["train"] & frames["val"]
    # whole segments on each side: exactly one of the six (round(0.2 x 6)) is val
    val_segments = {f // SEGMENT for f in frames["val"]}
    assert len(val_segments) == 1
    assert not {f // SEGMENT for f in frames["train"]} & val_segments
    assert frames["val"] == {f for f in expected if f // SEGMENT in val_segments}

    lines_checked = 0
    for side, names in images.items():
        labels = out / "labels" / side
        assert sorted(p.name for p in labels.iterdir()) == sorted(
            n.replace(".jpg", ".txt") for n in names if expected[_frame_of(n)]
        )
        for name in names:
            frame = _frame_of(name)
            image = cv2.imread(str(out / "images" / side / name))
            assert image is not None and image.shape == (H, W, 3)
            if not expected[frame]:
                continue  # frames 290..299: no label file, as Ultralytics expects for background images
            lines = (labels / name.replace(".jpg", ".txt")).read_text().splitlines()
            assert len(lines) == len(expected[frame])
            for line, (cls, _, box) in zip(lines, expected[frame], strict=True):
                got_cls, got = _parse_label_line(line)
                assert got_cls == cls
                # the round trip BOXES -> label line -> pixels, within half a pixel
                assert np.allclose(got.xywh(), box.xywh(), atol=0.5), (frame, line, box)
                lines_checked += 1
    assert lines_checked == sum(len(v) for v in expected.values())
    assert f"{len(UNSURE) + 1} doubtful frames dropped" in result.stdout
    assert "yolo train data=" in result.stdout


def test_coco_export_loads_in_pycocotools_with_tracks_and_unique_ids(clip, tmp_path) -> None:
    video, boxes, records = clip
    out = tmp_path / "coco"
    every = 5
    result = ibfp(
        "export", video, boxes, "--to", "coco", "--out", out, "--every", every, "--segment-frames", SEGMENT,
        "--image-format", "png",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(classes: 1 car, 2 person)" in result.stdout  # the ids in the files (issue 24.7)
    expected = _expected(records, every)
    seen_frames: set[int] = set()
    for side in ("train", "val"):
        coco = COCO(str(out / "annotations" / f"instances_{side}.json"))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["car", "person"]
        assert sorted(coco.getCatIds()) == [1, 2]
        ann_ids = [a["id"] for a in coco.dataset["annotations"]]
        assert len(ann_ids) == len(set(ann_ids))
        for image in coco.dataset["images"]:
            frame = image["frame_index"]
            assert frame % every == 0 and frame not in seen_frames
            seen_frames.add(frame)
            assert image["file_name"] == f"walk_{frame:06d}.png"
            assert (image["width"], image["height"]) == (W, H)
            assert (out / "images" / side / image["file_name"]).is_file()
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
            got = sorted((a["category_id"] - 1, a["track_id"], tuple(a["bbox"])) for a in anns)
            want = sorted((cls, tid, box.xywh()) for cls, tid, box in expected[frame])
            assert got == want
    assert seen_frames == set(expected)
    assert not (out / "labels").exists() and not (out / "data.yaml").exists()


def test_every_keeps_the_frame_index_in_the_file_name(clip, tmp_path) -> None:
    video, boxes, _ = clip
    out = tmp_path / "every"
    result = export_video(video, boxes, out, ExportConfig(every=7, split=SplitConfig(val=0)))
    names = sorted(p.name for p in (out / "images" / "train").iterdir())
    wanted = [f for f in range(0, SPEC.frames, 7) if f not in UNSURE and f != LOST]
    assert [_frame_of(n) for n in names] == wanted
    assert result.images("train") == len(wanted) and result.images("val") == 0
    assert not (out / "images" / "val").exists()
    assert yaml.safe_load((out / "data.yaml").read_text())["val"] == "images/train"


def test_min_score_zero_keeps_unsure_boxes_but_never_lost_ones(clip, tmp_path) -> None:
    video, boxes, _ = clip
    result = export_video(video, boxes, tmp_path / "all", ExportConfig(min_score=0.0, split=SplitConfig(val=0)))
    assert result.videos[0].dropped == 1  # only the lost frame
    assert result.images("train") == SPEC.frames - 1


def test_split_is_seeded_stable_and_never_splits_a_unit() -> None:
    config = SplitConfig(val=0.25, by="segment", segment_frames=10, seed=3)
    units = [unit_of(v, f, config) for v in ("a", "b", "c") for f in range(100)]
    first = val_units(units, config)
    assert first == val_units(list(reversed(units)), config)  # order of frames does not matter
    assert len(first) == round(0.25 * 30)
    others = {val_units(units, SplitConfig(val=0.25, by="segment", segment_frames=10, seed=s)) for s in range(5)}
    assert len(others) > 1  # the seed changes which units
    by_video = SplitConfig(val=0.5, by="video")
    assert {unit_of("a", f, by_video) for f in range(1000)} == {("a", 0)}
    assert val_units([("a", 0)], by_video) == frozenset()  # one unit: all of it is train
    assert "at least 2 videos" in no_split_reason(by_video) and "--split-by segment" in no_split_reason(by_video)


def test_failed_export_leaves_nothing_behind(clip, tmp_path, monkeypatch) -> None:
    video, boxes, _ = clip
    calls = []

    def failing_write(path: Path, image: np.ndarray, config: ExportConfig) -> None:
        calls.append(path)
        if len(calls) == 40:
            raise KeyboardInterrupt  # as Ctrl-C part way through
        real_write(path, image, config)

    real_write = dataset_export._write_image
    monkeypatch.setattr(dataset_export, "_write_image", failing_write)
    with pytest.raises(KeyboardInterrupt):
        export_video(video, boxes, tmp_path / "dataset", ExportConfig(threads=2, split=SplitConfig(segment_frames=50)))
    assert len(calls) >= 40
    assert list(tmp_path.iterdir()) == []


def test_export_errors_are_one_line(clip, tmp_path) -> None:
    video, boxes, records = clip
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    result = ibfp("export", video, boxes, "--to", "yolo", "--out", tmp_path / "taken", "--segment-frames", SEGMENT)
    assert result.exit_code == 1 and "already exists" in result.stderr
    beyond = tmp_path / "beyond.csv"
    write_annotations(beyond, Annotations(VideoMeta("walk"), [BoxRecord(SPEC.frames, 1, Box(1, 1, 5, 5))]))
    result = ibfp("export", video, beyond, "--to", "coco", "--out", tmp_path / "two", "--val", 0)
    assert result.exit_code == 1 and f"frame {SPEC.frames}" in result.stderr
    unsure = tmp_path / "unsure.csv"
    write_annotations(
        unsure, Annotations(VideoMeta("walk"), [BoxRecord(f, 1, Box(1, 1, 5, 5), 0.1) for f in range(SPEC.frames)])
    )
    result = ibfp("export", video, unsure, "--to", "yolo", "--out", tmp_path / "three", "--val", 0)
    assert result.exit_code == 1 and "no frame left to export" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beyond.csv", "taken", "unsure.csv"]


@pytest.mark.parametrize("to", ["yolo", "coco"])
def test_a_short_clip_exports_with_only_the_required_arguments(small_video, tmp_path, to: str) -> None:
    """Issue 24.5: one clip shorter than a segment cannot be split; everything goes to train,
    with one warning line saying so and how to get a split."""
    video, truth = small_video
    boxes = tmp_path / "boxes.csv"
    records = [BoxRecord(f, 1, Box(*row), score=0.9) for f, row in enumerate(truth)]
    write_annotations(boxes, Annotations(VideoMeta("small"), records))
    out = tmp_path / "dataset"
    result = ibfp("export", video, boxes, "--to", to, "--out", out)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]  # the rest: progress bars
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("warning: no validation split was possible: --val 0.2 needs at least 2 segments")
    assert "--segment-frames" in warnings[0] and "everything is in train" in warnings[0]
    assert f"wrote {len(truth)} train and 0 val images" in result.stdout
    assert len(list((out / "images" / "train").iterdir())) == len(truth) and not (out / "images" / "val").exists()
    if to == "yolo":
        assert yaml.safe_load((out / "data.yaml").read_text())["val"] == "images/train"
    else:
        assert sorted(p.name for p in (out / "annotations").iterdir()) == ["instances_train.json"]
    by_video = ibfp("export", video, boxes, "--to", to, "--out", tmp_path / "by_video", "--split-by", "video")
    assert by_video.exit_code == 0, by_video.output
    assert "at least 2 videos" in by_video.stderr and "--split-by segment" in by_video.stderr
    quiet = ibfp("export", video, boxes, "--to", to, "--out", tmp_path / "none", "--val", 0)
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr


def test_batch_export_splits_by_video_and_reports_a_video_without_boxes_file(small_video, tmp_path) -> None:
    video, truth = small_video
    videos, boxes_dir = tmp_path / "videos", tmp_path / "boxes"
    videos.mkdir()
    boxes_dir.mkdir()
    for name in ("a", "b"):
        shutil.copy(video, videos / f"{name}.mp4")
        records = [BoxRecord(f, 1, Box(*row), score=0.9, label=name) for f, row in enumerate(truth)]
        write_annotations(boxes_dir / f"{name}.csv", Annotations(VideoMeta(name), records))
    shutil.copy(boxes_dir / "a.csv", boxes_dir / "missing.csv")
    out = tmp_path / "dataset"
    result = ibfp("export", "--batch", videos, boxes_dir, "--to", "yolo", "--out", out, "--split-by", "video")
    assert result.exit_code == 1, result.output  # one failed, the others were exported
    assert "missing" in result.stdout and "failed" in result.stdout
    sides = {side: {p.name.split("_")[0] for p in (out / "images" / side).iterdir()} for side in ("train", "val")}
    assert sorted([*sides["train"], *sides["val"]]) == ["a", "b"]  # each video whole on one side
    assert len(list((out / "images" / "train").iterdir())) == len(truth)
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "a", 1: "b"}


def test_batch_export_takes_a_folder_ibfp_batch_wrote(tmp_path) -> None:
    """Issue 24.2: batch.csv, its lock and the previews in a batch's --out-dir are not annotation files."""
    videos, boxes_dir = tmp_path / "videos", tmp_path / "boxes"
    videos.mkdir()
    rows = ["video,frame,x,y,w,h"]
    for seed, name in enumerate(("a.mp4", "b.mp4"), start=1):
        truth = write_synthetic_video(videos / name, replace(SMALL_SPEC, seed=seed))
        rows.append(f"{name},0,{','.join(f'{v:g}' for v in truth[0])}")
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("\n".join(rows) + "\n")
    batch = ibfp("batch", videos, "--seeds", seeds, "--out-dir", boxes_dir, "--render")
    assert batch.exit_code == 0, batch.output
    assert {SUMMARY_NAME, LOCK_NAME, "a.preview.mp4"} <= {p.name for p in boxes_dir.iterdir()}

    out = tmp_path / "dataset"
    result = ibfp("export", "--batch", videos, boxes_dir, "--to", "coco", "--out", out, "--split-by", "video")
    assert result.exit_code == 0, result.output
    assert "failed" not in result.stdout and SUMMARY_NAME not in result.stdout
    images = [p.name for side in ("train", "val") for p in (out / "images" / side).iterdir()]
    assert sorted({name.split("_")[0] for name in images}) == ["a", "b"]
    assert len(images) == 2 * SMALL_SPEC.frames


def test_yolo_dataset_loads_in_ultralytics(clip, tmp_path, monkeypatch) -> None:
    """Ultralytics's own dataset check and loader, where it is installed (not in CI: see the top)."""
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "config"))  # its settings file, not in $HOME
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    pytest.importorskip("ultralytics")
    from ultralytics.cfg import get_cfg
    from ultralytics.data import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    video, boxes, records = clip
    out = tmp_path / "dataset"
    export_video(video, boxes, out, ExportConfig(split=SplitConfig(segment_frames=SEGMENT)))
    data = check_det_dataset(str(out / "data.yaml"))
    assert data["nc"] == 2 and data["names"] == {0: "car", 1: "person"}
    expected = _expected(records)
    loaded_images = loaded_boxes = 0
    for side in ("train", "val"):
        dataset = YOLODataset(img_path=data[side], data=data, task="detect", augment=False, hyp=get_cfg())
        labels = dataset.get_labels()
        loaded_images += len(labels)
        loaded_boxes += sum(len(label["cls"]) for label in labels)
    assert loaded_images == len(expected)
    assert loaded_boxes == sum(len(v) for v in expected.values())
