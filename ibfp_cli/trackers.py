"""The single-object tracker contract and the registry of trackers by name."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .boxes import Box
from .errors import IBFPError


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


TrackerFactory = Callable[..., SingleObjectTracker]
_REGISTRY: dict[str, tuple[TrackerFactory, str]] = {}


def register(name: str, description: str) -> Callable[[TrackerFactory], TrackerFactory]:
    """Decorator adding a tracker factory to the registry under `name`."""

    def wrap(factory: TrackerFactory) -> TrackerFactory:
        _REGISTRY[name] = (factory, description)
        return factory

    return wrap


def tracker_names() -> list[str]:
    """Registered tracker names, IBFP first."""
    _load_builtin()
    return sorted(_REGISTRY, key=lambda n: (n != "ibfp", n))


def tracker_descriptions() -> dict[str, str]:
    _load_builtin()
    return {n: _REGISTRY[n][1] for n in tracker_names()}


def tracker_factory(name: str) -> TrackerFactory:
    """The factory registered under `name` (module-level, so worker processes can unpickle it)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise IBFPError(f"unknown tracker {name!r}; choose one of {', '.join(tracker_names())}")
    return _REGISTRY[name][0]


def create_tracker(name: str, **options: object) -> SingleObjectTracker:
    """A new tracker by registry name; options go to its factory (device, weights, ...)."""
    return tracker_factory(name)(**options)


@register("ibfp", "IBFP (this project's tracker, shipped weights)")
def create_ibfp(**options: object) -> SingleObjectTracker:
    """The IBFP tracker; torch is imported only when one is made, so listing trackers is quick."""
    from .tracker import create

    return create(**options)


def _load_builtin() -> None:
    from . import opencv_trackers  # noqa: F401  (the module registers its trackers)
