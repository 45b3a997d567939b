"""Train/validation split of exported frames: whole videos or whole stretches go to one side.

Neighbouring frames of one video look almost alike; a split that puts some in train and
others in val measures memory, not generalisation. Here the unit of the split is a whole
video or a stretch of `segment_frames` consecutive frames. Units are ranked by a hash of
(seed, video, stretch), so the split is the same on every run and machine, and adding a
video moves at most the boundary unit of the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..errors import IBFPError

SplitBy = Literal["video", "segment"]
SPLIT_BY: tuple[str, ...] = ("video", "segment")
Side = Literal["train", "val"]

DEFAULT_VAL_FRACTION = 0.2
"""The usual 80/20 hold-out."""
DEFAULT_SEGMENT_FRAMES = 300
"""10 s at 30 frames/s: long enough that a stretch's ends are far from most of its frames."""
HASH_BYTES = 8
"""Bytes of the SHA-256 digest used as a unit's rank (64 bits: ties are practically impossible)."""


@dataclass(frozen=True)
class SplitConfig:
    """How frames are split: the fraction of units for validation, the unit, and the seed."""

    val: float = DEFAULT_VAL_FRACTION
    by: SplitBy = "segment"
    segment_frames: int = DEFAULT_SEGMENT_FRAMES
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.val < 1.0:
            raise IBFPError(f"validation fraction {self.val} must be at least 0 and below 1")
        if self.by not in SPLIT_BY:
            raise IBFPError(f"unknown split unit {self.by!r}; use one of {', '.join(SPLIT_BY)}")
        if self.segment_frames < 1:
            raise IBFPError(f"segment length {self.segment_frames} must be 1 frame or more")


Unit = tuple[str, int]
"""A split unit: (video name, stretch index); the stretch index is 0 when splitting by video."""


def unit_of(video: str, frame: int, config: SplitConfig) -> Unit:
    """The unit a frame belongs to."""
    return (video, frame // config.segment_frames if config.by == "segment" else 0)


def val_units(units: Iterable[Unit], config: SplitConfig) -> frozenset[Unit]:
    """The units that go to validation: round(val x count) of them, at least one when val > 0
    and there are two units or more. A single unit cannot give both sides frames: it goes to
    train, and none to validation (`no_split_reason` says why)."""
    distinct = sorted(set(units))
    if config.val == 0 or len(distinct) < 2:
        return frozenset()
    count = min(max(round(config.val * len(distinct)), 1), len(distinct) - 1)
    ranked = sorted(distinct, key=lambda unit: _rank(unit, config.seed))
    return frozenset(ranked[:count])


def no_split_reason(config: SplitConfig) -> str:
    """Why a split asking for validation (val > 0) got none: there was a single unit."""
    fix = "--split-by segment" if config.by == "video" else "a smaller --segment-frames"
    return (
        f"no validation split was possible: --val {config.val:g} needs at least 2 {config.by}s, "
        f"but there is one, so everything is in train (for a split, give {fix}; --val 0 asks for none)"
    )


def _rank(unit: Unit, seed: int) -> bytes:
    video, stretch = unit
    return hashlib.sha256(f"{seed}\0{video}\0{stretch}".encode()).digest()[:HASH_BYTES]
