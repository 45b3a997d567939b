"""`ibfp frame`: the decoded frame written pixel for pixel, and the coordinate grid."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from ibfp_cli.cli import app
from ibfp_cli.media.frame_image import draw_grid, grid_step
from ibfp_cli.media.video import read_video

runner = CliRunner()


def _read_rgb(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("index", [0, 17, 39])
def test_frame_png_equals_the_decoded_frame(small_video, tmp_path, index: int) -> None:
    video, truth = small_video
    out = tmp_path / "frame.png"
    result = runner.invoke(app, ["frame", str(video), "--frame", str(index), "--out", str(out)])
    assert result.exit_code == 0, result.output
    decoded = next(f.image for f in read_video(video) if f.index == index)
    assert np.array_equal(_read_rgb(out), decoded)


def test_grid_marks_lines_and_leaves_other_pixels(small_video, tmp_path) -> None:
    video, _ = small_video
    out = tmp_path / "grid.png"
    result = runner.invoke(app, ["frame", str(video), "--frame", "5", "--grid", "--out", str(out)])
    assert result.exit_code == 0, result.output
    decoded = next(f.image for f in read_video(video) if f.index == 5)
    image = _read_rgb(out)
    step = grid_step(image.shape[1], image.shape[0])
    assert step == 10
    on_line = np.zeros(image.shape[:2], dtype=bool)
    on_line[:, ::step] = True
    on_line[::step, :] = True
    changed = np.any(image != decoded, axis=2)
    interior = np.zeros_like(on_line)
    interior[20:, 30:] = True  # away from the numbers along the top and left edges
    assert changed[on_line & interior].all()
    assert not changed[~on_line & interior].any()


def test_grid_numbers_name_the_line_they_sit_beside() -> None:
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    gridded = draw_grid(image, 50)
    for x in (50, 100, 250):  # each number is drawn just right of its line, in the top rows
        assert gridded[0:12, x + 2 : x + 20].any()
    assert not gridded[14:40, 60:90].any()  # between lines and numbers the picture is untouched


@pytest.mark.parametrize(("size", "step"), [((160, 120), 10), ((640, 480), 50), ((1920, 1080), 100), ((64, 48), 10)])
def test_grid_step_gives_at_most_twenty_lines(size: tuple[int, int], step: int) -> None:
    assert grid_step(*size) == step


def test_frame_outside_the_video_is_one_line_error(small_video, tmp_path) -> None:
    video, truth = small_video
    result = runner.invoke(app, ["frame", str(video), "--frame", str(len(truth)), "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and f"frame {len(truth)}" in errors[0]
    assert list(tmp_path.iterdir()) == []
