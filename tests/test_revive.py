"""Dead channels of the fusion and head re-initialised (ibfp_cli/train/revive.py)."""

from __future__ import annotations

from dataclasses import replace

import torch
from test_mechanics import TINY

from ibfp_cli.model.ibfp import IBFP, Prediction
from ibfp_cli.train.revive import channel_axes, dead_channels, links, revive_dead_channels

SIZE = TINY.input_size
BOXES = torch.tensor([[48.0, 48.0, 32.0, 32.0], [40.0, 50.0, 44.0, 20.0]])  # template boxes, crop pixels


def _predict(model: IBFP, images: torch.Tensor) -> Prediction:
    with torch.inference_mode():
        features = model.project(model.backbone_features(images))
        return model(model.template(features, BOXES), features)


def _kill(model: IBFP, link_index: int, channels: list[int]) -> None:
    """Make channels dead as training left them: no filter, a decayed scale, a constant output of 0."""
    link = links(model)[link_index]
    kill = torch.tensor(channels)
    with torch.no_grad():
        link.producer.weight.index_fill_(channel_axes(link.producer)[0], kill, 0.0)
        link.norm.weight[kill], link.norm.bias[kill] = 1e-5, -0.1
        link.norm.running_var[kill] = 1e-9


def test_revived_channels_vary_again_and_the_network_computes_what_it_did():
    torch.manual_seed(0)
    model = IBFP(replace(TINY, norm_groups=0)).eval()
    _kill(model, 0, [1, 3])  # the deepest IBU's conv
    _kill(model, len(links(model)) - 1, [0, 5, 6])  # the box branch's last hidden layer
    images = torch.rand(2, 3, SIZE, SIZE) * 255
    before = _predict(model, images)
    untouched = {k: v.clone() for k, v in model.state_dict().items()}
    assert [int(dead_channels(link.norm).sum()) for link in links(model)].count(0) == len(links(model)) - 2

    assert revive_dead_channels(model) == 5
    after = _predict(model, images)
    assert torch.allclose(before.centre, after.centre, atol=1e-5)
    assert torch.allclose(before.ltrb, after.ltrb, rtol=1e-5)
    assert not any(dead_channels(link.norm).any() for link in links(model))
    first = links(model)[0]
    assert first.producer.weight[[1, 3]].abs().sum(dim=(1, 2, 3)).min() > 0  # fresh filters
    assert (first.consumer.weight[[1, 3]] == 0).all()  # ConvTranspose2d: (cin, cout, k, k)
    # a filter of zeros gave the dead channels a mean of 0: their running means stay as they were
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, untouched[k])}
    assert changed == {
        "ibu32.conv.0.weight", "ibu32.conv.1.weight", "ibu32.conv.1.bias", "ibu32.conv.1.running_var",
        "ibu32.tconv.0.weight",
        "head.box.3.0.weight", "head.box.3.1.weight", "head.box.3.1.bias", "head.box.3.1.running_var",
        "head.box.4.weight",
    }  # fmt: skip


def test_a_healthy_network_has_nothing_to_revive():
    torch.manual_seed(0)
    model = IBFP(replace(TINY, norm_groups=0))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert revive_dead_channels(model) == 0
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
