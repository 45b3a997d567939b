"""Conv building blocks shared by the fusion modules (spec 3: 3x3 conv + norm + ReLU)."""

from __future__ import annotations

from torch import nn


def norm_layer(channels: int, groups: int) -> nn.Module:
    """BatchNorm when groups == 0, else GroupNorm (spec 3 leaves the choice open)."""
    return nn.BatchNorm2d(channels) if groups == 0 else nn.GroupNorm(min(groups, channels), channels)


def conv_norm_relu(cin: int, cout: int, kernel: int, groups: int) -> nn.Sequential:
    """kernel x kernel conv ("same" padding), norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False), norm_layer(cout, groups), nn.ReLU(inplace=True)
    )
