"""Training pieces added for box fit (issue 11): GIoU loss, template views, the tuned last stage."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_mechanics import TINY

from ibfp_cli.config import LossConfig, TrackerConfig, TrainConfig
from ibfp_cli.media.synthetic import SyntheticSpec, render_synthetic
from ibfp_cli.model.backbone import build_backbone
from ibfp_cli.model.ibfp import IBFP
from ibfp_cli.train.api import TEMPLATE_AUG
from ibfp_cli.train.augment import AugmentConfig
from ibfp_cli.train.data import PairSampler, SamplingConfig, Source
from ibfp_cli.train.features import TEMPLATE_VIEW, FeatureCache, build_feature_cache
from ibfp_cli.train.loop import CHECKPOINT, train
from ibfp_cli.train.losses import giou_loss, ibfp_loss


def test_giou_loss_of_nested_disjoint_and_equal_boxes():
    same = torch.tensor([[3.0, 4.0, 5.0, 6.0]])
    assert giou_loss(same, same).item() == pytest.approx(0.0)
    # a 2x2 box inside a 4x4 box around the same point: IoU 4 / 16, hull = union
    assert giou_loss(torch.tensor([[1.0, 1, 1, 1]]), torch.tensor([[2.0, 2, 2, 2]])).item() == pytest.approx(0.75)
    # side by side, touching: IoU 0, hull = union -> loss 1; apart by a gap: more than 1
    touching = giou_loss(torch.tensor([[2.0, 1, 0, 1]]), torch.tensor([[0.0, 1, 2, 1]]))
    assert touching.item() == pytest.approx(1.0)
    apart = giou_loss(torch.tensor([[3.0, 1, -1, 1]]), torch.tensor([[-1.0, 1, 3, 1]]))
    assert apart.item() > 1.0


def test_box_terms_vanish_for_an_exact_prediction_and_grow_with_a_shrunk_one():
    from ibfp_cli.model.ibfp import Prediction
    from ibfp_cli.model.labels import box_targets

    boxes = torch.tensor([[40.0, 48.0, 50.0, 30.0]])
    targets, _ = box_targets(boxes, 16, 8, LossConfig().box_region)

    def loss(ltrb: torch.Tensor) -> tuple[float, float]:
        pred = Prediction(torch.zeros(1, 1, 16, 16), ltrb, torch.zeros(1, 1, 8, 8), torch.zeros(1, 4, 8, 8))
        terms = ibfp_loss(pred, boxes, torch.tensor([True]), (8, 16), LossConfig())
        return terms.box.item(), terms.giou.item()

    assert loss(targets) == pytest.approx((0.0, 0.0), abs=1e-6)
    box, giou = loss(targets * 0.8)
    assert box > 0 and giou > 0


def test_centre_weight_scales_the_centre_term_of_the_total_alone():
    from ibfp_cli.model.ibfp import Prediction

    boxes = torch.tensor([[40.0, 48.0, 50.0, 30.0]])
    torch.manual_seed(0)
    pred = Prediction(
        torch.rand(1, 1, 16, 16), torch.rand(1, 4, 16, 16) * 40, torch.rand(1, 1, 8, 8), torch.zeros(1, 4, 8, 8)
    )

    def terms(weight: float):
        return ibfp_loss(pred, boxes, torch.tensor([True]), (8, 16), replace(LossConfig(), centre_weight=weight))

    one, three = terms(1.0), terms(3.0)
    assert one.centre.item() > 0
    assert three.total.item() == pytest.approx(one.total.item() + 2 * one.centre.item())
    unweighted = one.as_floats() | {"total": 0.0}
    assert three.as_floats() | {"total": 0.0} == unweighted  # each term itself is as before


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet18"])
def test_last_stage_turns_the_stride_16_tap_into_the_stride_32_tap(name):
    backbone = build_backbone(name).eval()
    with torch.no_grad():
        _, c16, c32 = backbone(torch.randn(1, 3, 64, 64))
        assert torch.allclose(backbone.last_stage()(c16), c32, atol=1e-5)


def _source() -> Source:
    frames, boxes = render_synthetic(SyntheticSpec(width=160, height=120, frames=6, object_size=(30, 24), seed=5))
    return Source("syn", "syn", frames, boxes.astype(np.float32), np.arange(len(boxes)))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("features")
    aug = AugmentConfig(shift=0.6, scale=0.25)
    build_feature_cache(
        [_source()],
        IBFP(TINY),
        folder,
        views=2,
        area_scale=TrackerConfig().search_area_scale,
        aug=aug,
        template_aug=TEMPLATE_AUG,
        seed=0,
    )
    return folder


def test_feature_cache_cuts_one_near_centred_template_view_per_item(cache):
    table = FeatureCache(cache).views
    assert len(table) == 6 * 3 and sorted(table.view.unique()) == [0, 1, 2]
    offset = (table.x + table.w / 2 - TINY.input_size / 2).abs() / table.w
    assert offset[table.view == TEMPLATE_VIEW].max() <= TEMPLATE_AUG.shift + 1e-6
    assert offset[table.view != TEMPLATE_VIEW].max() > TEMPLATE_AUG.shift  # search views roam further


def test_pairs_take_the_template_view_as_template_and_a_search_view_as_search(cache):
    features = FeatureCache(cache)
    sampler = PairSampler(features.sources(), SamplingConfig(negative_fraction=0.0), seed=0)
    batch = features.batch(sampler, 8)
    template_boxes = features.boxes[features.views.view == TEMPLATE_VIEW]
    search_boxes = features.boxes[features.views.view != TEMPLATE_VIEW]
    assert all((template_boxes == b).all(axis=1).any() for b in batch.template_boxes.numpy())
    assert all((search_boxes == b).all(axis=1).any() for b in batch.search_boxes.numpy())


def test_cached_training_tunes_only_the_backbones_last_stage(cache, tmp_path):
    torch.manual_seed(0)
    model = IBFP(TINY)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    features = FeatureCache(cache)
    sampler = PairSampler(features.sources(), SamplingConfig(negative_fraction=0.0), seed=0)
    cfg = TrainConfig(model=TINY, batch_size=4, max_steps=3, warmup_steps=1, backbone_lr_scale=1.0)
    train(tmp_path / "run", model, lambda: features.batch(sampler, 4), sampler.rng, cfg, device=torch.device("cpu"))
    after = model.backbone.state_dict()
    last = {f"features.{i}." for i in range(14, 18)}
    changed = {k for k in before if not torch.equal(before[k], after[k]) and "running" not in k}
    assert changed and all(any(k.startswith(p) for p in last) for k in changed)
    assert any(k.startswith("features.17.") for k in changed)


def _share_of_threads_flushing(setup: str) -> float:
    """In a new process on 2 torch threads: `setup`, then the share of a parallel division's
    subnormal results that came out 0 (each thread computes part of it)."""
    code = (
        "import torch\n"
        "torch.set_num_threads(2)\n"
        f"{setup}\n"
        "halves = torch.full((1 << 22,), torch.finfo(torch.float32).tiny) / 2\n"
        "print(float((halves == 0).float().mean()))\n"
    )
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_flush_denormals_turns_subnormals_into_zero_on_every_thread_started_after_it():
    assert _share_of_threads_flushing("pass") == 0.0
    flushed = "from ibfp_cli.tracking.denormals import flush_denormals, flushing_denormals\nflush_denormals()"
    assert _share_of_threads_flushing(flushed + "\nassert flushing_denormals()") == 1.0
    # called after torch's threads have started, only the caller's share is flushed: say so, not hide it
    late = "torch.ones(1 << 22).sum()\n" + flushed + "\nassert not flushing_denormals()"
    assert 0.0 < _share_of_threads_flushing(late) < 1.0


def test_train_commands_flush_subnormals_before_any_other_work():
    """`ibfp train ...` (its group's callback runs before every train command): every CPU thread
    flushes, so a campaign step runs up to 4x faster on x86 (tracking/denormals.py)."""
    assert _share_of_threads_flushing("from ibfp_cli.cli.train import train_main\ntrain_main()") == 1.0


@pytest.mark.parametrize("decoupled", [False, True])
def test_weight_decay_is_adams_l2_or_adamws_decoupled_decay_as_configured(cache, tmp_path, decoupled):
    model = IBFP(TINY)
    features = FeatureCache(cache)
    sampler = PairSampler(features.sources(), SamplingConfig(negative_fraction=0.0), seed=0)
    cfg = TrainConfig(model=TINY, batch_size=4, max_steps=1, warmup_steps=1, decoupled_weight_decay=decoupled)
    train(tmp_path / "run", model, lambda: features.batch(sampler, 4), sampler.rng, cfg, device=torch.device("cpu"))
    saved = torch.load(tmp_path / "run" / CHECKPOINT, map_location="cpu", weights_only=True)
    assert saved["optimizer"]["param_groups"][0]["decoupled_weight_decay"] is decoupled


@pytest.mark.parametrize("norm_groups", [0, 2])  # BatchNorm (statistics must not move) and GroupNorm
def test_box_only_training_changes_the_box_branch_and_nothing_else(cache, tmp_path, norm_groups):
    """`train run --trainable box`: what finds the target (features, centre and online branches,
    normalisation statistics) stays bit for bit; the box branch learns."""
    torch.manual_seed(0)
    config = replace(TINY, norm_groups=norm_groups)
    model = IBFP(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    features = FeatureCache(cache)
    sampler = PairSampler(features.sources(), SamplingConfig(negative_fraction=0.0), seed=0)
    cfg = TrainConfig(model=config, batch_size=4, max_steps=3, warmup_steps=1, trainable="box")
    train(tmp_path / "run", model, lambda: features.batch(sampler, 4), sampler.rng, cfg, device=torch.device("cpu"))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("head.box.") for k in changed)
    assert any(k.endswith("weight") for k in changed)
