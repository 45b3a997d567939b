"""`ibfp select`: drag a box around each object on one frame, get the `ibfp track` line.

The window is matplotlib's (its `RectangleSelector` on the frame), which needs a GUI
toolkit such as Tk but not OpenCV's GUI (this project installs OpenCV's headless build,
whose `cv2.selectROI` cannot open a window). `BoxPicker` holds the selection logic and
knows nothing of windows, so it is tested with plain calls; `BoxWindow` wires it to a
matplotlib figure's events.

Keys: n or enter keeps the box just drawn and starts the next object; u or backspace
removes the box just drawn, else the last one kept; d, q or closing the window ends
(a box drawn but not yet kept is kept).
"""

from __future__ import annotations

import csv
import io
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..boxes import MIN_BOX_SIZE, Box
from ..errors import BoxError, IBFPError
from ..media.atomic import atomic_output
from ..media.frame_image import decoded_frame
from .pipeline import OPTIONAL_SEED_COLUMNS, SEED_COLUMNS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import KeyEvent, MouseEvent

Action = Literal["next", "undo", "done"]
KEYS: dict[str, Action] = {"n": "next", "enter": "next", "u": "undo", "backspace": "undo", "d": "done", "q": "done"}
"""What each key does in the window; n/u/d are free in matplotlib's default key map."""
DISPLAY_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY")
"""On Linux and other X11/Wayland systems a window needs one of these set."""
NON_INTERACTIVE_BACKENDS = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})
"""matplotlib backends that draw to files only: what it falls back to without a GUI toolkit."""
KEPT_RGB = (0.0, 1.0, 0.0)
CURRENT_RGB = (1.0, 1.0, 0.0)
LINE_WIDTH = 1.5
"""Points: thin enough to see the object's edge under the box."""
SEEDS_HEADER = (*SEED_COLUMNS, *OPTIONAL_SEED_COLUMNS)


@dataclass
class BoxPicker:
    """Boxes drawn on a width x height frame, one per object, in whole pixels.

    A drag gives the current box; `key` keeps it (next), removes it or the last one kept
    (undo), or ends (done). Drags are snapped to pixel edges and clipped to the frame;
    one smaller than MIN_BOX_SIZE (a click) is ignored.
    """

    width: int
    height: int
    kept: list[Box] = field(default_factory=list)
    current: Box | None = None
    done: bool = False

    def drag(self, x1: float, y1: float, x2: float, y2: float) -> Box | None:
        """A drag from (x1, y1) to (x2, y2) in frame pixels; returns the box it gives, if any."""
        left, right = sorted((_snap(x1, self.width), _snap(x2, self.width)))
        top, bottom = sorted((_snap(y1, self.height), _snap(y2, self.height)))
        if right - left < MIN_BOX_SIZE or bottom - top < MIN_BOX_SIZE:
            return None
        self.current = Box.from_xyxy(left, top, right, bottom)
        return self.current

    def key(self, key: str | None) -> Action | None:
        """Apply a key press; returns what it did (None for keys without a meaning here)."""
        action = KEYS.get(key or "")
        if action == "next":
            self._keep()
        elif action == "undo":
            if self.current is not None:
                self.current = None
            elif self.kept:
                self.kept.pop()
        elif action == "done":
            self.finish()
        return action

    def finish(self) -> list[Box]:
        """End the selection (keeping a box drawn but not yet kept); the boxes in order."""
        self._keep()
        self.done = True
        return list(self.kept)

    def _keep(self) -> None:
        if self.current is not None:
            self.kept.append(self.current)
            self.current = None


def _snap(value: float, limit: int) -> int:
    """A coordinate rounded to the nearest pixel edge inside 0..limit."""
    return int(min(max(round(value), 0), limit))


def track_command(
    video: str | os.PathLike[str], frame: int, boxes: Sequence[Box], label: str | None = None, out: str = "boxes.csv"
) -> str:
    """The `ibfp track` line that tracks these boxes from `frame`, shell-quoted."""
    if not boxes:
        raise BoxError("no box was drawn")
    words = ["ibfp", "track", str(video)]
    if frame:
        words += ["--frame", str(frame)]
    for box in boxes:
        words += ["--box", str(box)]
    if label:
        words += ["--label", label]
    words += ["--out", out]
    return shlex.join(words)


def append_seeds(
    path: str | os.PathLike[str], video: str, frame: int, boxes: Sequence[Box], label: str | None = None
) -> list[int]:
    """Add one `ibfp batch` seeds row per box to `path` (created with a header if missing) and
    return the ids given: the next after those the file already has for `video`."""
    if not boxes:
        raise BoxError("no box was drawn")
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig") if path.is_file() else ""
    lines = list(csv.reader(io.StringIO(text)))
    header = lines[0] if lines else list(SEEDS_HEADER)
    missing = [c for c in SEED_COLUMNS if c not in header] + (["label"] if label and "label" not in header else [])
    if missing:
        raise IBFPError(f"{path} has no {missing[0]!r} column in its header {','.join(header)}")
    earlier = [dict(zip(header, row)) for row in lines[1:] if row]
    earlier = [row for row in earlier if row.get("video") == video]
    numbered = [int(row["id"]) for row in earlier if (row.get("id") or "").isdigit()]
    first = max([*numbered, len(earlier)]) + 1  # without an id column, ids count the video's rows
    ids = list(range(first, first + len(boxes)))
    out = io.StringIO()
    if not lines:
        out.write(",".join(header) + "\n")
    elif not text.endswith("\n"):
        out.write("\n")
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n", restval="", extrasaction="ignore")
    for track_id, box in zip(ids, boxes, strict=True):
        x, y, w, h = str(box).split(",")
        writer.writerow(
            {"video": video, "frame": frame, "x": x, "y": y, "w": w, "h": h, "id": track_id, "label": label}
        )
    with atomic_output(path) as tmp:
        tmp.write_text(text + out.getvalue(), encoding="utf-8")
    return ids


