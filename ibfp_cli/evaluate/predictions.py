"""A tracker's saved output on one sequence: one CSV row per frame, written atomically."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..media.atomic import atomic_output

PREDICTION_COLUMNS = ("frame", "x", "y", "w", "h", "score", "lost", "time_ms")


@dataclass(frozen=True, eq=False)
class Predictions:
    """Per-frame boxes (N, 4) x, y, w, h, scores, lost flags and tracker-call times in ms."""

    boxes: np.ndarray
    scores: np.ndarray
    lost: np.ndarray
    times_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


def write_predictions(path: Path, predictions: Predictions) -> None:
    """Write rows frame 0..N-1 to `path`, replacing it only once complete."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PREDICTION_COLUMNS)
        for frame, (box, score, lost, time_ms) in enumerate(
            zip(predictions.boxes, predictions.scores, predictions.lost, predictions.times_ms)
        ):
            writer.writerow([frame, *map(float, box), float(score), int(lost), float(time_ms)])


def read_predictions(path: Path) -> Predictions:
    """Read a file written by `write_predictions`; FormatError if it is malformed."""
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = tuple(next(reader, ()))
            rows = [[float(v) for v in row] for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as e:
        raise FormatError(f"cannot read predictions {path}: {e}") from None
    if header != PREDICTION_COLUMNS or any(len(r) != len(PREDICTION_COLUMNS) for r in rows):
        raise FormatError(f"{path} is not a predictions file ({','.join(PREDICTION_COLUMNS)})")
    table = np.array(rows, dtype=np.float64).reshape(-1, len(PREDICTION_COLUMNS))
    if not np.array_equal(table[:, 0], np.arange(len(table))):
        raise FormatError(f"{path} does not list frames 0..{len(table) - 1} in order")
    return Predictions(boxes=table[:, 1:5], scores=table[:, 5], lost=table[:, 6] != 0, times_ms=table[:, 7])


def has_predictions(path: Path, frames: int) -> bool:
    """True if `path` holds well-formed predictions for exactly `frames` frames."""
    if not path.is_file():
        return False
    try:
        return len(read_predictions(path)) == frames
    except FormatError:
        return False
