"""Tracking results as plain records, independent of any file format."""

from __future__ import annotations

from dataclasses import dataclass, field

from .boxes import Box

DEFAULT_LABEL = "object"


@dataclass(frozen=True, slots=True)
class BoxRecord:
    """One object's box on one frame.

    frame: 0-based decode index; time_s: presentation time from the frame's pts
    (None where a format does not store it); score: tracker confidence in [0, 1];
    lost: the tracker lost the target on this frame; keyframe: the box was given
    by a person (a seed or a correction), not tracked.
    """

    frame: int
    id: int
    box: Box
    score: float = 1.0
    lost: bool = False
    time_s: float | None = None
    label: str = DEFAULT_LABEL
    keyframe: bool = False


@dataclass(frozen=True, slots=True)
class VideoMeta:
    """What an annotation file knows of its video; None where the format does not store it."""

    name: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_count: int | None = None


@dataclass(slots=True)
class Annotations:
    """All boxes of one video, sorted by (frame, id).

    scored: the boxes carry the tracker's scores; False where the file they were read from
    stores none (every score is then the default 1, which says nothing).
    """

    video: VideoMeta
    records: list[BoxRecord] = field(default_factory=list)
    scored: bool = True

    def __post_init__(self) -> None:
        self.records.sort(key=lambda r: (r.frame, r.id))

    def ids(self) -> list[int]:
        return sorted({r.id for r in self.records})

    def track(self, track_id: int) -> list[BoxRecord]:
        """The records of one object, in frame order."""
        return [r for r in self.records if r.id == track_id]

    def labels(self) -> dict[int, str]:
        """Each track id's label."""
        return {r.id: r.label for r in self.records}
