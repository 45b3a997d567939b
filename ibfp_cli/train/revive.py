"""Dead channels of the fusion and head brought back to life (weights/TRAINING.md, 2026-12-06).

A channel is dead when its BatchNorm has seen it constant (running variance ~0) and its scale
has decayed with it: it carries nothing, and nothing sends it a gradient to change that. Revived,
its producing filters are drawn afresh, its norm reset, and its consumer's weights on it zeroed,
so the network computes what it did (up to the dead channel's constant) and the consumer learns
to use the new channel from the first step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..model.ibfp import IBFP

DEAD_VARIANCE = 1e-6  # running variance under which a channel no longer varies over the data
DEAD_SCALE = 1e-3  # BatchNorm scale under which it no longer passes anything on


@dataclass(frozen=True)
class Link:
    """A conv, the BatchNorm on its output, and the layer that reads its channels."""

    producer: nn.Conv2d | nn.ConvTranspose2d
    norm: nn.BatchNorm2d
    consumer: nn.Conv2d | nn.ConvTranspose2d


def links(model: IBFP) -> list[Link]:
    """The producer -> norm -> consumer chains of the fusion (IBU conv, transposed conv) and of
    the head's two branches (each hidden layer into the next)."""
    found = []
    for ibu in (model.ibu32, model.ibu16):
        found.append(Link(ibu.conv[0], ibu.conv[1], ibu.tconv[0]))
        found.append(Link(ibu.tconv[0], ibu.tconv[1], ibu.fuse[0]))  # V comes first in cat([V, F1])
    for branch in (model.head.centre, model.head.box):
        for block, following in zip(branch[:-1], branch[1:]):
            consumer = following[0] if isinstance(following, nn.Sequential) else following
            found.append(Link(block[0], block[1], consumer))
    return [link for link in found if isinstance(link.norm, nn.BatchNorm2d)]


def channel_axes(layer: nn.Conv2d | nn.ConvTranspose2d) -> tuple[int, int]:
    """The weight's output- and input-channel axes: (cout, cin, k, k) for a conv, (cin, cout, k, k)
    for a transposed conv."""
    return (1, 0) if isinstance(layer, nn.ConvTranspose2d) else (0, 1)


def dead_channels(norm: nn.BatchNorm2d) -> torch.Tensor:
    """(C,) bool: the channels this norm has seen constant, with a scale decayed to ~0."""
    return (norm.running_var < DEAD_VARIANCE) & (norm.weight.abs() < DEAD_SCALE)


@torch.no_grad()
def revive_dead_channels(model: IBFP) -> int:
    """Re-initialise every dead channel of `model`'s fusion and head; how many there were."""
    revived = 0
    for link in links(model):
        dead = dead_channels(link.norm).nonzero().flatten()
        if not len(dead):
            continue
        fresh = torch.empty_like(link.producer.weight)
        nn.init.kaiming_normal_(fresh, mode="fan_out", nonlinearity="relu")  # torchvision's conv init
        out_axis = channel_axes(link.producer)[0]
        link.producer.weight.index_copy_(out_axis, dead, fresh.index_select(out_axis, dead))
        link.norm.weight[dead], link.norm.bias[dead] = 1.0, 0.0
        link.norm.running_mean[dead], link.norm.running_var[dead] = 0.0, 1.0
        link.consumer.weight.index_fill_(channel_axes(link.consumer)[1], dead, 0.0)
        revived += len(dead)
    return revived
