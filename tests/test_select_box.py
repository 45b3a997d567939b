"""`ibfp select`: the box logic driven by fake events, the seeds rows, and no-display failure."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest
from matplotlib.backend_bases import KeyEvent, MouseEvent
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from typer.testing import CliRunner

from ibfp_cli.annotate import select_box
from ibfp_cli.annotate.pipeline import Seed, load_seeds
from ibfp_cli.annotate.select_box import BoxPicker, BoxWindow, append_seeds, display_problem, track_command
from ibfp_cli.boxes import Box
from ibfp_cli.cli import app

matplotlib.use("Agg")  # the window test draws into memory: no display needed

runner = CliRunner()


def test_picker_follows_a_sequence_of_drags_and_keys() -> None:
    picker = BoxPicker(160, 120)
    assert picker.drag(10.4, 20.6, 50.2, 60.1) == Box(10, 21, 40, 39)  # snapped to pixel edges
    assert picker.key("n") == "next"
    assert picker.drag(150, 100, 120, 80) == Box(120, 80, 30, 20)  # dragged up-left
    assert picker.key("u") == "undo"  # drops the box being drawn
    assert picker.drag(150, 100, 170, 130) == Box(150, 100, 10, 20)  # clipped to the frame
    assert picker.key("enter") == "next"
    assert picker.drag(5, 5, 6, 6) is None  # a click is no box
    assert picker.key("x") is None
    picker.drag(0, 0, 30, 30)
    assert picker.key("backspace") == "undo"
    assert picker.key("u") == "undo"  # nothing being drawn: the last kept box goes
    picker.drag(100, 10, 140, 50)
    assert picker.key("d") == "done"  # the box being drawn is kept
    assert picker.done and picker.kept == [Box(10, 21, 40, 39), Box(100, 10, 40, 40)]
    line = track_command("my walk.mp4", 12, picker.kept, label="person")
    assert (
        line
        == "ibfp track 'my walk.mp4' --frame 12 --box 10,21,40,39 --box 100,10,40,40 --label person --out boxes.csv"
    )


def _event_at(axes, kind: str, x: float, y: float, **extra) -> None:
    """Send a matplotlib event at data coordinates (x, y) through the figure's callbacks."""
    canvas = axes.figure.canvas
    px, py = axes.transData.transform((x, y))
    if kind == "key_press_event":
        event = KeyEvent(kind, canvas, extra["key"], px, py)
    else:
        event = MouseEvent(kind, canvas, px, py, button=1)
    canvas.callbacks.process(kind, event)


def _drag(axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    _event_at(axes, "button_press_event", *start)
    _event_at(axes, "motion_notify_event", *end)
    _event_at(axes, "button_release_event", *end)


def test_window_turns_mouse_drags_and_keys_into_boxes() -> None:
    figure = Figure(figsize=(4, 3), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = np.full((120, 160, 3), 128, dtype=np.uint8)
    picker = BoxPicker(160, 120)
    window = BoxWindow(axes, image, picker, "test")
    figure.canvas.draw()
    _drag(axes, (20.2, 30.0), (60.0, 70.4))
    _event_at(axes, "key_press_event", 0, 0, key="n")
    _drag(axes, (100.0, 10.0), (140.0, 50.0))
    _event_at(axes, "key_press_event", 0, 0, key="d")
    assert picker.done
    assert picker.kept == [Box(20, 30, 40, 40), Box(100, 10, 40, 40)]
    assert window.selector is not None


def test_select_prints_the_track_line_and_appends_seeds(small_video, tmp_path, monkeypatch) -> None:
    """The command end to end, with a user's drags and keys sent to the window it opens."""
    import matplotlib.pyplot as plt

    video, _ = small_video
    seeds = tmp_path / "seeds.csv"

    def user() -> None:
        figure = plt.gcf()
        figure.canvas.draw()
        axes = figure.axes[0]
        assert axes.get_title().startswith(f"{video.name} frame 4")
        _drag(axes, (10.0, 20.0), (42.0, 44.0))
        _event_at(axes, "key_press_event", 0, 0, key="enter")
        _drag(axes, (90.0, 30.0), (130.0, 90.0))
        _event_at(axes, "key_press_event", 0, 0, key="q")
        assert not plt.fignum_exists(figure.number)  # done closes the window

    monkeypatch.setattr(select_box, "window_problem", lambda: None)  # Agg here: no real window
    monkeypatch.setattr(plt, "show", user)
    result = runner.invoke(app, ["select", str(video), "--frame", "4", "--label", "car", "--seeds", str(seeds)])
    assert result.exit_code == 0, result.output
    boxes = "--box 10,20,32,24 --box 90,30,40,60"
    assert result.stdout == f"ibfp track {video} --frame 4 {boxes} --label car --out boxes.csv\n"
    assert load_seeds(seeds) == {
        video.name: [Seed(Box(10, 20, 32, 24), 4, 1, "car"), Seed(Box(90, 30, 40, 60), 4, 2, "car")]
    }


def test_seeds_rows_are_appended_with_the_next_ids(tmp_path) -> None:
    seeds = tmp_path / "seeds.csv"
    assert append_seeds(seeds, "walk.mp4", 0, [Box(1, 2, 30, 40), Box(50, 60, 10, 20)], "person") == [1, 2]
    assert append_seeds(seeds, "walk.mp4", 5, [Box(7, 8, 9, 10)]) == [3]
    assert append_seeds(seeds, "dog.mp4", 0, [Box(0, 0, 4, 4)], "dog") == [1]
    loaded = load_seeds(seeds)
    assert loaded["walk.mp4"] == [
        Seed(Box(1, 2, 30, 40), 0, 1, "person"),
        Seed(Box(50, 60, 10, 20), 0, 2, "person"),
        Seed(Box(7, 8, 9, 10), 5, 3, "object"),
    ]
    assert loaded["dog.mp4"] == [Seed(Box(0, 0, 4, 4), 0, 1, "dog")]


def test_display_is_missing_without_display_variables() -> None:
    assert display_problem({}, "linux") is not None
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({}, "darwin") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a display is always there on macOS and Windows")
def test_select_without_display_exits_1_with_one_line(small_video, monkeypatch) -> None:
    video, _ = small_video
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = runner.invoke(app, ["select", str(video), "--frame", "3"])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ")
    assert "no display" in errors[0] and "ibfp frame" in errors[0] and "--grid" in errors[0]
    assert result.stdout == ""
