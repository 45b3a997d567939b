"""Prediction head: centre map and l, t, r, b box distances (paper Sec. III-C)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import conv_norm_relu

# Box distances start near a typical half target size: with a 5x context crop of 288 px the
# target is about 288 / 5 = 58 px wide, so l, t, r, b ~ 29 px (spec 1).
TYPICAL_HALF_SIZE_PX = 29.0
LOG_DISTANCE_CLAMP = 6.0  # exp(6) strides is far beyond any crop: bounds fp16 overflow
CENTRE_PRIOR = 0.01  # initial centre score, so early training is not flooded by negatives


class Head(nn.Module):
    """Two branches of `layers` convs: centre (1 channel) and box (4 channels, >= 0, pixels)."""

    def __init__(self, cin: int, hidden: int, layers: int, stride: int, norm_groups: int) -> None:
        super().__init__()
        self.stride = stride

        def branch(cout: int) -> nn.Sequential:
            blocks = [conv_norm_relu(cin if i == 0 else hidden, hidden, 3, norm_groups) for i in range(layers - 1)]
            return nn.Sequential(*blocks, nn.Conv2d(hidden, cout, 3, 1, 1))

        self.centre = branch(1)
        self.box = branch(4)
        nn.init.constant_(self.centre[-1].bias, CENTRE_PRIOR)
        nn.init.constant_(self.box[-1].bias, math.log(TYPICAL_HALF_SIZE_PX / stride))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, C, H, W) correlation -> centre score (B, 1, H, W), l,t,r,b pixels (B, 4, H, W)
        ltrb = torch.exp(self.box(x).clamp(max=LOG_DISTANCE_CLAMP)) * self.stride
        return self.centre(x), ltrb
