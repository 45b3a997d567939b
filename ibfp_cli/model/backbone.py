"""Backbones written for this project: ResNet18 (the paper's) and MobileNetV2.

Both return three feature maps at strides 8, 16 and 32 and use torchvision's parameter
names, so torchvision-format ImageNet state dicts load by key name.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsError

Features = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs), torchvision's names."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """ResNet18 without the classifier; returns layer2, layer3, layer4 (strides 8, 16, 32)."""

    out_channels = (128, 256, 512)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, 64, 128, 256, 512)
        for i in range(1, 5):
            stride = 1 if i == 1 else 2
            layer = nn.Sequential(BasicBlock(widths[i - 1], widths[i], stride), BasicBlock(widths[i], widths[i], 1))
            self.add_module(f"layer{i}", layer)

    def forward(self, x: torch.Tensor) -> Features:
        # x: (B, 3, H, W) normalised RGB -> (B,128,H/8,W/8), (B,256,H/16,W/16), (B,512,H/32,W/32)
        c8, c16 = self.to_stride16(x)
        return c8, c16, self.layer4(c16)

    def to_stride16(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stride-8 and stride-16 taps alone (what comes before `last_stage`)."""
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        c8 = self.layer2(x)
        return c8, self.layer3(c8)

    def last_stage(self) -> nn.Module:
        """The stride-16 tap -> the stride-32 tap (layer4)."""
        return self.layer4

    def frozen_prefix(self) -> list[nn.Module]:
        """Modules spec 7 keeps frozen: conv1 .. layer1."""
        return [self.conv1, self.bn1, self.layer1]

    @staticmethod
    def imagenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision's ResNet18 file minus the classifier (fc)."""
        return {k: v for k, v in state.items() if not k.startswith("fc.")}


class InvertedResidual(nn.Module):
    """MobileNetV2 block as one flat `conv` Sequential, the layout of the shipped ImageNet file:
    [1x1 expand, BN, ReLU6,] 3x3 depth-wise, BN, ReLU6, 1x1 project, BN."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


# (expansion t, channels c, repeats n, stride s): MobileNetV2 paper, Table 2.
MOBILENETV2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
MOBILENETV2_STEM = 32
MOBILENETV2_TAPS = (6, 13, 17)  # last block at stride 8, 16 and 32 (shared/weights/README.md)
MOBILENETV2_FROZEN = 4  # stem and blocks 1-3 (strides 2 and 4), like ResNet18's conv1 .. layer1


class MobileNetV2(nn.Module):
    """MobileNetV2 `features.0` .. `features.17`; returns the stride 8, 16 and 32 taps."""

    out_channels = (32, 96, 320)

    def __init__(self) -> None:
        super().__init__()
        stem = nn.Sequential(
            nn.Conv2d(3, MOBILENETV2_STEM, 3, 2, 1, bias=False),
            nn.BatchNorm2d(MOBILENETV2_STEM),
            nn.ReLU6(inplace=True),
        )
        blocks: list[nn.Module] = [stem]
        cin = MOBILENETV2_STEM
        for t, c, n, s in MOBILENETV2_SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> Features:
        # x: (B, 3, H, W) -> (B,32,H/8,W/8), (B,96,H/16,W/16), (B,320,H/32,W/32)
        c8, c16 = self.to_stride16(x)
        return c8, c16, self.last_stage()(c16)

    def to_stride16(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stride-8 and stride-16 taps alone (what comes before `last_stage`)."""
        taps = []
        for block in self.features[: MOBILENETV2_TAPS[1] + 1]:
            x = block(x)
            taps.append(x)
        return taps[MOBILENETV2_TAPS[0]], taps[MOBILENETV2_TAPS[1]]

    def last_stage(self) -> nn.Module:
        """The stride-16 tap -> the stride-32 tap (blocks 14 .. 17)."""
        return self.features[MOBILENETV2_TAPS[1] + 1 : MOBILENETV2_TAPS[2] + 1]

    def frozen_prefix(self) -> list[nn.Module]:
        """Blocks kept frozen (spec 7): everything before the stride-8 stage."""
        return list(self.features[:MOBILENETV2_FROZEN])

    @staticmethod
    def imagenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The shipped MobileNetV2 file minus `features.18` (the 1x1 conv to 1280, unused)."""
        return {k: v for k, v in state.items() if not k.startswith("features.18.")}


BACKBONES: dict[str, type[ResNet18] | type[MobileNetV2]] = {"resnet18": ResNet18, "mobilenetv2": MobileNetV2}


def build_backbone(name: str) -> ResNet18 | MobileNetV2:
    """A backbone by config name."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]()


def load_imagenet(backbone: ResNet18 | MobileNetV2, path: str | Path) -> None:
    """Load a torchvision-format ImageNet state dict by key name, strictly."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as e:
        raise WeightsError(f"cannot read backbone weights {path}: {e}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = type(backbone).imagenet_keys(state)
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsError(
            f"{path} does not fit {type(backbone).__name__}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )


# ImageNet normalisation of RGB in [0, 1] (the statistics both ImageNet files were trained with).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
