"""Distillation from NanoTrack: its crops cut where it cuts them, its box in the student's pixels,
and its box as a second target of the box loss."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, SHARED_MODELS, needs_nano

from ibfp_cli.boxes import ious
from ibfp_cli.config import LossConfig, TrackerConfig
from ibfp_cli.errors import IBFPError
from ibfp_cli.media.synthetic import SyntheticSpec, render_synthetic
from ibfp_cli.model.ibfp import Prediction
from ibfp_cli.model.labels import box_targets
from ibfp_cli.tracking.nano_network import NanoGeometry, windows
from ibfp_cli.tracking.opencv_trackers import MODELS_ENV, NANO_BACKBONE
from ibfp_cli.train.augment import AugmentConfig
from ibfp_cli.train.campaign import RECIPE, TRIALS
from ibfp_cli.train.data import PairSampler, SamplingConfig, Source, image_batch
from ibfp_cli.train.losses import ibfp_loss
from ibfp_cli.train.teacher import NanoTeacher, TeacherBoxes


def test_window_cuts_the_square_it_names_and_pads_with_the_mean_colour() -> None:
    image = torch.zeros(1, 3, 64, 64)
    image[:, :, 16:32, 24:40] = 200.0  # a 16 px square centred at (32, 24)
    inside = windows(image, torch.tensor([[32.0, 24.0]]), torch.tensor([16.0]), 8)
    assert torch.allclose(inside, torch.full_like(inside, 200.0))
    beyond = windows(image, torch.tensor([[-100.0, -100.0]]), torch.tensor([16.0]), 8)
    assert torch.allclose(beyond, image.mean(dim=(2, 3), keepdim=True).expand_as(beyond))


def test_template_window_is_pysots() -> None:
    # a 40 x 20 box: margin 0.5 * 60 = 30, side sqrt(70 * 50)
    side = NanoGeometry().template_side(torch.tensor([[40.0, 20.0]]))
    assert side.item() == pytest.approx(np.sqrt(70 * 50))
    points = NanoGeometry().points()
    assert points[8].item() == 0.0 and points[1].item() - points[0].item() == 16.0


def test_teacher_needs_its_files(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(MODELS_ENV, raising=False)
    with pytest.raises(IBFPError, match=NANO_BACKBONE):
        NanoTeacher(tmp_path)


def _pairs(count: int, seed: int, aug: AugmentConfig) -> object:
    frames, boxes = render_synthetic(SyntheticSpec(width=320, height=240, frames=30, object_size=(48, 32), seed=seed))
    source = Source("syn", "syn", frames, boxes.astype(np.float32), np.arange(len(boxes)))
    sampler = PairSampler([source], SamplingConfig(negative_fraction=0.0, max_frame_gap=3), seed)
    size = RECIPE.model.input_size
    return image_batch(sampler, count, TrackerConfig().search_area_scale, size, RECIPE.template_aug, aug)


@needs_nano
def test_teacher_box_lands_on_a_plain_object_wherever_the_crop_puts_it() -> None:
    steady = _pairs(4, 3, AugmentConfig(shift=0.0, scale=0.0, aspect=0.0, brightness=0.0, flip_probability=0.0))
    moved = _pairs(4, 3, AugmentConfig(shift=0.6, scale=0.2, aspect=0.0, brightness=0.0, flip_probability=0.0))
    teacher = NanoTeacher(SHARED_MODELS)
    for batch in (steady, moved):
        taught = teacher.boxes(batch, found_iou=0.5)
        assert ious(taught.boxes.numpy(), batch.search_boxes.numpy()).min() > 0.6
        assert taught.found.all()
    off = teacher.boxes(moved, found_iou=0.999)  # no box is that exact: none counts as found
    assert not off.found.any()


def _loss(ltrb: torch.Tensor, boxes: torch.Tensor, cfg: LossConfig, teacher: TeacherBoxes | None) -> float:
    pred = Prediction(torch.zeros(1, 1, 16, 16), ltrb, torch.zeros(1, 1, 8, 8), torch.zeros(1, 4, 8, 8))
    return ibfp_loss(pred, boxes, torch.tensor([True]), (8, 16), cfg, teacher).total.item()


def test_teacher_box_is_a_second_target_of_the_box_loss() -> None:
    truth = torch.tensor([[40.0, 48.0, 50.0, 30.0]])
    cfg = replace(LossConfig(), distill_weight=1.0)
    exact, _ = box_targets(truth, 16, 8, cfg.box_region)
    shrunk = exact * 0.8
    alone = _loss(shrunk, truth, cfg, None)
    # the teacher agreeing with the truth doubles the box terms; one not found adds nothing
    agree = _loss(shrunk, truth, cfg, TeacherBoxes(truth, torch.tensor([True])))
    terms = ibfp_loss(
        Prediction(torch.zeros(1, 1, 16, 16), shrunk, torch.zeros(1, 1, 8, 8), torch.zeros(1, 4, 8, 8)),
        truth, torch.tensor([True]), (8, 16), cfg,
    )  # fmt: skip
    assert agree == pytest.approx(alone + terms.box.item() + terms.giou.item())
    assert _loss(shrunk, truth, cfg, TeacherBoxes(truth, torch.tensor([False]))) == pytest.approx(alone)
    assert _loss(shrunk, truth, replace(cfg, distill_weight=0.0), TeacherBoxes(truth, torch.tensor([True]))) == alone
    # a prediction of the teacher's box pays only the truth's terms on it, and the reverse
    other = truth + torch.tensor([[4.0, -2.0, 6.0, 3.0]])
    taught, _ = box_targets(other, 16, 8, cfg.box_region)
    on_teacher = _loss(taught, truth, cfg, TeacherBoxes(other, torch.tensor([True])))
    on_truth = _loss(exact, truth, cfg, TeacherBoxes(other, torch.tensor([True])))
    assert on_teacher > 0 and on_truth > 0
    assert on_teacher == pytest.approx(_loss(taught, truth, cfg, None))


def test_the_recipe_distils_and_its_loss_trials_differ_from_it_only_in_one_weight() -> None:
    weight = RECIPE.train.loss.distill_weight
    assert weight > 0
    for variant, name, expected in (
        ("distill", "distill_weight", 2 * weight),
        ("undistilled", "distill_weight", 0.0),
        ("centre-weighted", "centre_weight", 1 + weight),  # the centre loss scaled as the box terms are
    ):
        trial = TRIALS[variant]
        assert getattr(trial.train.loss, name) == expected
        assert replace(trial, train=replace(trial.train, loss=RECIPE.train.loss)) == RECIPE


def _trained_box_branch(tmp_path, teacher) -> tuple[dict[str, torch.Tensor], int]:
    """The box branch of a tiny network after 2 steps on generated pairs, and the teacher's calls."""
    from test_mechanics import TINY

    from ibfp_cli.config import TrainConfig
    from ibfp_cli.model.ibfp import IBFP
    from ibfp_cli.train.loop import train

    torch.manual_seed(0)
    model = IBFP(TINY)
    frames, boxes = render_synthetic(SyntheticSpec(width=256, height=192, frames=20, object_size=(40, 30), seed=3))
    sampler = PairSampler([Source("syn", "syn", frames, boxes.astype(np.float32), np.arange(20))], SamplingConfig(), 0)
    loss = replace(LossConfig(), distill_weight=1.0)
    cfg = TrainConfig(model=TINY, batch_size=4, max_steps=2, warmup_steps=1, freeze_backbone=False, loss=loss)
    calls = []

    def asked(batch):
        calls.append(batch)
        return teacher(batch)

    area = TrackerConfig().search_area_scale
    train(
        tmp_path, model, lambda: image_batch(sampler, 4, area, TINY.input_size, RECIPE.template_aug, RECIPE.search_aug),
        sampler.rng, cfg, device=torch.device("cpu"), teacher=asked if teacher else None,
    )  # fmt: skip
    return {k: v.clone() for k, v in model.head.box.state_dict().items()}, len(calls)


