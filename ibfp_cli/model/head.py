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


class FusedHead(nn.Module):
    """A trained Head's two branches as one stack, for inference: the first layer as one conv with
    both branches' filters, the others as grouped convs (groups=2), norms concatenated (GroupNorm
    groups never straddle the two halves). Same outputs, half the layers to run."""

    def __init__(self, head: Head) -> None:
        super().__init__()
        self.stride = head.stride
        layers: list[nn.Module] = []
        for i, (c, b) in enumerate(zip(head.centre[:-1], head.box[:-1])):
            conv = _joined_conv(c[0], b[0], groups=1 if i == 0 else 2)
            layers += [conv, _joined_norm(c[1], b[1]), nn.ReLU(inplace=True)]
        last_c, last_b = head.centre[-1], head.box[-1]
        self.centre_channels = last_c.out_channels
        self.box_channels = last_b.out_channels
        pad = last_b.out_channels - last_c.out_channels  # grouped conv: equal outputs per group
        layers.append(_joined_conv(last_c, last_b, groups=2, pad_first=pad))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.layers(x)
        box = y[:, -self.box_channels :]
        ltrb = torch.exp(box.clamp(max=LOG_DISTANCE_CLAMP)) * self.stride
        return y[:, : self.centre_channels], ltrb


def _joined_conv(a: nn.Conv2d, b: nn.Conv2d, groups: int, pad_first: int = 0) -> nn.Conv2d:
    """a and b side by side: one conv on their shared input (groups=1) or on [a's input, b's input]
    (groups=2). a's filters are padded with `pad_first` zero filters."""
    wa = torch.cat([a.weight, a.weight.new_zeros(pad_first, *a.weight.shape[1:])])
    weight = torch.cat([wa, b.weight])
    cin = a.in_channels * groups
    conv = nn.Conv2d(cin, weight.shape[0], a.kernel_size, a.stride, a.padding, groups=groups, bias=a.bias is not None)
    conv.weight.data.copy_(weight)
    if a.bias is not None:
        conv.bias.data.copy_(torch.cat([a.bias, a.bias.new_zeros(pad_first), b.bias]))
    return conv


def _joined_norm(a: nn.Module, b: nn.Module) -> nn.Module:
    """Two norm layers as one over the concatenated channels."""
    if isinstance(a, nn.GroupNorm):
        norm = nn.GroupNorm(a.num_groups + b.num_groups, a.num_channels + b.num_channels, a.eps)
    else:
        norm = nn.BatchNorm2d(a.num_features + b.num_features, a.eps)
        norm.running_mean.copy_(torch.cat([a.running_mean, b.running_mean]))
        norm.running_var.copy_(torch.cat([a.running_var, b.running_var]))
    norm.weight.data.copy_(torch.cat([a.weight, b.weight]))
    norm.bias.data.copy_(torch.cat([a.bias, b.bias]))
    return norm.eval()