def display_problem(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why no window can open here (None if one can, as far as the environment tells)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return None
    if not any(environ.get(name) for name in DISPLAY_VARIABLES):
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    return None


class BoxWindow:
    """A matplotlib Axes showing the frame, a RectangleSelector for the current box, and the
    kept boxes drawn numbered; key presses go to the picker."""

    def __init__(self, axes: Axes, image: np.ndarray, picker: BoxPicker, title: str = "") -> None:
        from matplotlib.widgets import RectangleSelector

        self.axes, self.picker, self.title = axes, picker, title
        height, width = image.shape[:2]
        # extent puts pixel edges on whole numbers: data (0, 0) is the top-left corner of the
        # top-left pixel, as in ibfp's boxes
        axes.imshow(image, extent=(0, width, height, 0), interpolation="nearest")
        axes.set_xlim(0, width)
        axes.set_ylim(height, 0)
        self._drawn: list[Any] = []
        self.selector = RectangleSelector(
            axes,
            self._on_select,
            useblit=False,
            button=[1],
            interactive=True,
            props={"edgecolor": CURRENT_RGB, "fill": False, "linewidth": LINE_WIDTH},
        )
        axes.figure.canvas.mpl_connect("key_press_event", self._on_key)
        self._refresh()

    def _on_select(self, press: MouseEvent, release: MouseEvent) -> None:
        if None in (press.xdata, press.ydata, release.xdata, release.ydata):
            return
        self.picker.drag(press.xdata, press.ydata, release.xdata, release.ydata)
        self._refresh()

    def _on_key(self, event: KeyEvent) -> None:
        action = self.picker.key(event.key)
        if action in ("next", "undo"):
            self.selector.clear()
        if action == "done":
            import matplotlib.pyplot as plt

            plt.close(self.axes.figure)
            return
        self._refresh()

    def _refresh(self) -> None:
        from matplotlib.patches import Rectangle

        for artist in self._drawn:
            artist.remove()
        self._drawn = []
        for number, box in enumerate(self.picker.kept, start=1):
            patch = Rectangle((box.x, box.y), box.w, box.h, fill=False, edgecolor=KEPT_RGB, linewidth=LINE_WIDTH)
            self._drawn.append(self.axes.add_patch(patch))
            self._drawn.append(self.axes.text(box.x, box.y, str(number), color=KEPT_RGB, va="bottom"))
        kept, current = len(self.picker.kept), self.picker.current
        state = f"{kept} kept" + (f", drawing {current}" if current is not None else "")
        self.axes.set_title(f"{self.title}\n{state} | n: next object  u: undo  d: done", fontsize="small")
        self.axes.figure.canvas.draw_idle()


def window_problem() -> str | None:
    """Why `pick_boxes` cannot open a window here: no display, no matplotlib, or no GUI toolkit."""
    problem = display_problem()
    if problem is not None:
        return problem
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return 'matplotlib is not installed (pip install "ibfp[select]")'
    backend = plt.get_backend().lower()
    if backend in NON_INTERACTIVE_BACKENDS:
        return f"matplotlib found no GUI toolkit (backend {backend}); install Tk (python3-tk) or Qt"
    return None


def pick_boxes(image: np.ndarray, title: str = "") -> list[Box]:
    """Open a window on the RGB image and return the boxes the user drew (blocks until done)."""
    import matplotlib.pyplot as plt

    # backspace and q are ours in this window, not matplotlib's "back" and "quit"
    keymaps = {name: [k for k in plt.rcParams[name] if k not in KEYS] for name in ("keymap.back", "keymap.quit")}
    picker = BoxPicker(image.shape[1], image.shape[0])
    with plt.rc_context(keymaps):
        _, axes = plt.subplots()
        _window = BoxWindow(axes, image, picker, title)  # holds the selector while the window is open
        plt.show()
    return picker.finish()


def select_boxes(video: str | os.PathLike[str], frame: int = 0) -> list[Box]:
    """Show frame `frame` of `video` in a window and return the boxes drawn on it.

    Where no window can open, an IBFPError says why and names the `ibfp frame --grid`
    command that writes the frame with coordinates to read the boxes off instead.
    """
    problem = window_problem()
    if problem is not None:
        fallback = shlex.join(["ibfp", "frame", str(video), "--frame", str(frame), "--grid", "--out", "frame.png"])
        raise IBFPError(f"cannot open a window: {problem}; read the boxes off a grid instead: {fallback}")
    boxes = pick_boxes(decoded_frame(video, frame), f"{Path(video).name} frame {frame}")
    if not boxes:
        raise BoxError("no box was drawn")
    return boxes
