"""The `ibfp` command line end to end: outputs, exit codes and one-line errors."""

from __future__ import annotations

import errno
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import motmetrics
import numpy as np
import pandas as pd
import pytest
from conftest import REPO_ROOT
from pycocotools.coco import COCO
from typer.testing import CliRunner, Result

from ibfp_cli.boxes import ious
from ibfp_cli.cli import app
from ibfp_cli.cli.common import EXIT_INTERRUPTED
from ibfp_cli.formats import read_annotations
from ibfp_cli.media.synthetic import SyntheticSpec, write_synthetic_video
from ibfp_cli.media.video import probe
from ibfp_cli.tracking import registry
from ibfp_cli.tracking.contract import TrackerOutput
from ibfp_cli.tracking.opencv_trackers import MODELS_ENV

ACCEPTANCE_SPEC = SyntheticSpec(width=640, height=480, frames=300, object_size=(40, 30))
"""The issue's acceptance clip: 300 frames of 640x480 (a small object keeps KCF quick)."""
REAL_SEQUENCE = "davis16_kite-surf"
"""A short real clip KCF follows well (AUC 0.74 in shared/data/sot/PEERS.md)."""
REAL_MIN_MEAN_IOU = 0.3
"""A sanity bound far below KCF's measured accuracy on that clip."""

runner = CliRunner()


