"""Online branch (paper Sec. III-E, spec 4): adaptation layers and an online-fitted filter.

The first three layers adapt the stride-16 search feature and are trained offline with
the rest of the model. The fourth layer is the "online template": a filter initialised
from the adapted template feature around the target, then fitted during tracking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.grad import conv2d_weight

from .layers import conv_norm_relu
from .xcorr import crop_template, dw_xcorr

FILTER_EPS = 1e-6  # guards the filter normalisation against an all-zero template


class OnlineBranch(nn.Module):
    """Adaptation layers (offline-trained) plus filter helpers (online template)."""

    def __init__(self, cin: int, hidden: int, dim: int, layers: int, filter_size: int, norm_groups: int) -> None:
        super().__init__()
        adapt_layers = layers - 1  # the last of the paper's layers is the filter itself
        blocks: list[nn.Module] = [
            conv_norm_relu(cin if i == 0 else hidden, hidden, 3, norm_groups) for i in range(adapt_layers - 1)
        ]
        blocks.append(nn.Conv2d(hidden if adapt_layers > 1 else cin, dim, 1))
        self.adapt = nn.Sequential(*blocks)
        self.filter_size = filter_size

    def forward(self, x16: torch.Tensor) -> torch.Tensor:
        # x16: (B, C16, H, W) stride-16 feature -> adapted feature (B, D, H, W)
        return self.adapt(x16)

    def initial_filter(self, z: torch.Tensor, boxes: torch.Tensor, stride: int) -> torch.Tensor:
        """Filter from the adapted template feature around each target, scaled so its
        response on the template itself peaks at 1. z: (B, D, H, W) -> (B, D, k, k)."""
        k = self.filter_size
        f = crop_template(z, boxes, stride, k, k)
        energy = f.pow(2).sum(dim=(1, 2, 3), keepdim=True)
        return f / (energy + FILTER_EPS)


def filter_response(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Each sample's filter applied to its feature. x: (B, D, H, W), f: (B, D, k, k) -> (B, 1, H, W)."""
    if torch.onnx.is_in_onnx_export():  # the same sum, with a batch size the graph leaves open
        return dw_xcorr(x, f).sum(dim=1, keepdim=True)
    b, d, h, w = x.shape
    k = f.shape[-1]
    out = F.conv2d(x.reshape(1, b * d, h, w), f, padding=k // 2, groups=b)
    return out.reshape(b, 1, h, w)


def hinge_residual(s: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """Hinge residual: s - y where y >= tau; max(0, s) elsewhere (negatives only push down)."""
    return torch.where(y >= tau, s - y, F.relu(s))


def fit_filter(
    f: torch.Tensor,
    X: torch.Tensor,
    Y: torch.Tensor,
    weights: torch.Tensor,
    steps: int,
    regularization: float,
    tau: float,
) -> torch.Tensor:
    """Gauss-Newton steepest descent on the hinge least squares of one filter (no autograd).

    f: (1, D, k, k) filter; X: (N, D, H, W) memory features; Y: (N, 1, H, W) labels;
    weights: (N,) sample weights summing to 1, or (N, 1, H, W) weights per sample and cell.
    Minimises sum_i ||sqrt(w_i) hinge(f * X_i, Y_i)||^2 + regularization ||f||^2 with an exact
    step length.
    """
    k = f.shape[-1]
    w = weights.view(-1, 1, 1, 1) if weights.dim() == 1 else weights
    for _ in range(steps):
        s = F.conv2d(X, f, padding=k // 2)  # (N, 1, H, W)
        r = hinge_residual(s, Y, tau)
        active = ((Y >= tau) | (s > 0)).to(X.dtype)
        g = conv2d_weight(X, f.shape, w * r, padding=k // 2) + regularization * f
        q = F.conv2d(X, g, padding=k // 2) * active
        denominator = (w * q * q).sum() + regularization * (g * g).sum()
        if denominator <= 0:
            break
        f = f - ((g * g).sum() / denominator) * g
    return f
