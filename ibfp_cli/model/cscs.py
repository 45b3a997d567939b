"""CSCS: compressed-space channel selection (paper Sec. III-B)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CSCS(nn.Module):
    """Re-weights a template feature Fz channel-wise from the current search feature Ux.

        W = conv(gap(Ux)) + conv(gmp(Ux))   search vector projected to eta * C
        A = W *dw conv(Fz)                  template projected to eta * C, re-weighted
        G = conv(A) + Fz                    back to C channels, residual
    A sigmoid bounds W to (0, 1), as in channel attention (spec 3: details left open).
    """

    def __init__(self, channels: int, search_channels: int, eta: float) -> None:
        super().__init__()
        compressed = max(1, int(round(channels * eta)))
        self.w_avg = nn.Conv2d(search_channels, compressed, 1)
        self.w_max = nn.Conv2d(search_channels, compressed, 1)
        self.compress = nn.Conv2d(channels, compressed, 1)
        self.expand = nn.Conv2d(compressed, channels, 1)

    def forward(self, Fz: torch.Tensor, Ux: torch.Tensor) -> torch.Tensor:
        # Fz: (B, C, k, k) template kernel; Ux: (B, Cs, H, W) search feature -> G: (B, C, k, k)
        W = torch.sigmoid(self.w_avg(F.adaptive_avg_pool2d(Ux, 1)) + self.w_max(F.adaptive_max_pool2d(Ux, 1)))
        A = W * self.compress(Fz)
        return self.expand(A) + Fz