def ibfp(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def box_text(row: np.ndarray) -> str:
    return ",".join(f"{v:g}" for v in row)


def assert_clean_failure(result: Result, cause: str, folder: Path, before: set[Path]) -> None:
    """Non-zero exit, one `error:` line naming the cause, no traceback, no file left behind."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: ") and cause in errors[0]
    assert "Traceback" not in result.output
    assert set(folder.iterdir()) == before


# ---- track -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["boxes.csv", "boxes.txt", "boxes.json"])
def test_track_writes_one_box_per_frame(small_video, tmp_path, name: str) -> None:
    video, truth = small_video
    out = tmp_path / name
    result = ibfp("track", video, "--box", box_text(truth[0]), "--out", out, "--tracker", "kcf")
    assert result.exit_code == 0, result.output
    annotations = read_annotations(out)
    assert [r.frame for r in annotations.records] == list(range(len(truth)))
    assert annotations.ids() == [1]
    assert f"wrote {len(truth)} boxes of 1 object to" in result.stdout


def test_track_several_objects_keeps_their_ids_and_labels(small_video, tmp_path) -> None:
    video, truth = small_video
    out = tmp_path / "boxes.csv"
    result = ibfp(
        "track",
        video,
        "--box",
        box_text(truth[0]),
        "--box",
        "100,80,30,30",
        "--label",
        "car",
        "--label",
        "sign",
        "--out",
        out,
        "--tracker",
        "kcf",
    )
    assert result.exit_code == 0, result.output
    annotations = read_annotations(out)
    assert annotations.ids() == [1, 2]
    assert annotations.labels() == {1: "car", 2: "sign"}
    assert len(annotations.track(1)) == len(annotations.track(2)) == len(truth)


def test_track_from_later_frame_with_xyxy_box_and_own_id(small_video, tmp_path) -> None:
    video, truth = small_video
    x, y, w, h = truth[10]
    out = tmp_path / "boxes.csv"
    result = ibfp(
        "track",
        video,
        "--box",
        f"{x},{y},{x + w},{y + h}",
        "--box-format",
        "xyxy",
        "--frame",
        10,
        "--id",
        5,
        "--out",
        out,
        "--tracker",
        "kcf",
    )
    assert result.exit_code == 0, result.output
    records = read_annotations(out).records
    assert [r.frame for r in records] == list(range(10, len(truth)))
    assert {r.id for r in records} == {5}
    assert records[0].box.xywh() == pytest.approx(tuple(truth[10]))


def test_track_render_writes_preview(small_video, tmp_path) -> None:
    video, truth = small_video
    result = ibfp(
        "track",
        video,
        "--box",
        box_text(truth[0]),
        "--out",
        tmp_path / "b.csv",
        "--tracker",
        "kcf",
        "--render",
        tmp_path / "preview.mp4",
    )
    assert result.exit_code == 0, result.output
    assert probe(tmp_path / "preview.mp4").frame_count == len(truth)


@pytest.fixture(scope="module")
def acceptance_video(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("acceptance") / "clip.mp4"
    return path, write_synthetic_video(path, ACCEPTANCE_SPEC)


@pytest.mark.slow
def test_acceptance_300_frames_in_three_formats_load_in_their_tools(acceptance_video, tmp_path):
    video, truth = acceptance_video
    frames = ACCEPTANCE_SPEC.frames
    for name in ("boxes.csv", "boxes.txt", "boxes.json"):
        result = ibfp("track", video, "--box", box_text(truth[0]), "--out", tmp_path / name, "--tracker", "kcf")
        assert result.exit_code == 0, result.output
        assert len(read_annotations(tmp_path / name).records) == frames
    boxes = np.array([r.box.xywh() for r in read_annotations(tmp_path / "boxes.csv").records])

    mot = motmetrics.io.loadtxt(str(tmp_path / "boxes.txt"), fmt="mot15-2D")
    assert len(mot) == frames
    assert mot.index.get_level_values("FrameId").tolist() == list(range(1, frames + 1))
    np.testing.assert_allclose(mot[["X", "Y", "Width", "Height"]].to_numpy(), boxes, atol=1e-6)

    coco = COCO(str(tmp_path / "boxes.json"))
    assert len(coco.getImgIds()) == frames
    annotations = coco.loadAnns(coco.getAnnIds())
    assert len(annotations) == frames
    by_frame = sorted(annotations, key=lambda a: coco.imgs[a["image_id"]]["frame_index"])
    np.testing.assert_allclose([a["bbox"] for a in by_frame], boxes, atol=1e-6)

    result = ibfp("render", video, tmp_path / "boxes.csv", "--out", tmp_path / "preview.mp4")
    assert result.exit_code == 0, result.output
    assert probe(tmp_path / "preview.mp4").frame_count == frames


# ---- bad input -------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path, small_video) -> tuple[Path, Path, str]:
    """A folder holding a copy of the small video; returns it, the copy and a good box."""
    video, truth = small_video
    copy = tmp_path / "clip.mp4"
    copy.write_bytes(video.read_bytes())
    return tmp_path, copy, box_text(truth[0])


def test_missing_video(workdir) -> None:
    folder, _, box = workdir
    before = set(folder.iterdir())
    result = ibfp("track", folder / "nope.mp4", "--box", box, "--out", folder / "b.csv", "--tracker", "kcf")
    assert_clean_failure(result, "does not exist", folder, before)


def test_unreadable_video(workdir) -> None:
    folder, _, box = workdir
    text = folder / "notes.mp4"
    text.write_text("this is not a video\n")
    before = set(folder.iterdir())
    result = ibfp("track", text, "--box", box, "--out", folder / "b.csv", "--tracker", "kcf")
    assert_clean_failure(result, "not a video", folder, before)


@pytest.mark.parametrize(
    ("extra", "cause"),
    [
        (["--box", "500,400,20,20"], "outside the 160x120 frame"),
        (["--box", "1,2,3"], "four numbers"),
        (["--box", "10,10,0,5"], "no area"),
        (["--box", "10,10,20,20", "--frame", "40"], "0..39"),
        (["--box", "10,10,20,20", "--id", "1", "--id", "2"], "one --id per --box"),
        (["--box", "10,10,20,20", "--box", "30,30,20,20", "--id", "3", "--id", "3"], "id 3"),
        (["--box", "10,10,20,20", "--format", "xyz"], "unknown format 'xyz'"),
        (["--box", "10,10,20,20", "--tracker", "nosuch"], "unknown tracker 'nosuch'"),
    ],
)
def test_bad_track_arguments(workdir, extra: list[str], cause: str) -> None:
    folder, video, _ = workdir
    before = set(folder.iterdir())
    args = ["--tracker", "kcf", *extra] if "--tracker" not in extra else extra
    result = ibfp("track", video, "--out", folder / "b.csv", *args)
    assert_clean_failure(result, cause, folder, before)


def test_unknown_output_extension(workdir) -> None:
    folder, video, box = workdir
    before = set(folder.iterdir())
    result = ibfp("track", video, "--box", box, "--out", folder / "b.boxes", "--tracker", "kcf")
    assert_clean_failure(result, "extension", folder, before)


def test_missing_output_folder(workdir) -> None:
    folder, video, box = workdir
    before = set(folder.iterdir())
    out = folder / "missing" / "b.csv"
    result = ibfp("track", video, "--box", box, "--out", out, "--tracker", "kcf")
    assert_clean_failure(result, "does not exist", folder, before)


def test_unwritable_output_folder(workdir, monkeypatch) -> None:
    folder, video, box = workdir
    locked = folder / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root ignores the mode: refuse as the OS would for others
        real_mkstemp = tempfile.mkstemp

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == locked:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    before = set(folder.iterdir())
    try:
        result = ibfp("track", video, "--box", box, "--out", locked / "b.csv", "--tracker", "kcf")
    finally:
        locked.chmod(0o700)
    assert_clean_failure(result, "Permission denied", folder, before)
    assert list(locked.iterdir()) == []


def test_interrupted_track_exits_130_and_leaves_nothing(workdir, monkeypatch) -> None:
    folder, video, box = workdir

    class Interrupting:
        name = "interrupting"

        def __init__(self) -> None:
            self.updates = 0

        def init(self, frame, box) -> None:
            self.box = box

        def update(self, frame) -> TrackerOutput:
            self.updates += 1
            if self.updates == 5:
                raise KeyboardInterrupt
            return TrackerOutput(self.box, 1.0)

    monkeypatch.setitem(registry._REGISTRY, "interrupting", (lambda **_: Interrupting(), "test"))
    before = set(folder.iterdir())
    for out in ("b.csv", "b.txt"):
        result = ibfp("track", video, "--box", box, "--out", folder / out, "--tracker", "interrupting")
        assert result.exit_code == EXIT_INTERRUPTED
        assert "interrupted" in result.stderr and "Traceback" not in result.output
    assert set(folder.iterdir()) == before


def test_render_with_malformed_boxes_file(workdir) -> None:
    folder, video, _ = workdir
    boxes = folder / "boxes.csv"
    boxes.write_text("frame,x\n1,2\n")
    before = set(folder.iterdir())
    result = ibfp("render", video, boxes, "--out", folder / "preview.mp4")
    assert_clean_failure(result, "boxes.csv", folder, before)


# ---- batch -----------------------------------------------------------------------------------


@pytest.fixture
def batch_folder(tmp_path, small_video) -> tuple[Path, Path]:
    """Videos a.mp4, b.mp4 and an unseeded c.mp4, and seeds for a, b and a missing video."""
    video, truth = small_video
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (folder / name).write_bytes(video.read_bytes())
    seeds = tmp_path / "seeds.csv"
    seeds.write_text(
        "video,frame,x,y,w,h,label\n"
        f"a.mp4,0,{box_text(truth[0])},car\n"
        f"b,5,{box_text(truth[5])},\n"
        f"missing.mp4,0,{box_text(truth[0])},car\n"
    )
    return folder, seeds


def test_batch_reports_failure_and_resumes(batch_folder, tmp_path) -> None:
    folder, seeds = batch_folder
    out_dir = tmp_path / "out"
    result = ibfp("batch", folder, "--seeds", seeds, "--out-dir", out_dir, "--format", "mot", "--tracker", "kcf")
    assert result.exit_code == 1
    assert sorted(p.name for p in out_dir.iterdir()) == [".batch.csv.lock", "a.txt", "b.txt", "batch.csv"]
    assert len(read_annotations(out_dir / "b.txt").records) == probe(folder / "b.mp4").frame_count - 5
    assert "missing.mp4" in result.stdout and "failed" in result.stdout
    assert "no seeds" in result.stdout and "Traceback" not in result.output

    mtimes = {p: p.stat().st_mtime_ns for p in out_dir.glob("*.txt")}
    again = ibfp("batch", folder, "--seeds", seeds, "--out-dir", out_dir, "--format", "mot", "--tracker", "kcf")
    assert again.exit_code == 1
    assert {p: p.stat().st_mtime_ns for p in out_dir.glob("*.txt")} == mtimes
    assert again.stdout.count("already exists") == 2


def test_batch_shards_together_do_the_whole_batch(batch_folder, tmp_path) -> None:
    folder, seeds = batch_folder
    out_dir = tmp_path / "out"
    shards = [
        ibfp("batch", folder, "--seeds", seeds, "--out-dir", out_dir, "--tracker", "kcf", "--shard", f"{k}/3")
        for k in (1, 2, 3)
    ]
    # sorted names a.mp4, b.mp4 (seeded as b), missing.mp4: one per shard; only the missing video's shard fails
    assert [r.exit_code for r in shards] == [0, 0, 1]
    assert "batch, shard 2/3" in shards[1].stdout
    assert sorted(p.name for p in out_dir.glob("*.csv")) == ["a.csv", "b.csv", "batch.csv"]
    rows = (out_dir / "batch.csv").read_text().splitlines()
    assert rows[0] == "video,status,frames,objects,seconds,error"
    assert [r.split(",")[:2] for r in rows[1:]] == [
        ["a.mp4", "done"],
        ["b.mp4", "done"],
        ["c.mp4", "skipped"],
        ["missing.mp4", "failed"],
    ]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--shard", "3/2", "need 1 <= K <= N"),
        ("--shard", "1of2", "not K/N"),
        ("--gpus-per-worker", "0", "not more than 0"),
        ("--workers", "0", "--workers"),
    ],
)
def test_batch_usage_mistakes_are_one_line_with_exit_2(batch_folder, tmp_path, option, value, message) -> None:
    folder, seeds = batch_folder
    result = ibfp("batch", folder, "--seeds", seeds, "--out-dir", tmp_path / "out", option, value)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_batch_with_malformed_seeds_file(batch_folder, tmp_path) -> None:
    folder, seeds = batch_folder
    seeds.write_text("video,frame,x,y,w,h,colour\na.mp4,0,1,2,3,4,red\n")
    before = set(tmp_path.iterdir())
    result = ibfp("batch", folder, "--seeds", seeds, "--out-dir", tmp_path / "out", "--tracker", "kcf")
    assert_clean_failure(result, "unknown column 'colour'", tmp_path, before)


# ---- other commands --------------------------------------------------------------------------


def test_info_shows_exact_frame_count(small_video) -> None:
    video, truth = small_video
    result = ibfp("info", video)
    assert result.exit_code == 0, result.output
    assert "160x120" in result.stdout and f"{len(truth)} (0..{len(truth) - 1})" in result.stdout


def test_trackers_lists_registry_with_availability(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("IBFP_OPENCV_MODELS", str(tmp_path))
    result = ibfp("trackers")
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert {"ibfp", "mil", "kcf", "csrt", "nano", "vit"} <= set(lines)
    assert "yes" in lines["kcf"] and "no" in lines["nano"]


@pytest.mark.slow
def test_demo_prints_commands_that_reproduce_its_boxes(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = ibfp("demo", "--out", "demo", "--tracker", "kcf")
    assert result.exit_code == 0, result.output
    demo = tmp_path / "demo"
    assert sorted(p.name for p in demo.iterdir()) == ["boxes.csv", "demo.mp4", "preview.mp4"]
    assert probe(demo / "preview.mp4").frame_count == probe(demo / "demo.mp4").frame_count
    track_line = next(line.strip() for line in result.stdout.splitlines() if "ibfp track" in line)
    args = shlex.split(track_line)[1:]
    args[args.index("--out") + 1] = "again.csv"
    assert ibfp(*args).exit_code == 0
    first, second = read_annotations(demo / "boxes.csv"), read_annotations("again.csv")
    assert [r.box for r in first.records] == [r.box for r in second.records]
    assert "mean IoU" in result.stdout


def test_version_and_help_in_a_real_process() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    module = subprocess.run(
        [sys.executable, "-m", "ibfp_cli", "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert module.returncode == 0 and "track" in module.stdout and "batch" in module.stdout
    script = Path(sys.executable).parent / "ibfp"
    if script.exists():
        installed = subprocess.run([script, "--version"], capture_output=True, text=True, check=False)
        assert installed.returncode == 0 and installed.stdout.startswith("ibfp ")


@pytest.mark.parametrize(
    "args, cause",
    [
        (["track", "v.mp4", "--box", "1,2,3,4", "--out", "b.csv", "--device", "gpu"], "'--device'"),
        (["track", "v.mp4", "--box", "1,2,3,4", "--out", "b.csv", "--frame", "abc"], "'--frame'"),
        (["track", "v.mp4", "--box", "1,2,3,4"], "Missing option '--out'"),
        (["track", "--box", "1,2,3,4", "--out", "b.csv"], "Missing argument 'VIDEO'"),
        (["render", "v.mp4", "b.csv", "--bogus"], "No such option: --bogus"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(tmp_path, args: list[str], cause: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "ibfp_cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path, check=False
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and cause in errors[0], result.stderr
    assert "--help" in errors[0] and not result.stdout
    assert list(tmp_path.iterdir()) == []


def test_no_arguments_prints_the_help() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-m", "ibfp_cli"], capture_output=True, text=True, env=env, check=False)
    assert "Usage: ibfp" in result.stdout + result.stderr and "track" in result.stdout + result.stderr
    assert "error:" not in result.stderr


@pytest.mark.real_data
def test_track_real_sequence(shared_data, tmp_path) -> None:
    video = shared_data / f"{REAL_SEQUENCE}.mp4"
    truth = np.loadtxt(shared_data / f"{REAL_SEQUENCE}.gt.csv", delimiter=",", skiprows=1)
    out = tmp_path / "boxes.csv"
    result = ibfp("track", video, "--box", box_text(truth[0, 1:]), "--out", out, "--tracker", "kcf")
    assert result.exit_code == 0, result.output
    records = read_annotations(out).records
    assert len(records) == probe(video).frame_count
    tracked = np.array([r.box.xywh() for r in records])
    present = ~np.isnan(truth[:, 1:]).any(axis=1)
    present[0] = False
    frames = truth[present, 0].astype(int)
    assert ious(tracked[frames], truth[present, 1:]).mean() > REAL_MIN_MEAN_IOU


def test_scripting_api_loads_lazily() -> None:
    code = (
        "import sys, ibfp_cli\n"
        "assert 'torch' not in sys.modules and 'cv2' not in sys.modules\n"
        "from ibfp_cli import Box, Seed, parse_box, track_video, create_tracker, read_annotations\n"
        "assert parse_box('1,2,3,4') == Box(1, 2, 3, 4) and Seed(Box(1, 2, 3, 4)).id == 1\n"
        "assert 'torch' not in sys.modules\n"
        "from ibfp_cli import Tracker\n"
        "assert Tracker.__name__ == 'IBFPTracker' and set(ibfp_cli.__all__) <= set(dir(ibfp_cli))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr


def test_eval_scores_trackers_and_reports_unavailable_ones(small_video, tmp_path, monkeypatch):
    video, truth = small_video
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "clip.mp4").write_bytes(video.read_bytes())
    rows = "".join(f"{i},{box_text(row)}\n" for i, row in enumerate(truth))
    (dataset / "clip.gt.csv").write_text("frame,x,y,w,h\n" + rows)
    empty_models = tmp_path / "models"
    empty_models.mkdir()
    monkeypatch.delenv(MODELS_ENV, raising=False)  # the command sets it; restored afterwards
    result = ibfp(
        "eval", dataset, "--tracker", "kcf,nano", "--out", tmp_path / "report",
        "--workers", 1, "--opencv-models", empty_models,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "kcf" in rows
    assert "nano" in result.stdout and "unavailable" in result.stdout
    assert (tmp_path / "report").is_dir()


def _dataset_of(small_video: tuple[Path, np.ndarray], dataset: Path, names: list[str]) -> Path:
    """A dataset folder whose sequences `names` are all the small video with its true boxes."""
    video, truth = small_video
    dataset.mkdir()
    rows = "".join(f"{i},{box_text(row)}\n" for i, row in enumerate(truth))
    for name in names:
        (dataset / f"{name}.mp4").write_bytes(video.read_bytes())
        (dataset / f"{name}.gt.csv").write_text("frame,x,y,w,h\n" + rows)
    return dataset


def test_eval_val_split_with_sequences_runs_those_and_refuses_names_outside_the_split(small_video, tmp_path):
    dataset = _dataset_of(small_video, tmp_path / "dataset", ["vot_bag", "training_clip"])  # vot_bag: validation
    report = tmp_path / "report"
    result = ibfp(
        "eval", dataset, "--tracker", "kcf", "--out", report, "--workers", 1, "--val-split", "--sequences", "vot_bag"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(report / "per_sequence.csv")
    assert set(scored.sequence) == {"vot_bag"}
    refused = ibfp(
        "eval", dataset, "--tracker", "kcf", "--out", tmp_path / "other", "--val-split",
        "--sequences", "vot_bag,training_clip",
    )  # fmt: skip
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        "error: --val-split: training_clip not in the validation split (ibfp_cli/train/val_split.txt)"
    ]
    assert not (tmp_path / "other").exists()


def test_eval_tuning_split_runs_every_third_training_sequence_and_no_validation_one(small_video, tmp_path):
    training = ["clip_a", "clip_b", "clip_c", "clip_d"]
    dataset = _dataset_of(small_video, tmp_path / "dataset", ["vot_bag", *training])  # vot_bag: validation
    report = tmp_path / "report"
    result = ibfp("eval", dataset, "--tracker", "kcf", "--out", report, "--workers", 1, "--tuning-split")
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(report / "per_sequence.csv").sequence) == {"clip_a", "clip_d"}
    refused = ibfp(
        "eval", dataset, "--tracker", "kcf", "--out", tmp_path / "other", "--tuning-split", "--sequences", "clip_b"
    )
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        f"error: --tuning-split: clip_b not in the tuning split of {dataset}"
    ]
    both = ibfp("eval", dataset, "--tracker", "kcf", "--out", tmp_path / "other", "--tuning-split", "--val-split")
    assert both.exit_code == 1
    assert both.output.strip().splitlines() == ["error: --val-split and --tuning-split: give one of them"]
    for name in training:
        (dataset / f"{name}.gt.csv").unlink()
    empty = ibfp("eval", dataset, "--tracker", "kcf", "--out", tmp_path / "other", "--tuning-split")
    assert empty.exit_code == 1
    assert empty.output.strip().splitlines() == [
        f"error: --tuning-split: {dataset} has no sequence outside the validation split"
    ]
    assert not (tmp_path / "other").exists()


# ---- retrack ---------------------------------------------------------------------------------


def test_retrack_keeps_the_seed_and_tracks_only_around_the_correction(small_video, tmp_path):
    path, truth = small_video
    boxes = tmp_path / "boxes.csv"
    assert ibfp("track", path, "--box", box_text(truth[0]), "--tracker", "kcf", "-o", boxes).exit_code == 0
    corrections = tmp_path / "corrections.csv"
    corrections.write_text(f"frame,id,x,y,w,h\n20,1,{box_text(truth[20])}\n")
    result = ibfp("retrack", path, "--keyframes", corrections, "--existing", boxes, "--tracker", "kcf", "-o", boxes)
    assert result.exit_code == 0, result.output
    assert "object 1: frames 1..19" in result.stdout and "object 1: frames 21..39" in result.stdout
    assert "tracked 38 frames again in 2 stretches" in result.stdout
    assert f"wrote {len(truth)} boxes of 1 object to" in result.stdout
    records = read_annotations(boxes).records
    assert [r.frame for r in records if r.keyframe] == [0, 20]
    assert len(records) == len(truth)


def test_retrack_with_a_bad_keyframes_file_fails_in_one_line(small_video, tmp_path) -> None:
    path, _ = small_video
    corrections = tmp_path / "corrections.csv"
    corrections.write_text("frame,id,x,y,w,h\n5,1,1,2,oops,4\n")
    result = ibfp("retrack", path, "--keyframes", corrections, "-o", tmp_path / "out.csv")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {corrections} line 2: w 'oops' is not a number"]
    assert not (tmp_path / "out.csv").exists()


# ---- review ----------------------------------------------------------------------------------


def test_review_lists_doubtful_runs_and_writes_a_sheet(small_video, tmp_path) -> None:
    path, _ = small_video
    boxes = tmp_path / "boxes.csv"
    rows = [f"{f},1,10,10,30,20,{0.2 if 5 <= f <= 8 else 0.9},0,{int(f == 0)}" for f in range(40)]
    boxes.write_text("frame,id,x,y,w,h,score,lost,keyframe\n" + "\n".join(rows) + "\n")
    sheet = tmp_path / "review.png"
    result = ibfp("review", path, boxes, "--sheet", sheet)
    assert result.exit_code == 0, result.output
    assert "5..8" in result.stdout and "(1 of 1 run)" in result.stdout
    assert cv2.imread(str(sheet)) is not None
    quiet = ibfp("review", path, boxes, "--threshold", "0.1")
    assert quiet.exit_code == 0 and "no doubtful boxes" in quiet.stdout


@pytest.mark.parametrize("threshold", ["-1", "abc"])
def test_review_rejects_a_bad_threshold(small_video, tmp_path, threshold) -> None:
    path, _ = small_video
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("frame,id,x,y,w,h\n0,1,1,1,5,5\n")
    assert ibfp("review", path, boxes, "--threshold", threshold).exit_code == 2
