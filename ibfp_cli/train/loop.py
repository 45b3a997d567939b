"""The training loop: Adam with warm-up and step decay, AMP on CUDA, resumable checkpoints, DDP."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..atomic import atomic_output
from ..config import TrackerConfig, TrainConfig, from_dict, to_dict
from ..model.ibfp import IBFP
from ..weights import save_weights
from .data import ImageBatch
from .features import FeatureBatch
from .losses import LossTerms, ibfp_loss

CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"
CHECKPOINT_EVERY = 200  # steps between checkpoints (also written when time runs out)
LOG_EVERY = 20

Batch = ImageBatch | FeatureBatch
BatchSource = Callable[[], Batch]


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then x decay_factor every decay_every steps (paper Sec. IV-A)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    return cfg.decay_factor ** (step // cfg.decay_every)


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


def forward_loss(model: IBFP, batch: Batch, cfg: TrainConfig) -> LossTerms:
    """Loss of one batch: images go through the backbone, cached features skip it."""
    core = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    if isinstance(batch, FeatureBatch):
        zr, xr = batch.template, batch.search
        if cfg.tune_last_stage:  # the stride-32 tap again, from the cached stride-16 one
            last = core.backbone.last_stage()
            zr, xr = (zr[0], zr[1], last(zr[1])), (xr[0], xr[1], last(xr[1]))
    else:
        zr, xr = core.backbone_features(batch.template), core.backbone_features(batch.search)
    template = core.template(core.project(zr), batch.template_boxes)
    pred = core(template, core.project(xr))
    return ibfp_loss(pred, batch.search_boxes, batch.positive, core.config.strides[:2], cfg.loss)


def _to(batch: Batch, device: torch.device) -> Batch:
    moved = {}
    for name, value in vars(batch).items():
        if isinstance(value, tuple):
            moved[name] = tuple(v.to(device, non_blocking=True) for v in value)
        else:
            moved[name] = value.to(device, non_blocking=True)
    return type(batch)(**moved)


@dataclass
class RunState:
    step: int = 0
    seconds: float = 0.0


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
) -> RunState:
    """Train until cfg.max_steps or max_minutes; resumes from run_dir's checkpoint if present.

    Always ends on a checkpoint, so a time-limited command can be run again to continue.
    """
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
    optimizer = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    state = RunState()
    checkpoint = run_dir / CHECKPOINT
    if checkpoint.is_file():
        data = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(data["model"])
        optimizer.load_state_dict(data["optimizer"])
        state = RunState(data["step"], data["seconds"])
        torch.set_rng_state(data["rng"]["torch"])
        sampler_rng.bit_generator.state = data["rng"]["numpy"]
    else:
        torch.manual_seed(cfg.seed + rank)
    net: nn.Module = nn.parallel.DistributedDataParallel(model) if distributed else model
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    started = time.monotonic()
    deadline = started + max_minutes * 60 if max_minutes else None
    log_rows: list[dict[str, float]] = []
    net.train()
    freeze(model, cfg)
    while state.step < cfg.max_steps and (deadline is None or time.monotonic() < deadline):
        for g, base in zip(optimizer.param_groups, base_lrs):
            g["lr"] = base * lr_factor(state.step, cfg)
        batch = _to(next_batch(), device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            terms = forward_loss(net, batch, cfg)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(terms.total).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        state.step += 1
        if state.step % LOG_EVERY == 0 or state.step == 1:
            row = {"step": state.step, "lr": optimizer.param_groups[0]["lr"], **terms.as_floats()}
            log_rows.append(row)
            if report and rank == 0:
                report(state.step, row)
        if state.step % CHECKPOINT_EVERY == 0 and rank == 0:
            _save(checkpoint, model, optimizer, state, started, sampler_rng, cfg, run_dir, log_rows)
            log_rows = []
    if rank == 0:
        _save(checkpoint, model, optimizer, state, started, sampler_rng, cfg, run_dir, log_rows)
    return state


def _save(
    path: Path,
    model: IBFP,
    optimizer: torch.optim.Optimizer,
    state: RunState,
    started: float,
    sampler_rng: np.random.Generator,
    cfg: TrainConfig,
    run_dir: Path,
    log_rows: list[dict[str, float]],
) -> None:
    seconds = state.seconds + time.monotonic() - started
    data = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": state.step,
        "seconds": seconds,
        "rng": _rng_state(sampler_rng),
        "config": to_dict(cfg),
    }
    with atomic_output(path) as tmp:
        torch.save(data, tmp)
    log = run_dir / LOG
    new_file = not log.exists()
    with log.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "lr", "total", "centre", "box", "giou", "online"])
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
        "train_seconds": round(data["seconds"]),
        "date": date.today().isoformat(),
        "train_config": to_dict(cfg),
        "tracker": to_dict(tracker or TrackerConfig()),
        **meta,
    }
    with atomic_output(out) as tmp:
        save_weights(tmp, model, full_meta)
    return full_meta
