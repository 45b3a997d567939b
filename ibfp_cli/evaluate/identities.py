"""Several objects in one video: identity switches and merged frames (issue 28).

Each track is seeded on one ground-truth object. On a frame, a track covers the object its box
overlaps most, if by at least MATCH_IOU; a track counts only where it is confident (not lost,
score at least review's default threshold), since a doubtful box is one a person is shown anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..annotate.review import DEFAULT_THRESHOLD
from ..boxes import ious

MATCH_IOU = 0.3
"""A box covers an object it overlaps by this much: looser than PASCAL's 0.5 so that a box of a
poor size still counts as on its object, strict enough that a box between two people of ~40 px
covers neither."""


@dataclass(frozen=True)
class IdentityCounts:
    """Over one clip: `switches`, times a confident track moved to another object than the one it
    last covered (its seed object at first); `merged_frames`, frames on which two or more
    confident tracks cover one object; `wrong_frames`, confident track-frames covering another
    object than the track's own; `crossings`, times two objects' true boxes start to overlap;
    `own_frames`, confident track-frames covering the track's own object (the frames a person
    need not look at), out of `track_frames`."""

    switches: int
    merged_frames: int
    wrong_frames: int
    crossings: int
    own_frames: int
    track_frames: int


def covered(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(tracks, frames) index of the object each box covers, -1 for none. boxes: (tracks,
    frames, 4), truth: (objects, frames, 4), both x, y, w, h; NaN truth covers nothing."""
    tracks, frames = boxes.shape[:2]
    overlap = np.stack([ious(boxes[t], truth[o]) for t in range(tracks) for o in range(len(truth))])
    overlap = overlap.reshape(tracks, len(truth), frames)
    overlap = np.nan_to_num(overlap, nan=0.0)
    best = overlap.argmax(axis=1)  # (tracks, frames)
    return np.where(overlap.max(axis=1) >= MATCH_IOU, best, -1)


def confident(scores: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """Boxes review would not list: not lost and scored at least its default threshold."""
    return ~np.asarray(lost, dtype=bool) & (np.asarray(scores) >= DEFAULT_THRESHOLD)


def identity_counts(boxes: np.ndarray, sure: np.ndarray, truth: np.ndarray) -> IdentityCounts:
    """Counts of one clip. boxes: (tracks, frames, 4), track t seeded on object t; sure:
    (tracks, frames) bool, the confident boxes; truth: (objects, frames, 4), objects >= tracks."""
    on = np.where(sure, covered(boxes, truth), -1)  # (tracks, frames)
    switches = 0
    for t, track in enumerate(on):
        last = t
        for obj in track[track >= 0]:
            switches += int(obj != last)
            last = obj
    merged = sum(int(np.any(np.bincount(frame[frame >= 0], minlength=len(truth)) > 1)) for frame in on.T)
    own = np.arange(len(boxes))[:, None]
    wrong = int(np.sum((on >= 0) & (on != own)))
    return IdentityCounts(switches, merged, wrong, crossings(truth), int(np.sum(on == own)), on.size)


def crossings(truth: np.ndarray) -> int:
    """Times two objects' boxes start to overlap (including on frame 0). truth: (objects, frames, 4)."""
    count = 0
    for a in range(len(truth)):
        for b in range(a + 1, len(truth)):
            touching = ious(truth[a], truth[b]) > 0
            count += int(touching[0]) + int(np.sum(touching[1:] & ~touching[:-1]))
    return count
