"""Training entry points behind `ibfp train ...`: features, run (cached or end to end), export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import MODEL_PRESETS, TrackerConfig, TrainConfig
from ..errors import IBFPError
from ..model.backbone import load_imagenet
from ..model.ibfp import IBFP
from ..tracking.tracker import pick_device
from ..tracking.weights import load_model
from .augment import AugmentConfig
from .data import PairSampler, SamplingConfig, Source, image_batch, synthetic_sources
from .features import FeatureCache, build_feature_cache
from .loop import RunState, export, train
from .prepare import load_crop_cache

SYNTHETIC_FRAMES = 40  # frames per generated training clip
TEMPLATE_AUG = AugmentConfig(shift=0.1, scale=0.05, aspect=0.0, flip_probability=0.0)  # templates stay near-centred


def new_model(preset: str, init: Path | None) -> IBFP:
    """An IBFP of a preset, its backbone from ImageNet weights when given."""
    if preset not in MODEL_PRESETS:
        raise IBFPError(f"unknown model preset {preset!r}; choose one of {', '.join(MODEL_PRESETS)}")
    model = IBFP(MODEL_PRESETS[preset])
    if init is not None:
        load_imagenet(model.backbone, init)
    return model


def training_sources(
    crops: Path | None, synthetic: int, seed: int, steps: dict[str, int] | None = None
) -> list[Source]:
    """Crop-cache sources (thinned by `steps`, see `subsample`) plus `synthetic` generated clips."""
    sources = subsample(load_crop_cache(crops), steps or {}) if crops is not None else []
    sources += synthetic_sources(synthetic, SYNTHETIC_FRAMES, seed) if synthetic else []
    if not sources:
        raise IBFPError("no training data: give a crop cache (--crops) or --synthetic N")
    return sources


def subsample(sources: list[Source], steps: dict[str, int]) -> list[Source]:
    """Keep every N-th item of the sources whose name or kind is a key of `steps`."""
    out = []
    for s in sources:
        step = steps.get(s.name, steps.get(s.kind, 1))
        out.append(Source(s.name, s.kind, s.frames[::step], s.boxes[::step], s.index[::step], s.categories[::step]))
    return out


def build_features(
    crops: Path | None,
    out: Path,
    *,
    preset: str,
    init: Path | None,
    views: int,
    synthetic: int,
    seed: int,
    steps: dict[str, int],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """CPU path step 1: cache frozen-backbone features of a template view and `views` jittered
    search views per item."""
    model = new_model(preset, init)
    sources = training_sources(crops, synthetic, seed, steps)
    table = build_feature_cache(
        sources,
        model,
        out,
        views=views,
        area_scale=TrackerConfig().search_area_scale,
        aug=AugmentConfig(),
        template_aug=TEMPLATE_AUG,
        seed=seed,
        progress=progress,
    )
    return len(table)


def run_training(
    run_dir: Path,
    *,
    features: Path | None,
    crops: Path | None,
    synthetic: int,
    preset: str,
    init: Path | None,
    cfg: TrainConfig,
    sampling: SamplingConfig,
    start_from: Path | None = None,
    device: str,
    max_minutes: float | None,
    report: Callable[[int, dict[str, float]], None] | None = None,
) -> RunState:
    """Train from a feature cache (backbone frozen) or end to end from images; a new run starts
    from `start_from` weights when given, else from a new network (backbone from `init`)."""
    if cfg.trainable == "box":  # negative pairs carry no box loss: a box-only run would waste them
        sampling = replace(sampling, negative_fraction=0.0)
    if features is not None:
        cache = FeatureCache(features)
        cfg = replace(cfg, freeze_backbone=True)
        sampler = PairSampler(cache.sources(), sampling, cfg.seed)

        def next_batch() -> Any:
            return cache.batch(sampler, cfg.batch_size)
    else:
        sources = training_sources(crops, synthetic, cfg.seed)
        sampler = PairSampler(sources, sampling, cfg.seed)
        size = MODEL_PRESETS[preset].input_size
        area = TrackerConfig().search_area_scale

        def next_batch() -> Any:
            return image_batch(sampler, cfg.batch_size, area, size, TEMPLATE_AUG, AugmentConfig())

    if start_from is not None:
        model, _ = load_model(start_from)
    else:
        model = new_model(preset, init)
    cfg = replace(cfg, model=model.config, freeze_bn=init is not None or start_from is not None)
    return train(
        run_dir, model, next_batch, sampler.rng, cfg, device=pick_device(device), max_minutes=max_minutes, report=report
    )


def export_weights(run_dir: Path, out: Path, data_note: str, tracker: TrackerConfig | None = None) -> dict[str, Any]:
    """Write the run's weights (fp16) with metadata for the model card."""
    return export(
        run_dir, out, {"data": data_note, "torch": str(torch.__version__), "numpy": str(np.__version__)}, tracker
    )
