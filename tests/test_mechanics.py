"""Mechanics: a small IBFP trained on one generated sequence must then track it.

This proves that crop, labels, decode and post-processing agree on coordinates before
real weights exist (issue 4), and that training lowers the loss (issue 5).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ibfp_cli.boxes import Box, ious
from ibfp_cli.config import ModelConfig, TrackerConfig, TrainConfig
from ibfp_cli.media.synthetic import SyntheticSpec, render_synthetic
from ibfp_cli.model.ibfp import IBFP
from ibfp_cli.tracking.tracker import IBFPTracker
from ibfp_cli.tracking.weights import load_model
from ibfp_cli.train.api import TEMPLATE_AUG
from ibfp_cli.train.augment import AugmentConfig
from ibfp_cli.train.data import PairSampler, SamplingConfig, Source, image_batch
from ibfp_cli.train.loop import export, train

TINY = ModelConfig(
    backbone="mobilenetv2",
    input_size=128,
    channels=(16, 32, 64),
    head_hidden=32,
    online_hidden=32,
    online_dim=16,
    norm_groups=4,
    template_max_cells=(9, 5, 3),
)
SPEC = SyntheticSpec(width=256, height=192, frames=120, object_size=(40, 30), speed=3.0, noise=6.0, seed=3)
AREA = TrackerConfig().search_area_scale


def _source() -> Source:
    frames, boxes = render_synthetic(SPEC)
    return Source("syn", "syn", frames, boxes.astype(np.float32), np.arange(len(boxes)))


def _train(tmp_path, steps: int, batch: int) -> tuple[IBFP, list[float]]:
    torch.manual_seed(0)
    model = IBFP(TINY)
    sampler = PairSampler([_source()], SamplingConfig(negative_fraction=0.0), seed=0)
    cfg = TrainConfig(
        model=TINY,
        batch_size=batch,
        max_steps=steps,
        warmup_steps=20,
        decay_every=steps,
        learning_rate=3e-3,
        backbone_lr_scale=1.0,
        freeze_backbone=False,
        freeze_bn=False,
    )
    losses: list[float] = []

    def next_batch():
        return image_batch(
            sampler, batch, AREA, TINY.input_size, TEMPLATE_AUG, AugmentConfig(blur_probability=0, gray_probability=0)
        )

    train(
        tmp_path / "run",
        model,
        next_batch,
        sampler.rng,
        cfg,
        device=torch.device("cpu"),
        report=lambda step, row: losses.append(row["total"]),
    )
    return model, losses


@pytest.mark.slow  # the suite's longest unmarked test: 273 s under load average 13-20 on 2 cores
def test_twenty_steps_lower_the_loss(tmp_path):
    _, losses = _train(tmp_path, steps=40, batch=8)
    assert np.mean(losses[-2:]) < losses[0]


@pytest.mark.slow
def test_trained_model_tracks_its_sequence(tmp_path):
    _train(tmp_path, steps=300, batch=8)
    path = tmp_path / "tiny.pt"
    export(tmp_path / "run", path, {"data": "mechanics test"})  # what `ibfp train export` writes
    loaded, meta = load_model(path)
    assert meta["data"] == "mechanics test" and meta["steps"] == 300
    tracker = IBFPTracker(model=loaded, device="cpu")
    frames, gt = render_synthetic(SPEC)
    tracker.init(frames[0], Box(*gt[0]))
    pred = [tracker.update(f).box.xywh() for f in frames[1:]]
    assert ious(np.array(pred), gt[1:]).mean() > 0.7
