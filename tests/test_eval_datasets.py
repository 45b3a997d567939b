"""Benchmark readers: this project's layout, OTB, GOT-10k, LaSOT, and layout detection."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from ibfp_cli.errors import FormatError, VideoError
from ibfp_cli.evaluate.datasets import Sequence, open_dataset, read_gt_csv, temporal_starts
from ibfp_cli.media.video import VideoWriter

WIDTH, HEIGHT = 32, 24
RED_BASE, RED_STEP = 60, 40


def red_level(index: int) -> int:
    return RED_BASE + RED_STEP * index


def write_images(folder: Path, count: int) -> None:
    """`count` tiny red JPEGs (BGR on disk) whose red level encodes the image's index."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        image[:, :, 2] = red_level(index)
        cv2.imwrite(str(folder / f"{index + 1:08d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 100])


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def make_otb(folder: Path, gt_files: dict[str, list[str]], images: int) -> Path:
    write_images(folder / "img", images)
    for name, lines in gt_files.items():
        write_lines(folder / name, lines)
    return folder


def make_got(folder: Path, boxes: list[str], absence: list[int] | None = None) -> Path:
    write_images(folder, len(boxes))
    write_lines(folder / "groundtruth.txt", boxes)
    if absence is not None:
        write_lines(folder / "absence.label", [str(a) for a in absence])
    return folder


def make_lasot(folder: Path, boxes: list[str], occlusion: list[int], out_of_view: list[int]) -> Path:
    write_images(folder / "img", len(boxes))
    write_lines(folder / "groundtruth.txt", boxes)
    write_lines(folder / "full_occlusion.txt", [",".join(map(str, occlusion))])
    write_lines(folder / "out_of_view.txt", [",".join(map(str, out_of_view))])
    return folder


def make_video_sequence(folder: Path, name: str, frames: int, gt_rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with VideoWriter(folder / f"{name}.mp4", WIDTH * 2, HEIGHT * 2, fps=10) as writer:
        for index in range(frames):
            writer.write(np.full((HEIGHT * 2, WIDTH * 2, 3), index * 20, np.uint8))
    write_lines(folder / f"{name}.gt.csv", ["frame,x,y,w,h", *gt_rows])
    return folder / f"{name}.mp4"


def test_project_layout_reads_gt_with_empty_and_missing_frames(tmp_path):
    make_video_sequence(tmp_path, "clip", 6, ["0,1,2,10,8", "1,1.5,2,10,8", "2,,,,", "4,3,4,10,8"])
    (seq,) = open_dataset(tmp_path)
    assert seq.name == "clip" and len(seq) == 5
    np.testing.assert_array_equal(seq.absent, [False, False, True, True, False])
    expected = [[1, 2, 10, 8], [1.5, 2, 10, 8], [3, 4, 10, 8]]
    np.testing.assert_array_equal(seq.gt[[0, 1, 4]], expected)
    assert np.isnan(seq.gt[[2, 3]]).all()
    frames = list(seq.frames())
    assert len(frames) == 5  # the sequence ends at the last annotated frame
    assert frames[0].shape == (HEIGHT * 2, WIDTH * 2, 3) and frames[0].dtype == np.uint8
    assert abs(int(frames[3][5, 5, 0]) - 60) <= 2  # decode order kept


def test_a_video_file_with_its_gt_csv_opens_as_one_sequence(tmp_path):
    video = make_video_sequence(tmp_path, "one", 3, ["0,1,2,10,8", "1,1,2,10,8", "2,1,2,10,8"])
    make_video_sequence(tmp_path, "other", 3, ["0,1,2,10,8"])
    assert [s.name for s in open_dataset(video)] == ["one"]


def test_a_video_shorter_than_its_ground_truth_is_an_error(tmp_path):
    make_video_sequence(tmp_path, "short", 2, [f"{i},1,2,10,8" for i in range(4)])
    (seq,) = open_dataset(tmp_path)
    with pytest.raises(VideoError, match="has 2 frames, its ground truth has 4"):
        list(seq.frames())


def test_gt_csv_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.gt.csv"
    write_lines(path, ["frame,x,y,w,h", "0,1,2,3,4", "1,1,2,x,4"])
    with pytest.raises(FormatError, match="line 3"):
        read_gt_csv(path)
    write_lines(path, ["frame,x,y,w,h", "0,1,2,3,4", "0,1,2,3,4"])
    with pytest.raises(FormatError, match="frame 0 is listed twice"):
        read_gt_csv(path)
    write_lines(path, ["f,x,y,w,h", "0,1,2,3,4"])
    with pytest.raises(FormatError, match="header frame,x,y,w,h"):
        read_gt_csv(path)


def test_a_later_start_gives_the_frames_and_truth_from_there(tmp_path):
    make_video_sequence(tmp_path, "clip", 8, [f"{i},{i},2,10,8" for i in range(8)])
    (seq,) = open_dataset(tmp_path)
    later = seq.starting_at(5)
    assert (later.name, later.start, len(later)) == ("clip", 5, 3)
    np.testing.assert_array_equal(later.gt[:, 0], [5, 6, 7])
    frames, all_frames = list(later.frames()), list(seq.frames())
    assert len(frames) == 3
    for frame, same in zip(frames, all_frames[5:]):
        np.testing.assert_array_equal(frame, same)
    assert later.starting_at(6).gt[0, 0] == 6  # frames count from the source's first


def test_a_later_start_of_a_short_video_names_the_source_frame_counts(tmp_path):
    make_video_sequence(tmp_path, "short", 4, [f"{i},1,2,10,8" for i in range(6)])
    (seq,) = open_dataset(tmp_path)
    with pytest.raises(VideoError, match="has 4 frames, its ground truth has 6"):
        list(seq.starting_at(2).frames())


def test_temporal_starts_spread_evenly_and_skip_to_a_visible_target():
    absent = np.zeros(30, dtype=bool)

    def starts(count: int) -> list[int]:
        gt = np.where(absent[:, None], np.nan, np.array([1.0, 2, 10, 8]))
        return temporal_starts(Sequence("clip", Path("clip.mp4"), gt, absent.copy()), count)

    assert starts(1) == [0]
    assert starts(3) == [0, 10, 20]
    absent[10:13] = True  # absent at the second start: moved on to 13
    absent[27:29] = True  # after 26 only the last frame: a start there has nothing to track
    assert starts(3) == [0, 13, 20]
    assert starts(30)[-1] == 26
    assert starts(60) == sorted(set(starts(60)))  # no start twice


def test_otb_is_shifted_to_zero_based_and_accepts_any_separator(tmp_path):
    lines = ["11,21,5,6", "12\t22\t5\t6", "13 23 5 6"]
    seq_dir = make_otb(tmp_path / "Car", {"groundtruth_rect.txt": lines}, 3)
    (seq,) = open_dataset(seq_dir)
    assert seq.name == "Car"
    np.testing.assert_array_equal(seq.gt, [[10, 20, 5, 6], [11, 21, 5, 6], [12, 22, 5, 6]])
    assert not seq.absent.any()


def test_otb_frames_are_rgb_in_name_order_and_extra_images_are_dropped(tmp_path):
    seq_dir = make_otb(tmp_path / "Car", {"groundtruth_rect.txt": ["1,1,5,6"] * 3}, 5)
    (seq,) = open_dataset(seq_dir)
    frames = list(seq.frames())
    assert len(frames) == 3
    assert frames[2].shape == (HEIGHT, WIDTH, 3) and frames[2].dtype == np.uint8
    centre = [f[HEIGHT // 2, WIDTH // 2].astype(int) for f in frames]
    assert all(abs(c[0] - red_level(i)) <= 3 and c[2] <= 3 for i, c in enumerate(centre))  # RGB


def test_otb_with_two_targets_gives_two_sequences(tmp_path):
    gt = {"groundtruth_rect.1.txt": ["1,1,5,6"] * 2, "groundtruth_rect.2.txt": ["9,9,4,4"] * 2}
    make_otb(tmp_path / "Jogging", gt, 2)
    seqs = open_dataset(tmp_path)
    assert [s.name for s in seqs] == ["Jogging-1", "Jogging-2"]
    assert seqs[1].gt[0].tolist() == [8, 8, 4, 4]


def test_otb_with_too_few_images_is_an_error(tmp_path):
    make_otb(tmp_path / "Car", {"groundtruth_rect.txt": ["1,1,5,6"] * 4}, 3)
    with pytest.raises(FormatError, match="3 images for 4 ground-truth boxes"):
        open_dataset(tmp_path)


def test_got10k_keeps_coordinates_and_reads_absence(tmp_path):
    boxes = ["1,2,5,6", "2,3,5,6", "0,0,0,0", "NaN,NaN,NaN,NaN", "4,5,5,6"]
    seq_dir = make_got(tmp_path / "GOT-10k_Val_000001", boxes, absence=[0, 1, 0, 0, 0])
    (seq,) = open_dataset(seq_dir)
    np.testing.assert_array_equal(seq.absent, [False, True, True, True, False])
    np.testing.assert_array_equal(seq.gt[[0, 4]], [[1, 2, 5, 6], [4, 5, 5, 6]])
    assert np.isnan(seq.gt[1:4]).all()
    assert len(list(seq.frames())) == 5


def test_got10k_cover_zero_marks_the_target_invisible(tmp_path):
    seq_dir = make_got(tmp_path / "seq", ["1,2,5,6"] * 3)
    write_lines(seq_dir / "cover.label", ["8", "0", "3"])
    (seq,) = open_dataset(seq_dir)
    np.testing.assert_array_equal(seq.absent, [False, True, False])


def test_lasot_flags_occlusion_and_out_of_view(tmp_path):
    make_lasot(tmp_path / "airplane" / "airplane-1", ["1,2,5,6"] * 4, [0, 1, 0, 0], [0, 0, 0, 1])
    (seq,) = open_dataset(tmp_path)  # class folder one level down
    assert seq.name == "airplane-1"
    np.testing.assert_array_equal(seq.absent, [False, True, False, True])
    assert seq.gt[2].tolist() == [1, 2, 5, 6]


def test_lasot_flag_count_must_match(tmp_path):
    make_lasot(tmp_path / "cat-2", ["1,2,5,6"] * 3, [0, 0], [0, 0, 0])
    with pytest.raises(FormatError, match="2 flags for 3"):
        open_dataset(tmp_path)


def test_a_folder_of_mixed_sequence_folders(tmp_path):
    make_otb(tmp_path / "Car", {"groundtruth_rect.txt": ["1,1,5,6"] * 2}, 2)
    make_got(tmp_path / "got_seq", ["1,2,5,6"] * 2)
    make_lasot(tmp_path / "cat-1", ["1,2,5,6"] * 2, [0, 0], [0, 0])
    assert [s.name for s in open_dataset(tmp_path)] == ["Car", "cat-1", "got_seq"]


def test_a_target_absent_on_the_first_frame_cannot_be_tracked(tmp_path):
    make_got(tmp_path / "seq", ["0,0,0,0", "1,2,5,6"])
    with pytest.raises(FormatError, match="no ground-truth box on its first frame"):
        open_dataset(tmp_path)


def test_unknown_layouts_say_what_was_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FormatError, match="groundtruth_rect.txt"):
        open_dataset(tmp_path)
    with pytest.raises(FormatError, match="does not exist"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(FormatError, match="line 2: expected 4 numbers"):
        open_dataset(make_got(tmp_path / "bad", ["1,2,5,6", "1,2,5"]))


def test_sequences_are_picklable_for_worker_processes(tmp_path):
    (seq,) = open_dataset(make_got(tmp_path / "seq", ["1,2,5,6"] * 2))
    copy = pickle.loads(pickle.dumps(seq))
    assert isinstance(copy, Sequence) and copy.frames_source == seq.frames_source
    np.testing.assert_array_equal(copy.gt, seq.gt)


@pytest.mark.real_data
def test_real_sot_folder_matches_its_sources(shared_data):
    with open(shared_data / "sources.csv", newline="") as f:
        sources = {row["name"]: row for row in csv.DictReader(f)}
    seqs = open_dataset(shared_data)
    assert len(seqs) == 42
    assert {s.name: len(s) for s in seqs} == {name: int(r["frames"]) for name, r in sources.items()}
    first = next(s for s in seqs if s.name == "otb_Biker")
    assert not first.absent.any()
    frame = next(first.frames())
    biker = sources["otb_Biker"]
    assert frame.shape == (int(biker["height"]), int(biker["width"]), 3)
