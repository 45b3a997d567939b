"""Depth-wise cross-correlation and cropping template features to the target (spec 2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def dw_xcorr(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depth-wise correlation with "same" padding, as one grouped convolution.

    x: (B, C, H, W) search feature; kernel: (B, C, k, k) template, k odd -> (B, C, H, W).
    """
    if torch.onnx.is_in_onnx_export():
        return _dw_xcorr_graph(x, kernel)
    b, c, h, w = x.shape
    k = kernel.shape[-1]
    out = F.conv2d(x.reshape(1, b * c, h, w), kernel.reshape(b * c, 1, k, k), padding=k // 2, groups=b * c)
    return out.reshape(b, c, h, w)


class _SameConv(torch.autograd.Function):
    """Grouped convolution with "same" padding; exported as an ONNX Conv whose kernel size is
    read from the kernel input when the graph runs (auto_pad), so that size may vary."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:  # noqa: ARG004
        return F.conv2d(x, weight, padding=weight.shape[-1] // 2, groups=groups)

    @staticmethod
    def symbolic(g, x, weight, groups: int):  # noqa: ANN001, ANN205 (TorchScript graph values)
        return g.op("Conv", x, weight, group_i=groups, auto_pad_s="SAME_UPPER")  # odd k: pads k // 2 each side


def _dw_xcorr_graph(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """`dw_xcorr` for an exported graph, whose batch size and kernel size vary at run time.

    ONNX fixes a convolution's group count in the graph, so the batch cannot be folded into the
    channels as above. Instead every sample's channel c meets every sample's kernel c (groups = C,
    B output maps per channel) and the pairs of sample n with kernel n are kept: B x the work,
    which for the few objects of one video is small next to the head's convolutions.
    """
    b = x.shape[0]  # traced: the graph reads it at run time
    c, h, w = (int(v) for v in x.shape[1:])  # fixed by the crop size: constants in the graph
    weight = kernel.transpose(0, 1).flatten(0, 1).unsqueeze(1)  # (C * B, 1, k, k), channel-major
    out = _SameConv.apply(x, weight, c).unflatten(1, (c, -1))  # (B, C, B, H, W): sample, channel, kernel
    pairs = out.transpose(1, 2).flatten(0, 1)  # (B * B, C, H, W), row n * B + j
    return pairs.index_select(0, torch.arange(b) * (b + 1))  # rows n * B + n


def odd_cells(extent: float, minimum: int, maximum: int) -> int:
    """Odd number of cells covering `extent` cells, within [minimum, maximum]."""
    n = max(minimum, min(maximum, int(round(extent))))
    return n if n % 2 == 1 else (n + 1 if n + 1 <= maximum else n - 1)


def crop_template(
    feature: torch.Tensor, boxes: torch.Tensor, stride: int, min_cells: int, max_cells: int
) -> torch.Tensor:
    """Template kernels cropped to each target's extent, zero-padded to max_cells.

    feature: (B, C, H, W) template feature; boxes: (B, 4) x, y, w, h in crop pixels.
    Returns (B, C, max_cells, max_cells): each kernel is centred on its target's cell and
    zero outside an odd extent of round(w / stride) x round(h / stride) cells. Zero padding
    leaves "same" correlation unchanged, so batches may mix target sizes.
    """
    b, c, h, w = feature.shape
    half = max_cells // 2
    padded = F.pad(feature, (half, half, half, half))
    kernels = feature.new_zeros(b, c, max_cells, max_cells)
    for i in range(b):
        x, y, bw, bh = (float(v) for v in boxes[i])
        # cell j covers crop pixels [j * stride, (j + 1) * stride): centre cell of the target
        cx = min(max(int(math.floor((x + bw / 2) / stride)), 0), w - 1)
        cy = min(max(int(math.floor((y + bh / 2) / stride)), 0), h - 1)
        kw = odd_cells(bw / stride, min_cells, max_cells)
        kh = odd_cells(bh / stride, min_cells, max_cells)
        window = padded[i, :, cy : cy + max_cells, cx : cx + max_cells]
        top, left = half - kh // 2, half - kw // 2
        kernels[i, :, top : top + kh, left : left + kw] = window[:, top : top + kh, left : left + kw]
    return kernels


def trim_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """Drop all-zero border rows and columns symmetrically: the same `dw_xcorr` output, faster.
    Only for kernels that go straight into the correlation (any layer before it sees the border)."""
    k = kernel.shape[-1]
    nonzero = kernel.abs().sum(dim=(0, 1))
    rows = torch.nonzero(nonzero.sum(1)).flatten()
    cols = torch.nonzero(nonzero.sum(0)).flatten()
    if len(rows) == 0 or len(cols) == 0:
        return kernel
    margin = min(int(rows[0]), k - 1 - int(rows[-1]), int(cols[0]), k - 1 - int(cols[-1]))
    return kernel[..., margin : k - margin, margin : k - margin]
