"""Errors a user can fix. The CLI prints each as one line on stderr and exits non-zero."""

from __future__ import annotations

from pathlib import Path


class IBFPError(Exception):
    """Base class: bad input or environment, reported without a traceback."""


class VideoError(IBFPError):
    """A video is missing, unreadable, truncated or has no video stream."""


class BoxError(IBFPError):
    """A box is malformed, degenerate or outside the frame."""


class FormatError(IBFPError):
    """An annotation file or format name is malformed or unknown."""


class OtherFormatError(FormatError):
    """A file that did not read in the format asked for reads as another, `likely`; the CLI
    adds the option of the running command that names that file's format."""

    def __init__(self, message: str, path: Path, likely: str) -> None:
        super().__init__(message)
        self.path = path
        self.likely = likely


class WeightsError(IBFPError):
    """A weights file is missing or was made for another architecture or version."""


class SettingError(IBFPError):
    """A KEY=VALUE setting names no configuration field or its value does not parse."""


class TrackerUnavailable(IBFPError):
    """A tracker needs something this installation lacks (an OpenCV build, model files)."""
