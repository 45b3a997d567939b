"""`ibfp eval` on ground truth with several objects (issue 28): the id column, every object
tracked together, identity counts in the report; with a fake tracker (exact counts) and IBFP."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# registers the fake "test-constant" tracker (reports its seed box on every frame)
from test_eval_runner import ConstantTracker
from typer.testing import CliRunner

from ibfp_cli.cli import app
from ibfp_cli.errors import FormatError
from ibfp_cli.evaluate import run_evaluation
from ibfp_cli.evaluate.datasets import open_dataset, read_gt_csv, read_gt_objects
from ibfp_cli.evaluate.identities import confident, identity_counts
from ibfp_cli.formats import read_annotations
from ibfp_cli.media.synthetic import LOOKALIKE_CLIP, synthetic_objects, write_synthetic_video
from ibfp_cli.media.video import VideoWriter
from ibfp_cli.tracking.weights import shipped_weights

runner = CliRunner()
FRAMES, SWAP_AT = 10, 4
LEFT, RIGHT = (4.0, 4.0, 8.0, 8.0), (40.0, 4.0, 8.0, 8.0)


def _write_gt(path: Path, rows: list[tuple[int, int, tuple[float, ...] | None]]) -> None:
    lines = ["frame,id,x,y,w,h"]
    lines += [f"{f},{i}," + (",".join(map(str, box)) if box else ",,,") for f, i, box in rows]
    path.write_text("\n".join(lines) + "\n")


def test_a_gt_csv_with_an_id_column_holds_each_object_in_id_order(tmp_path) -> None:
    path = tmp_path / "clip.gt.csv"
    # id 7 first in the file; id 2 is absent on frame 1 and not listed after frame 2
    _write_gt(tmp_path / "clip.gt.csv", [(0, 7, RIGHT), (0, 2, LEFT), (1, 2, None), (2, 2, LEFT), (3, 7, RIGHT)])
    ids, gt, absent = read_gt_objects(path)
    assert ids == (2, 7) and gt.shape == (2, 4, 4) and absent.shape == (2, 4)
    np.testing.assert_array_equal(absent, [[False, True, False, True], [False, True, True, False]])
    np.testing.assert_array_equal(gt[0, 0], LEFT)
    assert np.isnan(gt[1, 1]).all()
    first, first_absent = read_gt_csv(path)  # the single-object reader: the first object
    np.testing.assert_array_equal(first_absent, absent[0])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("frame,id,x,y,w,h\n0,a,1,1,4,4\n", "line 2: expected a whole-number object id, got 'a'"),
        ("frame,id,x,y,w,h\n0,1,1,1,4,4\n0,1,2,2,4,4\n", "line 3: frame 0 is listed twice for id 1"),
        ("frame,object,x,y,w,h\n0,1,1,1,4,4\n", "must have the header frame,x,y,w,h"),
    ],
)
def test_a_bad_several_object_gt_is_one_line_naming_it(tmp_path, rows: str, message: str) -> None:
    path = tmp_path / "clip.gt.csv"
    path.write_text(rows)
    with pytest.raises(FormatError, match=message):
        read_gt_objects(path)


@pytest.fixture
def swapping(tmp_path: Path) -> Path:
    """A 10-frame video whose two annotated objects trade places at frame 4."""
    root = tmp_path / "data"
    root.mkdir()
    with VideoWriter(root / "swap.mp4", 64, 32, 10) as writer:
        for index in range(FRAMES):
            writer.write(np.full((32, 64, 3), 60 + index * 10, np.uint8))
    rows = []
    for frame in range(FRAMES):
        one, two = (LEFT, RIGHT) if frame < SWAP_AT else (RIGHT, LEFT)
        rows += [(frame, 1, one), (frame, 2, two)]
    _write_gt(root / "swap.gt.csv", rows)
    return root


def test_every_object_is_tracked_together_and_counted(swapping, tmp_path) -> None:
    (sequence,) = open_dataset(swapping)
    assert sequence.object_ids == (1, 2) and sequence.objects.shape == (2, FRAMES, 4)
    out = tmp_path / "out"
    report = run_evaluation(swapping, ["test-constant"], out, workers=1)
    # the single-object run of the first object is scored as before
    assert report.per_sequence.loc[0, "frames"] == FRAMES
    saved = read_annotations(out / "predictions" / "test-constant" / "swap.objects.csv")
    assert saved.ids() == [1, 2] and len(saved.records) == 2 * FRAMES
    row = report.together.set_index("sequence").loc["swap"]
    # each constant box stays where its object was: from frame 4 on it covers the other object
    assert (row.objects, row.crossings, row.switches, row.merged_frames) == (2, 0, 2, 0)
    assert row.wrong_frames == 2 * (FRAMES - SWAP_AT)
    assert row.own_share == pytest.approx(SWAP_AT / FRAMES)
    # each object scored from frame 1: IoU 1 on frames 1-3 (20 of 21 thresholds), 0 after
    assert row.auc == pytest.approx(3 * 20 / (9 * 21))
    assert (out / "together.csv").is_file() and "## Objects tracked together" in (out / "report.md").read_text()
    inits = ConstantTracker.inits
    run_evaluation(swapping, ["test-constant"], out, workers=1)
    assert ConstantTracker.inits == inits  # both runs saved: nothing tracked again


def test_a_later_object_is_seeded_on_its_first_annotated_frame(swapping, tmp_path) -> None:
    rows = [(f, 1, LEFT) for f in range(FRAMES)] + [(f, 2, RIGHT) for f in range(3, FRAMES)]
    _write_gt(swapping / "swap.gt.csv", rows)
    out = tmp_path / "out"
    report = run_evaluation(swapping, ["test-constant"], out, workers=1)
    later = read_annotations(out / "predictions" / "test-constant" / "swap.objects.csv").track(2)
    assert [r.frame for r in later] == list(range(3, FRAMES)) and later[0].keyframe
    row = report.together.set_index("sequence").loc["swap"]
    assert (row.switches, row.wrong_frames) == (0, 0)
    assert row.auc == pytest.approx(20 / 21)  # both boxes exact wherever scored


def test_the_object_scored_alone_is_the_lowest_id_on_the_first_frame(swapping, tmp_path) -> None:
    """Object 1 enters at frame 3: object 2, there from frame 0, is scored alone; both are tracked together."""
    rows = [(f, 1, LEFT) for f in range(3, FRAMES)] + [(f, 2, RIGHT) for f in range(FRAMES)]
    _write_gt(swapping / "swap.gt.csv", rows)
    (sequence,) = open_dataset(swapping)
    assert sequence.object_ids == (1, 2)
    np.testing.assert_array_equal(sequence.gt, sequence.objects[1])
    report = run_evaluation(swapping, ["test-constant"], tmp_path / "out", workers=1)
    assert report.per_sequence.loc[0, "auc"] == pytest.approx(20 / 21)  # object 2's constant box is exact
    assert report.together.set_index("sequence").loc["swap", "objects"] == 2
    _write_gt(swapping / "swap.gt.csv", [(f, i, LEFT) for f in range(3, FRAMES) for i in (1, 2)])
    with pytest.raises(FormatError, match="no ground-truth box on its first frame"):
        open_dataset(swapping)


LOOKALIKES = replace(LOOKALIKE_CLIP, distractors=1, seed=104)
"""Two look-alikes whose paths cross (the clip of tests/test_identity.py)."""


@pytest.mark.skipif(not shipped_weights(), reason="no weights shipped yet")
def test_eval_reports_ibfps_identity_counts_on_crossing_lookalikes(tmp_path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    write_synthetic_video(root / "cross.mp4", LOOKALIKES)
    _, truth = synthetic_objects(LOOKALIKES)
    _write_gt(root / "cross.gt.csv", [(f, m + 1, tuple(truth[m, f])) for f in range(len(truth[0])) for m in range(2)])
    out = tmp_path / "out"
    args = ["eval", str(root), "--tracker", "ibfp", "--out", str(out), "--workers", "1", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Objects tracked together" in result.output
    table = pd.read_csv(out / "together.csv").set_index(["tracker", "sequence"])
    row = table.loc[("ibfp", "cross")]
    assert row.objects == 2 and row.crossings >= 1
    assert row.merged_frames == 0 and row.switches == 0
    # the counts are those of the saved boxes
    saved = read_annotations(out / "predictions" / "ibfp" / "cross.objects.csv")
    boxes = np.stack([[r.box.xywh() for r in saved.track(k)] for k in (1, 2)])
    sure = np.stack([confident([r.score for r in saved.track(k)], [r.lost for r in saved.track(k)]) for k in (1, 2)])
    counts = identity_counts(boxes, sure, truth)
    assert (counts.switches, counts.wrong_frames, counts.own_frames) == (
        row.switches,
        row.wrong_frames,
        round(row.own_share * counts.track_frames),
    )
    assert table.loc[("ibfp", "all"), "switches"] == row.switches
