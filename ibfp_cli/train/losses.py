"""Losses (paper Sec. III-D): focal hinge MSE on centre maps, masked L1 on box distances,
and a GIoU term on the same boxes (SiamCAR / FCOS practice; issue 11)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..config import LossConfig
from ..model.ibfp import Prediction
from ..model.labels import box_targets, gaussian_labels
from ..model.online import hinge_residual

if TYPE_CHECKING:
    from .teacher import TeacherBoxes


def focal_hinge_mse(s: torch.Tensor, y: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """y^gamma (s - y)^2 where y >= tau, alpha max(0, s)^2 elsewhere.

    The spec writes |s - y|; squared residuals match the branch's name (hinge MSE). The sum
    is divided by the number of positive points (as FCOS normalises its focal loss), so the
    few positives are not drowned by the many negatives.
    """
    positive = y >= cfg.tau
    weight = torch.where(positive, y.clamp(min=cfg.tau) ** cfg.gamma, torch.full_like(y, cfg.alpha))
    return (weight * hinge_residual(s, y, cfg.tau) ** 2).sum() / positive.sum().clamp(min=1)


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - generalised IoU of boxes given as l, t, r, b distances from the same point.

    pred, target: (..., 4) non-negative distances -> (...) losses in [0, 2].
    """
    pl, pt, pr, pb = pred.unbind(-1)
    tl, tt, tr, tb = target.unbind(-1)
    inter_w = (torch.minimum(pl, tl) + torch.minimum(pr, tr)).clamp(min=0)
    inter_h = (torch.minimum(pt, tt) + torch.minimum(pb, tb)).clamp(min=0)
    inter = inter_w * inter_h
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    hull = (torch.maximum(pl, tl) + torch.maximum(pr, tr)) * (torch.maximum(pt, tt) + torch.maximum(pb, tb))
    iou = inter / union.clamp(min=1e-6)
    return 1 - (iou - (hull - union) / hull.clamp(min=1e-6))


@dataclass
class LossTerms:
    total: torch.Tensor
    centre: torch.Tensor
    box: torch.Tensor
    giou: torch.Tensor
    online: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(v.detach()) for k, v in vars(self).items()}


def ibfp_loss(
    pred: Prediction,
    boxes: torch.Tensor,
    positive: torch.Tensor,
    strides: tuple[int, int],
    cfg: LossConfig,
    teacher: TeacherBoxes | None = None,
) -> LossTerms:
    """All terms for a batch. boxes: (B, 4) search-crop pixels; positive: (B,) bool
    (negative pairs get all-zero labels and no box loss); teacher: a second box target for the
    pairs whose teacher box was found (cfg.distill_weight; its term is in the total only)."""
    stride8, stride16 = strides
    size8, size16 = pred.centre.shape[-1], pred.online.shape[-1]
    keep = positive.float().view(-1, 1, 1, 1)
    y8 = gaussian_labels(boxes, size8, stride8, cfg.sigma) * keep
    y16 = gaussian_labels(boxes, size16, stride16, cfg.sigma) * keep
    centre = focal_hinge_mse(pred.centre.float(), y8, cfg)
    online = focal_hinge_mse(pred.online.float(), y16, cfg)
    targets, mask = box_targets(boxes, size8, stride8, cfg.box_region)
    mask = mask & positive.view(-1, 1, 1, 1)
    box, giou = box_terms(pred.ltrb, targets, mask, stride8)
    total = cfg.centre_weight * centre + cfg.box_weight * box + cfg.giou_weight * giou + cfg.online_weight * online
    if teacher is not None and cfg.distill_weight:
        taught, _ = box_targets(teacher.boxes, size8, stride8, cfg.box_region)
        l1, overlap = box_terms(pred.ltrb, taught, mask & teacher.found.view(-1, 1, 1, 1), stride8)
        total = total + cfg.distill_weight * (cfg.box_weight * l1 + cfg.giou_weight * overlap)
    return LossTerms(total, centre, box, giou, online)


def box_terms(
    ltrb: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked L1 (in cells) and GIoU loss of predicted distances ltrb (B, 4, H, W) against
    targets (B, 4, H, W) on the cells of mask (B, 1, H, W); zero (with a graph) where none."""
    if not mask.any():
        zero = ltrb.sum() * 0.0
        return zero, zero
    l1 = F.l1_loss(ltrb.float() / stride, targets / stride, reduction="none")
    box = (l1 * mask).sum() / (mask.sum() * 4)
    cells = mask.squeeze(1)  # (B, H, W)
    giou = giou_loss(ltrb.float().permute(0, 2, 3, 1)[cells], targets.permute(0, 2, 3, 1)[cells]).mean()
    return box, giou
