"""A generated clip with two moving objects, their true boxes, and boxes as a tracker might
give them: for the correction page's tests, its frame-latency benchmark and the README's
screenshot of it."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from ..annotate.keyframes import KEYFRAME_SCORE
from ..annotations import Annotations, BoxRecord, VideoMeta
from ..boxes import Box
from ..media.synthetic import SyntheticSpec, synthetic_sequence
from ..media.video import VideoWriter

OBJECT_FRACTION = 0.15
"""Each object's first-frame width and height as a share of the frame's: large enough to see
and grab at 320x240, small enough that the two rarely cover each other."""
SECOND_SEED_OFFSET = 1
"""The second object is the first spec's clip with the next seed: another texture and path."""
CONFIDENT_SCORE = 0.9
DOUBTFUL_SCORE = 0.2
"""Scores of `sample_annotations`' boxes: on either side of review's default threshold (0.5)."""


def two_object_spec(
    width: int, height: int, frames: int, seed: int = 0, noise: float = SyntheticSpec.noise
) -> SyntheticSpec:
    """The first object's clip; the second is the same spec with the next seed."""
    size = (round(width * OBJECT_FRACTION), round(height * OBJECT_FRACTION))
    return SyntheticSpec(width=width, height=height, frames=frames, object_size=size, noise=noise, seed=seed)


def write_two_object_clip(
    path: str | os.PathLike[str],
    width: int,
    height: int,
    frames: int,
    seed: int = 0,
    noise: float = SyntheticSpec.noise,
) -> dict[int, np.ndarray]:
    """Write an H.264 clip with objects 1 and 2 and return each one's (frames, 4) xywh boxes.

    Object 2 is pasted over object 1's clip (its box holds exactly its texture), so where the
    two meet, object 2 is in front. `noise` is the pixel noise's standard deviation (0 makes
    small screenshots).
    """
    first = two_object_spec(width, height, frames, seed, noise)
    frames_1, boxes_1 = synthetic_sequence(first)
    frames_2, boxes_2 = synthetic_sequence(replace(first, seed=seed + SECOND_SEED_OFFSET))
    with VideoWriter(path, width, height, first.fps) as writer:
        for image, other, box in zip(frames_1, frames_2, boxes_2.astype(np.int64), strict=True):
            x, y, w, h = box
            image[y : y + h, x : x + w] = other[y : y + h, x : x + w]
            writer.write(image)
    return {1: boxes_1, 2: boxes_2}


def sample_annotations(
    video_name: str, width: int, truth: dict[int, np.ndarray], drift: tuple[int, int], shift: float
) -> Annotations:
    """Boxes as a tracker might give them for a clip `width` px wide: each object's true box
    scored CONFIDENT_SCORE and seeded on frame 0 (a keyframe), except object 1 on frames
    drift[0]..drift[1], moved `shift` px right (kept inside the frame) and scored DOUBTFUL_SCORE."""
    first, last = drift
    records = []
    for track_id, boxes in truth.items():
        for frame, (x, y, w, h) in enumerate(boxes):
            if frame == 0:
                records.append(BoxRecord(frame, track_id, Box(x, y, w, h), KEYFRAME_SCORE, keyframe=True))
            elif track_id == 1 and first <= frame <= last:
                records.append(BoxRecord(frame, track_id, Box(min(x + shift, width - w), y, w, h), DOUBTFUL_SCORE))
            else:
                records.append(BoxRecord(frame, track_id, Box(x, y, w, h), CONFIDENT_SCORE))
    return Annotations(VideoMeta(video_name), records)
