"""The training loop: Adam with warm-up and step decay, bf16/fp16 AMP on CUDA, resumable checkpoints, DDP."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..config import TrackerConfig, TrainConfig, from_dict, to_dict
from ..errors import IBFPError
from ..media.atomic import atomic_output
from ..model.ibfp import IBFP
from ..tracking.weights import save_weights
from .data import ImageBatch
from .features import FeatureBatch
from .losses import LossTerms, ibfp_loss
from .teacher import TeacherBoxes

CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"
CHECKPOINT_EVERY = 200  # steps between checkpoints (also written when time runs out)
CHECKPOINT_MINUTES = 10.0  # issue 26: a run killed at any moment loses at most this much work
LOG_EVERY = 20
LOG_FIELDS = ["step", "lr", "total", "centre", "box", "giou", "online"]

Batch = ImageBatch | FeatureBatch
BatchSource = Callable[[], Batch]
Teacher = Callable[[ImageBatch], TeacherBoxes]  # a teacher's boxes for a batch (distillation)
T = TypeVar("T", ImageBatch, FeatureBatch, TeacherBoxes)


def lr_factor(step: int, cfg: TrainConfig, fresh_from: int = 0) -> float:
    """Linear warm-up over the first warmup_steps of a fresh optimiser (from step `fresh_from`),
    and x decay_factor every decay_every steps of the run (paper Sec. IV-A)."""
    warm = min(1.0, (step - fresh_from + 1) / cfg.warmup_steps)
    return warm * cfg.decay_factor ** (step // cfg.decay_every)


def freeze(model: IBFP, cfg: TrainConfig) -> None:
    """Spec 7: freeze a pretrained backbone's early layers and BatchNorm statistics (on the
    cached-feature path all of it but, with tune_last_stage, its last stage); a backbone from
    scratch trains all of it. With trainable "box", everything but the head's box branch."""
    if cfg.trainable == "box":  # frozen parts in eval mode too: no BatchNorm statistics move
        model.requires_grad_(False).eval()
        model.head.box.requires_grad_(True).train()
        return
    if cfg.freeze_backbone:
        model.backbone.requires_grad_(False)
        if cfg.tune_last_stage:
            model.backbone.last_stage().requires_grad_(True)
    elif cfg.freeze_bn:  # a pretrained backbone keeps its early layers as they are
        for module in model.backbone.frozen_prefix():
            module.requires_grad_(False)
    if cfg.freeze_bn or cfg.freeze_backbone:
        for module in model.backbone.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()


def forward_loss(model: IBFP, batch: Batch, cfg: TrainConfig, teacher: TeacherBoxes | None = None) -> LossTerms:
    """Loss of one batch: images go through the backbone, cached features skip it; `teacher`:
    its boxes for the batch, where the recipe distils."""
    core = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    if isinstance(batch, FeatureBatch):
        zr, xr = batch.template, batch.search
        if cfg.tune_last_stage:  # the stride-32 tap again, from the cached stride-16 one
            last = core.backbone.last_stage()
            zr, xr = (zr[0], zr[1], last(zr[1])), (xr[0], xr[1], last(xr[1]))
    elif cfg.freeze_backbone:  # issue 26: fresh views every step, the frozen part without a graph
        zr, xr = _frozen_features(core, batch.template, cfg), _frozen_features(core, batch.search, cfg)
    else:
        zr, xr = core.backbone_features(batch.template), core.backbone_features(batch.search)
    template = core.template(core.project(zr), batch.template_boxes)
    pred = core(template, core.project(xr))
    return ibfp_loss(pred, batch.search_boxes, batch.positive, core.config.strides[:2], cfg.loss, teacher)


def _frozen_features(model: IBFP, images: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, ...]:
    """Backbone taps of images (B, 3, S, S) with the frozen layers run under no_grad (their
    outputs then feed layers that train, which inference_mode tensors may not) and, with
    tune_last_stage, the last stage with its graph."""
    with torch.no_grad():
        c8, c16 = model.backbone.to_stride16(model.normalize(images))
        c32 = None if cfg.tune_last_stage else model.backbone.last_stage()(c16)
    return c8, c16, model.backbone.last_stage()(c16) if c32 is None else c32


def _to(batch: T, device: torch.device) -> T:
    moved = {}
    for name, value in vars(batch).items():
        if isinstance(value, tuple):
            moved[name] = tuple(v.to(device, non_blocking=True) for v in value)
        else:
            moved[name] = value.to(device, non_blocking=True)
    return type(batch)(**moved)


@dataclass
class RunState:
    """How far a run has come: optimiser steps, pairs seen, seconds of training by device type
    ("cpu", "cuda"), and the step its optimiser state was last started afresh."""

    step: int = 0
    pairs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    fresh_from: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "pairs": self.pairs, "seconds": dict(self.seconds), "fresh_from": self.fresh_from}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> RunState:
        """Also reads checkpoints written before pairs and per-device seconds were kept."""
        seconds = data.get("seconds", {})
        if not isinstance(seconds, dict):
            seconds = {"cpu": float(seconds)}
        step = int(data["step"])
        return RunState(
            step,
            int(data.get("pairs", step * data.get("config", {}).get("batch_size", 0))),
            seconds,
            int(data.get("fresh_from", 0)),
        )


def _rng_state(sampler_rng: np.random.Generator) -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": sampler_rng.bit_generator.state}


