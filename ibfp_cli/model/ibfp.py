"""The IBFP network: backbone, CSCS -> IBU -> CSCS -> IBU pyramid, head and online branch."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .backbone import IMAGENET_MEAN, IMAGENET_STD, Features, build_backbone
from .cscs import CSCS
from .head import FusedHead, Head
from .ibu import IBU
from .online import OnlineBranch, filter_response
from .xcorr import crop_template, dw_xcorr


@dataclass
class Template:
    """Per-object template state, computed once (pysot's `template()`)."""

    T8: torch.Tensor  # (B, c8, k, k) shallow template kernel
    T16: torch.Tensor  # (B, c16, k, k)
    T32: torch.Tensor  # (B, c32, k, k) deep template kernel
    online_filter: torch.Tensor  # (B, D, f, f) the online template

    @staticmethod
    def stack(templates: Sequence[Template]) -> Template:
        """Several objects' templates as one batch. T8 kernels may differ in size (trimmed):
        they are zero-padded to the largest, which leaves their "same" correlation unchanged.
        T16, T32 and the online filter keep their trained sizes, so they agree already.
        A single template is returned as it is."""
        if len(templates) == 1:
            return templates[0]
        k = max(t.T8.shape[-1] for t in templates)
        T8 = torch.cat([F.pad(t.T8, [(k - t.T8.shape[-1]) // 2] * 4) for t in templates])
        return Template(
            T8,
            torch.cat([t.T16 for t in templates]),
            torch.cat([t.T32 for t in templates]),
            torch.cat([t.online_filter for t in templates]),
        )


@dataclass
class Prediction:
    centre: torch.Tensor  # (B, 1, H8, W8) offline centre score
    ltrb: torch.Tensor  # (B, 4, H8, W8) distances to the box sides, crop pixels
    online: torch.Tensor  # (B, 1, H16, W16) online response
    online_feature: torch.Tensor  # (B, D, H16, W16) adapted stride-16 feature

    def select(self, n: int) -> Prediction:
        """Sample n of the batch, as a batch of one."""
        return Prediction(*(v[n : n + 1] for v in (self.centre, self.ltrb, self.online, self.online_feature)))


class IBFP(nn.Module):
    """Instance-based feature pyramid tracker network (Pi et al.)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c8, c16, c32 = config.channels
        self.backbone = build_backbone(config.backbone)
        # 1x1 projections to the fusion widths, where the backbone's widths differ (spec: weights)
        self.neck = nn.ModuleList(
            nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)
            for cin, cout in zip(self.backbone.out_channels, config.channels)
        )
        g = config.norm_groups
        self.cscs32 = CSCS(c32, c32, config.cscs_eta)  # before the first IBU (deep level)
        self.ibu32 = IBU(c32, c16, g)  # 9x9 -> 18x18
        self.cscs16 = CSCS(c16, c16, config.cscs_eta)  # before the second IBU
        self.ibu16 = IBU(c16, c8, g)  # 18x18 -> 36x36
        self.head = Head(c8, config.head_hidden, config.head_layers, config.strides[0], g)
        self.online = OnlineBranch(
            c16, config.online_hidden, config.online_dim, config.online_layers, config.online_filter_size, g
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) RGB 0..255 -> ImageNet-normalised input."""
        return (images - self.mean) / self.std

    def backbone_features(self, images: torch.Tensor) -> Features:
        """images: (B, 3, S, S) RGB 0..255 -> raw backbone taps at strides 8, 16, 32."""
        return self.backbone(self.normalize(images))

    def project(self, raw: Features) -> Features:
        """Raw taps -> fusion widths (c8, c16, c32)."""
        return tuple(neck(x) for neck, x in zip(self.neck, raw))  # type: ignore[return-value]

    def template(self, z: Features, boxes: torch.Tensor) -> Template:
        """Template kernels from projected template features; boxes (B, 4) in crop pixels."""
        cfg = self.config
        kernels = [
            crop_template(f, boxes, s, cfg.template_min_cells, m)
            for f, s, m in zip(z, cfg.strides, cfg.template_max_cells)
        ]
        online_filter = self.online.initial_filter(self.online(z[1]), boxes, cfg.online_stride)
        return Template(kernels[0], kernels[1], kernels[2], online_filter)

    def for_inference(self) -> IBFP:
        """A copy for inference only, with the head's branches fused (FusedHead): the same
        outputs for less work (measured: the head about 25% faster on 2 CPU cores)."""
        fused = copy.deepcopy(self).eval()
        fused.head = FusedHead(self.head).eval()
        return fused

    def forward(self, template: Template, x: Features) -> Prediction:
        """Predict on projected search features x = (S8, S16, S32)."""
        S8, S16, S32 = x
        T0 = self.cscs32(template.T32, S32)
        U = self.ibu32(T0, S32, S16)  # (B, c16, 2H, 2W)
        T1 = self.cscs16(template.T16, U)
        U = self.ibu16(T1, U, S8)  # (B, c8, 4H, 4W)
        centre, ltrb = self.head(dw_xcorr(U, template.T8))
        feature = self.online(S16)
        return Prediction(centre, ltrb, filter_response(feature, template.online_filter), feature)
