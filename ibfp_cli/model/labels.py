"""Targets on a feature grid: Gaussian centre labels (training and the online branch at
inference) and l, t, r, b box distances (training)."""

from __future__ import annotations

import torch


def cell_centres(size: int, stride: int, device: torch.device | None = None) -> torch.Tensor:
    """Crop-pixel coordinate of each cell's centre: cell j covers [j * stride, (j + 1) * stride)."""
    return (torch.arange(size, device=device, dtype=torch.float32) + 0.5) * stride


def gaussian_labels(boxes: torch.Tensor, size: int, stride: int, sigma: float) -> torch.Tensor:
    """Gaussian centred on each box, sigma = `sigma` times the box's side (at least half a cell).

    boxes: (B, 4) x, y, w, h crop pixels -> (B, 1, size, size) in [0, 1].
    """
    c = cell_centres(size, stride, boxes.device)
    cx, cy = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    sx = (sigma * boxes[:, 2]).clamp(min=stride / 2)
    sy = (sigma * boxes[:, 3]).clamp(min=stride / 2)
    gx = torch.exp(-0.5 * ((c[None, :] - cx[:, None]) / sx[:, None]) ** 2)  # (B, W)
    gy = torch.exp(-0.5 * ((c[None, :] - cy[:, None]) / sy[:, None]) ** 2)  # (B, H)
    return (gy[:, :, None] * gx[:, None, :]).unsqueeze(1)


def box_targets(boxes: torch.Tensor, size: int, stride: int, region: float) -> tuple[torch.Tensor, torch.Tensor]:
    """l, t, r, b from each cell centre to the box sides, and the mask of cells trained on.

    The mask keeps cells within region * w horizontally and region * h vertically of the box
    centre (paper Table II), and always the cell holding the centre.
    boxes: (B, 4) -> targets (B, 4, size, size), mask (B, 1, size, size) bool.
    """
    c = cell_centres(size, stride, boxes.device)
    x, y, w, h = boxes.unbind(1)
    px = c[None, None, :].expand(len(boxes), size, size)
    py = c[None, :, None].expand(len(boxes), size, size)
    x, y, w, h = (v[:, None, None] for v in (x, y, w, h))
    targets = torch.stack([px - x, py - y, x + w - px, y + h - py], dim=1)
    near = ((px - x - w / 2).abs() <= region * w) & ((py - y - h / 2).abs() <= region * h)
    centre_cell = ((px - x - w / 2).abs() <= stride / 2) & ((py - y - h / 2).abs() <= stride / 2)
    return targets, (near | centre_cell).unsqueeze(1)
