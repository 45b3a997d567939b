"""OpenCV's trackers behind the SingleObjectTracker contract: fallbacks and speed baselines.

MIL is in every OpenCV build; KCF and CSRT need the contrib build; NanoTrack and VitTrack need
their ONNX model files, found in `models_dir` or in the folder named by $IBFP_OPENCV_MODELS.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..boxes import Box
from ..errors import TrackerUnavailable
from .contract import TrackerOutput

MODELS_ENV = "IBFP_OPENCV_MODELS"
"""Environment variable naming a folder that holds the ONNX files of NanoTrack and VitTrack."""

NANO_BACKBONE = "nanotrack_backbone_sim.onnx"  # NanoTrack v2 backbone, HonglinChu/SiamTrackers
NANO_HEAD = "nanotrack_head_sim.onnx"  # NanoTrack v2 neck and head, same source
VIT_MODEL = "object_tracking_vittrack_2023sep.onnx"  # VitTrack, OpenCV model zoo

CONTRIB_HINT = "install opencv-contrib-python-headless"
"""What to do when a tracker of OpenCV's contrib modules is missing."""

FOUND_SCORE = 1.0
"""Score reported by trackers without a confidence of their own when OpenCV says found."""
LOST_SCORE = 0.0
"""Score reported by trackers without a confidence of their own when OpenCV says lost."""

CvTracker = Any  # cv2.Tracker; OpenCV's stubs do not type its subclasses' create()


class OpenCVTracker:
    """One OpenCV tracker object driven through `init` / `update` on RGB frames.

    OpenCV wants BGR frames and integer boxes; results come back as float `Box`es. When OpenCV
    reports the target lost, the previous box is kept and the output is flagged lost.
    """

    def __init__(self, name: str, make: Callable[[], CvTracker], has_score: bool) -> None:
        self.name = name
        self._make = make
        self._has_score = has_score
        self._tracker: CvTracker = _created(name, make)
        self._box: Box | None = None

    def init(self, frame: np.ndarray, box: Box) -> None:
        """Start tracking the object inside `box` on `frame` (RGB uint8)."""
        if self._box is not None:  # a second init starts over with a fresh OpenCV object
            self._tracker = _created(self.name, self._make)
        self._tracker.init(_bgr(frame), _int_rect(box))
        self._box = box

    def update(self, frame: np.ndarray) -> TrackerOutput:
        """Locate the object on the next frame (RGB uint8)."""
        if self._box is None:
            raise RuntimeError(f"{self.name}: update() called before init()")
        found, rect = self._tracker.update(_bgr(frame))
        if found:
            self._box = Box(*(float(v) for v in rect))
        if self._has_score:
            score = float(np.clip(self._tracker.getTrackingScore(), 0.0, 1.0))
        else:
            score = FOUND_SCORE if found else LOST_SCORE
        return TrackerOutput(box=self._box, score=score, lost=not found)


def _bgr(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)


def _int_rect(box: Box) -> tuple[int, int, int, int]:
    """The box as OpenCV's integer rectangle, at least one pixel wide and high."""
    x, y, w, h = (round(v) for v in box.xywh())
    return x, y, max(w, 1), max(h, 1)


def _created(name: str, make: Callable[[], CvTracker]) -> CvTracker:
    """A new OpenCV tracker; OpenCV's notices about DNN backends stay off stderr meanwhile."""
    log = cv2.utils.logging
    previous = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        return make()
    except cv2.error as e:
        reason = str(e).strip().splitlines()[-1]
        raise TrackerUnavailable(f"{name}: OpenCV could not create the tracker ({reason})") from None
    finally:
        log.setLogLevel(previous)


def _opencv_class(name: str, class_name: str, hint: str) -> Any:
    """An OpenCV tracker class, or TrackerUnavailable saying which build has it."""
    cls = getattr(cv2, class_name, None)
    if cls is None:
        raise TrackerUnavailable(f"{name} needs cv2.{class_name}, which OpenCV {cv2.__version__} here lacks; {hint}")
    return cls


def _model_files(name: str, models_dir: str | os.PathLike[str] | None, *files: str) -> list[str]:
    """Paths of a DNN tracker's model files in `models_dir`, else in $IBFP_OPENCV_MODELS."""
    folder = models_dir if models_dir is not None else os.environ.get(MODELS_ENV)
    if not folder:
        raise TrackerUnavailable(f"{name} needs {' and '.join(files)}: pass a models folder or set {MODELS_ENV}")
    paths = [Path(folder) / f for f in files]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise TrackerUnavailable(f"{name} needs {' and '.join(missing)} in {folder}")
    return [str(p) for p in paths]


def create_mil(**_: object) -> OpenCVTracker:
    cls = _opencv_class("mil", "TrackerMIL", "install OpenCV 4.5 or newer")
    return OpenCVTracker("mil", cls.create, has_score=False)


def create_kcf(**_: object) -> OpenCVTracker:
    cls = _opencv_class("kcf", "TrackerKCF", CONTRIB_HINT)
    return OpenCVTracker("kcf", cls.create, has_score=False)


def create_csrt(**_: object) -> OpenCVTracker:
    cls = _opencv_class("csrt", "TrackerCSRT", CONTRIB_HINT)
    return OpenCVTracker("csrt", cls.create, has_score=False)


def create_nano(models_dir: str | os.PathLike[str] | None = None, **_: object) -> OpenCVTracker:
    cls = _opencv_class("nano", "TrackerNano", "install OpenCV 4.7 or newer")
    backbone, head = _model_files("nano", models_dir, NANO_BACKBONE, NANO_HEAD)

    def make() -> CvTracker:
        params = cls.Params()
        params.backbone = backbone
        params.neckhead = head
        return cls.create(params)

    return OpenCVTracker("nano", make, has_score=True)


def create_vit(models_dir: str | os.PathLike[str] | None = None, **_: object) -> OpenCVTracker:
    cls = _opencv_class("vit", "TrackerVit", "install OpenCV 4.9 or newer")
    (net,) = _model_files("vit", models_dir, VIT_MODEL)

    def make() -> CvTracker:
        params = cls.Params()
        params.net = net
        return cls.create(params)

    return OpenCVTracker("vit", make, has_score=True)
