"""NanoTrack v2 as a teacher: its box on each training pair, in the student's crop pixels.

Issue 26.4 names distillation from NanoTrack's maps on the same crops as a lever (its ONNX files
in `../shared/models` are a training signal only, never needed to track). Its windows are cut
from each pair's crops as its tracker cuts them (`tracking.nano_network`), the search window
centred where the student's search crop is, so the target's offset from the centre is the one
the student sees. What is taken is its box at the peak of its score: on validation footage
that box fits the target better than the campaign's (weights/TRAINING.md, 2026-12-07), its
boxes at other cells and its broad score map do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..boxes import ious
from ..errors import IBFPError, TrackerUnavailable
from ..tracking.nano_network import RAW_PEAK, NanoNetwork
from .data import ImageBatch


@dataclass
class TeacherBoxes:
    """The teacher's box on each pair's search crop: boxes (B, 4) x, y, w, h in the student's
    search-crop pixels, at the peak of its score; found (B,) bool where that box overlaps the
    true one by at least `found_iou` (a box of another object, or of no object, teaches nothing)."""

    boxes: torch.Tensor
    found: torch.Tensor


class NanoTeacher:
    """NanoTrack v2's box for each pair of a training batch."""

    def __init__(self, models_dir: Path | None = None) -> None:
        try:
            self.network = NanoNetwork(models_dir)
        except TrackerUnavailable as e:
            raise IBFPError(
                f"the recipe distils from NanoTrack: {e} (`campaign run --opencv-models DIR`; a trial reads the data "
                "folder's sibling models/)"
            ) from None

    def boxes(self, batch: ImageBatch, found_iou: float) -> TeacherBoxes:
        """Its box at the raw peak of its score on each pair of `batch`, its search window cut for
        the template box's size around the centre of the student's search crop."""
        crop = batch.search.shape[-1]
        sizes = batch.template_boxes[:, 2:]
        centred = torch.cat([crop / 2 - sizes / 2, sizes], 1)
        found, _ = self.network.boxes(batch.template, batch.template_boxes, batch.search, centred, pick=RAW_PEAK)
        overlap = torch.from_numpy(ious(found.numpy(), batch.search_boxes.numpy()))
        return TeacherBoxes(found, overlap >= found_iou)
