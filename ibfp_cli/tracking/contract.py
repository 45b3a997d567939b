"""The single-object tracker contract: what every tracker offers and what it answers.

Implementations (`tracker`, `opencv_trackers`) import this module and nothing of the
registry; the registry finds them by module path (`registry`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..boxes import Box


@dataclass(frozen=True, slots=True)
class TrackerOutput:
    """A tracker's answer for one frame: box (float pixels), confidence in [0, 1], lost flag."""

    box: Box
    score: float
    lost: bool = False


class SingleObjectTracker(Protocol):
    """What every tracker offers. Frames are RGB uint8 arrays of shape (H, W, 3)."""

    name: str

    def init(self, frame: np.ndarray, box: Box) -> None:
        """Start tracking the object inside `box` on `frame`."""

    def update(self, frame: np.ndarray) -> TrackerOutput:
        """Locate the object on the next frame."""


TrackerFactory = Callable[..., SingleObjectTracker]
"""Makes a tracker from keyword options (device, weights, models_dir, ...); ignores the rest."""


def update_all(trackers: Sequence[SingleObjectTracker], frame: np.ndarray) -> list[TrackerOutput]:
    """Every tracker's answer on one frame, in order. Trackers whose class offers a static
    `update_many(trackers, frame)` (IBFP) are updated together, so their work can be batched."""
    by_class: dict[type, list[int]] = defaultdict(list)
    for i, tracker in enumerate(trackers):
        by_class[type(tracker)].append(i)
    outputs: dict[int, TrackerOutput] = {}
    for cls, members in by_class.items():
        group = [trackers[i] for i in members]
        many = getattr(cls, "update_many", None)
        outputs.update(zip(members, many(group, frame) if many else [t.update(frame) for t in group]))
    return [outputs[i] for i in range(len(trackers))]