def test_training_asks_the_teacher_each_step_and_its_boxes_reach_the_box_branch(tmp_path) -> None:
    def truthful(batch):
        return TeacherBoxes(batch.search_boxes.clone(), torch.ones(len(batch.positive), dtype=torch.bool))

    def taller(batch):
        boxes = batch.search_boxes.clone()
        boxes[:, 3] *= 1.5
        return TeacherBoxes(boxes, torch.ones(len(batch.positive), dtype=torch.bool))

    agreeing, calls = _trained_box_branch(tmp_path / "a", truthful)
    assert calls == 2
    differing, _ = _trained_box_branch(tmp_path / "b", taller)
    assert any(not torch.equal(agreeing[k], differing[k]) for k in agreeing)


def test_a_recipe_that_distils_will_not_train_without_its_teacher(tmp_path) -> None:
    with pytest.raises(IBFPError, match="teacher"):
        _trained_box_branch(tmp_path, None)


def _flushing_after(code: str) -> bool:
    """In a new process on one torch thread, flushing subnormals: whether it still does after `code`."""
    program = (
        "import torch\ntorch.set_num_threads(1)\n"
        "from ibfp_cli.tracking.denormals import flush_denormals, flushing_denormals, denormal_mode_kept\n"
        f"flush_denormals()\n{code}\nprint(flushing_denormals())\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    return out.stdout.strip() == "True"


def test_denormal_mode_kept_restores_flushing_a_block_turned_off() -> None:
    assert not _flushing_after("torch.set_flush_denormal(False)")
    assert _flushing_after("with denormal_mode_kept():\n    torch.set_flush_denormal(False)")


@needs_nano
def test_the_teacher_leaves_training_steps_flushing_subnormals() -> None:
    """ONNX Runtime's session creation turns flushing off on its thread: the campaign's steps
    ran 3x slower beside the teacher until it was restored (TRAINING.md, Throughput)."""
    made = "from pathlib import Path\nfrom ibfp_cli.train.teacher import NanoTeacher\n"
    made += f"NanoTeacher(Path({str(SHARED_MODELS)!r}))"
    assert _flushing_after(made)