def train(
    run_dir: Path,
    model: IBFP,
    next_batch: BatchSource,
    sampler_rng: np.random.Generator,
    cfg: TrainConfig,
    *,
    device: torch.device,
    max_minutes: float | None = None,
    report: Callable[[int, dict[str, float]], None] | None = None,
    start: RunState | None = None,
    teacher: Teacher | None = None,
) -> RunState:
    """Train until cfg.max_steps or max_minutes; resumes from run_dir's checkpoint if present,
    else from `model` as given, counted from `start` (a resume point's step and pairs); with
    `teacher`, its boxes for each batch are a second box target (cfg.loss.distill_weight).

    Checkpoints atomically every CHECKPOINT_EVERY steps or CHECKPOINT_MINUTES, whichever comes
    first, and always ends on one, so a killed or time-limited command can be run again to continue.
    """
    if cfg.loss.distill_weight and teacher is None:
        raise IBFPError("this recipe distils (loss.distill_weight) but no teacher was given to train with")
    run_dir.mkdir(parents=True, exist_ok=True)
    distributed = dist.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    model.to(device)
    freeze(model, cfg)
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    new = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    groups = [{"params": new, "lr": cfg.learning_rate}]
    if backbone:
        groups.append({"params": backbone, "lr": cfg.learning_rate * cfg.backbone_lr_scale})
    adam = torch.optim.AdamW if cfg.decoupled_weight_decay else torch.optim.Adam
    optimizer = adam(groups, weight_decay=cfg.weight_decay)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    state = RunState() if start is None else RunState(start.step, start.pairs, dict(start.seconds), start.step)
    checkpoint = run_dir / CHECKPOINT
    if checkpoint.is_file():
        data = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(data["model"])
        optimizer.load_state_dict(data["optimizer"])
        state = RunState.from_dict(data)
        torch.set_rng_state(data["rng"]["torch"])
        sampler_rng.bit_generator.state = data["rng"]["numpy"]
    else:
        torch.manual_seed(cfg.seed + rank + state.step)
    net: nn.Module = nn.parallel.DistributedDataParallel(model) if distributed else model
    amp = _amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    clock = _Clock(state, device)
    deadline = clock.started + max_minutes * 60 if max_minutes else None
    saved_at = clock.started
    log_rows: list[dict[str, float]] = []
    first_step = state.step + 1  # logged too: every stretch, however short, has a loss row
    net.train()
    freeze(model, cfg)
    while state.step < cfg.max_steps and (deadline is None or time.monotonic() < deadline):
        for g, base in zip(optimizer.param_groups, base_lrs):
            g["lr"] = base * lr_factor(state.step, cfg, state.fresh_from)
        drawn = next_batch()
        taught = _to(teacher(drawn), device) if teacher is not None and isinstance(drawn, ImageBatch) else None
        batch = _to(drawn, device)
        with torch.autocast(device.type, dtype=amp or torch.float16, enabled=amp is not None):
            terms = forward_loss(net, batch, cfg, taught)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(terms.total).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        state.step += 1
        state.pairs += len(batch.positive) * (dist.get_world_size() if distributed else 1)
        if state.step % LOG_EVERY == 0 or state.step == first_step:
            row = {"step": state.step, "lr": optimizer.param_groups[0]["lr"], **terms.as_floats()}
            log_rows.append(row)
            if report and rank == 0:
                report(state.step, row)
        due = state.step % CHECKPOINT_EVERY == 0 or time.monotonic() - saved_at > CHECKPOINT_MINUTES * 60
        if due and rank == 0:
            _save(checkpoint, model, optimizer, clock.update(), sampler_rng, cfg, run_dir, log_rows)
            log_rows, saved_at = [], time.monotonic()
    if rank == 0:
        _save(checkpoint, model, optimizer, clock.update(), sampler_rng, cfg, run_dir, log_rows)
    return clock.update()


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA: bf16 where the GPU has it (no loss scaling), else fp16; none on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class _Clock:
    """Adds this process's training time to the run's seconds of its device type."""

    def __init__(self, state: RunState, device: torch.device) -> None:
        self.state, self.kind = state, device.type
        self.before = state.seconds.get(self.kind, 0.0)
        self.started = time.monotonic()

    def update(self) -> RunState:
        self.state.seconds[self.kind] = self.before + time.monotonic() - self.started
        return self.state


def _save(
    path: Path,
    model: IBFP,
    optimizer: torch.optim.Optimizer,
    state: RunState,
    sampler_rng: np.random.Generator,
    cfg: TrainConfig,
    run_dir: Path,
    log_rows: list[dict[str, float]],
) -> None:
    data = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        **state.to_dict(),
        "rng": _rng_state(sampler_rng),
        "config": to_dict(cfg),
    }
    with atomic_output(path) as tmp:
        torch.save(data, tmp)
    log = run_dir / LOG
    new_file = not log.exists()
    with log.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        if new_file:
            writer.writeheader()
        writer.writerows(log_rows)


def export(run_dir: Path, out: Path, meta: dict[str, Any], tracker: TrackerConfig | None = None) -> dict[str, Any]:
    """Write the run's model as a shipped fp16 weights file with its metadata."""
    data = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    cfg: TrainConfig = from_dict(TrainConfig, data["config"])
    model = IBFP(cfg.model)
    model.load_state_dict(data["model"])
    full_meta = {
        "steps": data["step"],
        "train_seconds": round(RunState.from_dict(data).total_seconds),
        "date": date.today().isoformat(),
        "train_config": to_dict(cfg),
        "tracker": to_dict(tracker or TrackerConfig()),
        **meta,
    }
    with atomic_output(out) as tmp:
        save_weights(tmp, model, full_meta)
    return full_meta
