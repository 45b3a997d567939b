"""ibfp: draw one box on one frame of a video, get that object's box on every frame.

The scripting API is importable from here; names load on first use, so `import ibfp_cli`
stays quick (torch loads only with `Tracker`, the IBFP tracker class).
"""

from __future__ import annotations

from importlib import import_module, metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .annotate.pipeline import Seed, track_video
    from .boxes import Box, parse_box
    from .formats import read_annotations, write_annotations
    from .media.video import VideoWriter, probe, read_video
    from .tracking.registry import create_tracker
    from .tracking.tracker import IBFPTracker as Tracker

try:
    __version__ = metadata.version("ibfp")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_EXPORTS: dict[str, tuple[str, str]] = {
    "Box": ("boxes", "Box"),
    "parse_box": ("boxes", "parse_box"),
    "read_video": ("media.video", "read_video"),
    "probe": ("media.video", "probe"),
    "VideoWriter": ("media.video", "VideoWriter"),
    "Seed": ("annotate.pipeline", "Seed"),
    "track_video": ("annotate.pipeline", "track_video"),
    "read_annotations": ("formats", "read_annotations"),
    "write_annotations": ("formats", "write_annotations"),
    "create_tracker": ("tracking.registry", "create_tracker"),
    "Tracker": ("tracking.tracker", "IBFPTracker"),
}
"""Public name -> (module, attribute) it is loaded from on first access."""

__all__ = [
    "Box",
    "Seed",
    "Tracker",
    "VideoWriter",
    "__version__",
    "create_tracker",
    "parse_box",
    "probe",
    "read_annotations",
    "read_video",
    "track_video",
    "write_annotations",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(import_module(f".{module}", __name__), attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
