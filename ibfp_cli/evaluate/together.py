"""Sequences whose ground truth has several objects: every object seeded on its first annotated
frame and all tracked together, as `ibfp track` does with several `--box`es (issue 28).

Scored by the identity counts (`evaluate.identities`: switches, merged and wrong frames, the
share of track-frames confidently on their own object) and each object's AUC. IBFP tracks the
objects in one network batch and lets them know each other; other trackers run each object alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..annotate.pipeline import Seed, track_video
from ..boxes import Box
from ..errors import FormatError
from ..formats import read_annotations, write_annotations
from .datasets import Sequence
from .identities import IdentityCounts, confident, identity_counts
from .metrics import score_sequence

OBJECTS_SUFFIX = ".objects.csv"
"""A together run's boxes, beside the tracker's single-object predictions: `ibfp track`'s CSV."""


@dataclass(frozen=True)
class TogetherResult:
    """One tracker on one several-object sequence: identity counts and the objects' mean AUC."""

    tracker: str
    sequence: str
    objects: int
    counts: IdentityCounts
    auc: float


def seeds(sequence: Sequence) -> list[Seed]:
    """Each object's box on the first frame it is annotated on."""
    found = []
    for track, boxes in zip(sequence.object_ids, _objects(sequence)):
        first = int(np.flatnonzero(np.all(np.isfinite(boxes), axis=1))[0])
        found.append(Seed(Box(*(float(v) for v in boxes[first])), frame=first, id=track))
    return found


def track_together(tracker: str, options: Mapping[str, object], sequence: Sequence, out: Path) -> None:
    """Track every object of `sequence` together and write the boxes to `out` (atomically)."""
    if not isinstance(sequence.frames_source, Path):
        raise FormatError(f"sequence {sequence.name}: several objects are read from videos only")
    weights = options.get("weights")
    annotations = track_video(
        sequence.frames_source,
        seeds(sequence),
        tracker,
        device=str(options.get("device", "auto")),
        backend=str(options.get("backend", "auto")),
        weights=None if weights is None else Path(str(weights)),
        tracker_options={"tracker_config": options.get("tracker_config") or {}},
    )
    write_annotations(out, annotations, "csv")


def has_together(out: Path, sequence: Sequence) -> bool:
    """True if `out` holds a finished together run of every object of `sequence`."""
    if not out.is_file():
        return False
    try:
        return read_annotations(out, "csv").ids() == list(sequence.object_ids)
    except FormatError:
        return False


def score_together(tracker: str, sequence: Sequence, out: Path) -> TogetherResult:
    """Identity counts and mean AUC of a saved together run. A track is scored from the frame
    after its seed (as a single-object run from frame 1)."""
    truth = _objects(sequence)  # (M, N, 4)
    count, frames = truth.shape[:2]
    boxes = np.full((count, frames, 4), np.nan)
    scores = np.zeros((count, frames))
    lost = np.ones((count, frames), dtype=bool)
    row = {track: m for m, track in enumerate(sequence.object_ids)}
    for record in read_annotations(out, "csv").records:
        if record.frame < frames:
            m = row[record.id]
            boxes[m, record.frame], scores[m, record.frame], lost[m, record.frame] = (
                record.box.xywh(),
                record.score,
                record.lost,
            )
    counts = identity_counts(boxes, confident(scores, lost), truth)
    aucs = []
    for m, seed in enumerate(seeds(sequence)):
        unscored = ~np.all(np.isfinite(truth[m]), axis=1)
        unscored[: seed.frame + 1] = True  # before and on its seed frame
        aucs.append(score_sequence(boxes[m], truth[m], unscored).auc)
    return TogetherResult(tracker, sequence.name, count, counts, float(np.nanmean(aucs)))


def _objects(sequence: Sequence) -> np.ndarray:
    if sequence.objects is None:
        raise ValueError(f"sequence {sequence.name} has one object")
    return sequence.objects
