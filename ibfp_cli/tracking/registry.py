"""The registry of trackers by name: the built-in ones found by module path, others added by `register`.

A built-in tracker's module is imported only when a tracker is made, so listing trackers
loads neither torch nor OpenCV, and no implementation imports this module back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from ..errors import IBFPError
from .contract import SingleObjectTracker, TrackerFactory


@dataclass(frozen=True, slots=True)
class _Builtin:
    """The factory `name` of module `module`, imported on first call (module-level and plain
    data, so worker processes can unpickle it)."""

    module: str
    name: str

    def __call__(self, **options: object) -> SingleObjectTracker:
        return getattr(import_module(self.module, __package__), self.name)(**options)


_OPENCV = ".opencv_trackers"
_MODELS_ENV = "IBFP_OPENCV_MODELS"  # opencv_trackers.MODELS_ENV, written out: naming it would import OpenCV
_REGISTRY: dict[str, tuple[TrackerFactory, str]] = {
    "ibfp": (_Builtin(".tracker", "create"), "IBFP (this project's tracker, shipped weights)"),
    "mil": (_Builtin(_OPENCV, "create_mil"), "OpenCV MIL (every OpenCV build; slow, drifts little)"),
    "kcf": (_Builtin(_OPENCV, "create_kcf"), "OpenCV KCF (contrib build; fastest, loses targets easily)"),
    "csrt": (_Builtin(_OPENCV, "create_csrt"), "OpenCV CSRT (contrib build; accurate, slow)"),
    "nano": (_Builtin(_OPENCV, "create_nano"), f"OpenCV NanoTrack v2 (needs its ONNX files in ${_MODELS_ENV})"),
    "vit": (_Builtin(_OPENCV, "create_vit"), f"OpenCV VitTrack (needs its ONNX file in ${_MODELS_ENV})"),
}
"""Tracker name -> (factory, one-line description)."""


def register(name: str, description: str) -> Callable[[TrackerFactory], TrackerFactory]:
    """Decorator adding a tracker factory to the registry under `name`."""

    def wrap(factory: TrackerFactory) -> TrackerFactory:
        _REGISTRY[name] = (factory, description)
        return factory

    return wrap


def tracker_names() -> list[str]:
    """Registered tracker names, IBFP first."""
    return sorted(_REGISTRY, key=lambda n: (n != "ibfp", n))


def tracker_descriptions() -> dict[str, str]:
    return {n: _REGISTRY[n][1] for n in tracker_names()}


def tracker_factory(name: str) -> TrackerFactory:
    """The factory registered under `name` (module-level, so worker processes can unpickle it)."""
    if name not in _REGISTRY:
        raise IBFPError(f"unknown tracker {name!r}; choose one of {', '.join(tracker_names())}")
    return _REGISTRY[name][0]


def create_tracker(name: str, **options: object) -> SingleObjectTracker:
    """A new tracker by registry name; options go to its factory (device, weights, ...)."""
    return tracker_factory(name)(**options)


def tracker_availability() -> dict[str, tuple[str, str | None]]:
    """Each tracker's description and why it cannot run here (None: it can), found by making one."""
    available: dict[str, tuple[str, str | None]] = {}
    for name, description in tracker_descriptions().items():
        try:
            create_tracker(name)
            problem = None
        except IBFPError as e:
            problem = str(e)
        available[name] = (description, problem)
    return available
