"""NanoTrack v2 as a teacher: its box on each training pair, in the student's crop pixels.

Issue 26.4 names distillation from NanoTrack's maps on the same crops as a lever (its ONNX files
in `../shared/models` are a training signal only, never needed to track). Each training pair's
crops are re-cut the way NanoTrack cuts its own (pysot convention: a template window of side
sqrt((w + c (w + h)) (h + c (w + h))) around the template box, a search window 255/127 times
that, centred where the student's search crop is) and run through its two graphs. What is taken
is its box at the peak of its score: measured on validation footage (weights/TRAINING.md,
2026-12-07) that box fits the target better than the student's (IoU 0.81 against 0.72), while its
boxes at other cells and its broad score map do not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import IBFPError
from ..tracking.denormals import denormal_mode_kept
from ..tracking.opencv_trackers import MODELS_ENV, NANO_BACKBONE, NANO_HEAD
from .data import ImageBatch


@dataclass(frozen=True)
class TeacherGeometry:
    """NanoTrack v2's crops and grid (its tracker's configuration)."""

    exemplar: int = 127  # template crop side (pysot EXEMPLAR_SIZE)
    instance: int = 255  # search crop side (pysot INSTANCE_SIZE)
    stride: int = 16  # its POINT.STRIDE
    score_size: int = 16  # (instance - exemplar) // stride + 1 + its BASE_SIZE 7
    context: float = 0.5  # pysot CONTEXT_AMOUNT: the template window's margin, a share of w + h

    def points(self) -> torch.Tensor:
        """Each score cell's offset from the search crop's centre, teacher pixels: (score_size,)."""
        return (torch.arange(self.score_size, dtype=torch.float32) - self.score_size // 2) * self.stride

    def template_side(self, boxes: torch.Tensor) -> torch.Tensor:
        """Side of the template window around each box (B, 4) x, y, w, h -> (B,)."""
        margin = self.context * (boxes[:, 2] + boxes[:, 3])
        return torch.sqrt((boxes[:, 2] + margin) * (boxes[:, 3] + margin))


@dataclass
class TeacherBoxes:
    """The teacher's box on each pair's search crop: boxes (B, 4) x, y, w, h in the student's
    search-crop pixels, at the peak of its score; found (B,) bool where that box overlaps the
    true one by at least `found_iou` (a box of another object, or of no object, teaches nothing)."""

    boxes: torch.Tensor
    found: torch.Tensor


def windows(images: torch.Tensor, centres: torch.Tensor, sides: torch.Tensor, out: int) -> torch.Tensor:
    """Square windows of `images` (B, 3, S, S), centred at `centres` (B, 2) with sides `sides`
    (B,) in their pixels, resized to out x out; outside the image, each image's mean colour
    (pysot pads with it). -> (B, 3, out, out)."""
    size = images.shape[-1]
    mean = images.mean(dim=(2, 3), keepdim=True)
    theta = torch.zeros(len(images), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = sides / size
    theta[:, :, 2] = 2 * centres / size - 1
    grid = F.affine_grid(theta, [len(images), 3, out, out], align_corners=False)
    return F.grid_sample(images - mean, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + mean


class NanoTeacher:
    """NanoTrack v2's two ONNX graphs, run one pair at a time (their shapes are fixed to one)."""

    def __init__(self, models_dir: Path | None = None, geometry: TeacherGeometry | None = None) -> None:
        import onnxruntime as ort

        candidates = [models_dir, Path(os.environ[MODELS_ENV]) if os.environ.get(MODELS_ENV) else None]
        found = [f for f in candidates if f is not None and all((f / n).is_file() for n in (NANO_BACKBONE, NANO_HEAD))]
        if not found:
            raise IBFPError(
                f"distillation needs NanoTrack's {NANO_BACKBONE} and {NANO_HEAD}: "
                f"put them in the data folder's sibling models/ or name their folder in ${MODELS_ENV}"
            )
        folder = found[0]
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        with denormal_mode_kept():
            self.backbone = ort.InferenceSession(_any_side(folder / NANO_BACKBONE), options, ["CPUExecutionProvider"])
            self.head = ort.InferenceSession(str(folder / NANO_HEAD), options, ["CPUExecutionProvider"])
        self.geometry = geometry or TeacherGeometry()

    def raw(self, template: torch.Tensor, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Its outputs on its own crops: template (B, 3, 127, 127) and search (B, 3, 255, 255), RGB
        0..255 -> foreground probability (B, 16, 16) and l, t, r, b (B, 4, 16, 16), teacher pixels."""
        scores, boxes = [], []
        for z, x in zip(_bgr(template), _bgr(search)):
            (fz,) = self.backbone.run(None, {"input": z[None]})
            (fx,) = self.backbone.run(None, {"input": x[None]})
            cls, loc = self.head.run(None, {"input1": fz, "input2": fx})
            scores.append(torch.from_numpy(cls[0]).softmax(0)[1])
            boxes.append(torch.from_numpy(loc[0]))
        return torch.stack(scores), torch.stack(boxes)

    @torch.no_grad()
    def boxes(self, batch: ImageBatch, found_iou: float) -> TeacherBoxes:
        """The teacher's box at the peak of its score on each pair of `batch`, in the student's
        search-crop pixels (its window centred on the student's crop, so the target's offset
        from the centre is the one the student sees)."""
        g = self.geometry
        crop = batch.search.shape[-1]
        side_z = g.template_side(batch.template_boxes)
        centre_z = batch.template_boxes[:, :2] + batch.template_boxes[:, 2:] / 2
        side_x = side_z * g.instance / g.exemplar
        centre_x = torch.full((len(side_x), 2), crop / 2)
        score, ltrb = self.raw(
            windows(batch.template, centre_z, side_z, g.exemplar), windows(batch.search, centre_x, side_x, g.instance)
        )
        peak = score.flatten(1).argmax(1)  # (B,)
        row, col = peak // g.score_size, peak % g.score_size
        left, top, right, bottom = ltrb[torch.arange(len(peak)), :, row, col].unbind(1)
        px, py = g.points()[col], g.points()[row]
        scale = side_x / g.instance  # student pixels per teacher pixel
        boxes = torch.stack([px - left, py - top, left + right, top + bottom], 1) * scale[:, None]
        boxes[:, :2] += crop / 2
        return TeacherBoxes(boxes, box_iou(boxes, batch.search_boxes) >= found_iou)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes (B, 4) x, y, w, h, pair by pair -> (B,)."""
    w = (torch.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    h = (torch.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = w * h
    return inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter).clamp(min=1e-6)


def _bgr(images: torch.Tensor) -> np.ndarray:
    """RGB 0..255 float crops (B, 3, S, S) as NanoTrack reads them: BGR, float32, not normalised."""
    return np.ascontiguousarray(images.flip(1).numpy(), dtype=np.float32)


def _any_side(path: Path) -> bytes:
    """The backbone graph with its input's height and width left free (its file fixes them to the
    search crop's 255; OpenCV, which it was written for, runs the template crop through it too)."""
    import onnx

    model = onnx.load(str(path))
    del model.graph.value_info[:]  # shapes inferred for 255 only
    for value in (*model.graph.input, *model.graph.output):
        for axis in (2, 3):
            dim = value.type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_value")
            dim.dim_param = f"{value.name}_{axis}"
    return model.SerializeToString()
