"""IBU: instance-based upsampling (paper Sec. III-A)."""

from __future__ import annotations

import torch
from torch import nn

from .layers import conv_norm_relu, norm_layer
from .xcorr import dw_xcorr

TCONV_KERNEL, TCONV_STRIDE, TCONV_PADDING = 4, 2, 1  # spec 3: doubles H and W exactly


class IBU(nn.Module):
    """Fuses a deep search feature U0 into the next shallower one F1, guided by the template.

    R  = T0 *dw U0                    depth-wise correlation, keeps U0's H x W
    V  = TConv(Conv(Concat(R, U0)))   conv halves channels; TConv doubles H, W, halves channels
    U1 = Conv(Concat(V, F1))          output 2H x 2W x c1
    """

    def __init__(self, c0: int, c1: int, norm_groups: int) -> None:
        super().__init__()
        self.conv = conv_norm_relu(2 * c0, c0, 3, norm_groups)
        self.tconv = nn.Sequential(
            nn.ConvTranspose2d(c0, c0 // 2, TCONV_KERNEL, TCONV_STRIDE, TCONV_PADDING, bias=False),
            norm_layer(c0 // 2, norm_groups),
            nn.ReLU(inplace=True),
        )
        self.fuse = conv_norm_relu(c0 // 2 + c1, c1, 3, norm_groups)

    def forward(self, T0: torch.Tensor, U0: torch.Tensor, F1: torch.Tensor) -> torch.Tensor:
        # T0: (B, c0, k, k); U0: (B, c0, H, W); F1: (B, c1, 2H, 2W) -> U1: (B, c1, 2H, 2W)
        R = dw_xcorr(U0, T0)
        V = self.tconv(self.conv(torch.cat([R, U0], dim=1)))
        return self.fuse(torch.cat([V, F1], dim=1))
