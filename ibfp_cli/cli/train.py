"""`ibfp train` and `ibfp train campaign`: the IBFP tracker's weights trained, resumed, saved."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import Trainable, TrainConfig
from ..errors import IBFPError
from .common import (
    BackendOption,
    DeviceOption,
    TrackerConfigOption,
    check_outputs,
    err,
    out,
    reported_errors,
    stage_progress,
)

TRAIN_DEFAULTS = TrainConfig()
"""The defaults `train run` shows and starts from."""

train_app = typer.Typer(help="Train the IBFP tracker's weights (prepare data, run, resume).", no_args_is_help=True)


@train_app.callback()
def train_main() -> None:
    """Train the IBFP tracker's weights (prepare data, run, resume)."""
    from ..tracking.denormals import flush_denormals  # torch: only once a train command runs

    flush_denormals()  # first thing, before torch starts its CPU threads: a step up to 4x faster


DEFAULT_DATA = Path("../shared/data")
PresetOption = Annotated[
    str, typer.Option(help="Model preset: mobile (MobileNetV2, CPU-friendly widths) or paper (ResNet18, paper widths).")
]
InitOption = Annotated[
    Path | None,
    typer.Option(
        help="ImageNet backbone weights to start from (torchvision-format ResNet18 file for --preset paper, "
        "the MobileNetV2 file for --preset mobile). Default: random initialisation.",
        show_default=False,
        dir_okay=False,
        exists=True,
    ),
]


@train_app.command("prepare")
def train_prepare(
    data: Annotated[
        Path, typer.Option(help="Folder with sot/ (videos + .gt.csv) and det/ (images + boxes.csv).")
    ] = DEFAULT_DATA,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Crop cache folder to write (one H.264 video per source + index.csv).")
    ] = Path("cache/crops"),
    frame_step: Annotated[int, typer.Option(min=1, help="Keep every N-th annotated video frame.")] = 2,
) -> None:
    """Build the compact crop cache: every training target cropped with context (val split left out)."""
    from dataclasses import replace

    from ..train.prepare import CacheConfig, prepare_crop_cache

    with reported_errors():
        index = prepare_crop_cache(
            data, out_dir, replace(CacheConfig(), frame_step=frame_step), progress=lambda n: err.print(f"cropping {n}")
        )
    size = sum(p.stat().st_size for p in out_dir.iterdir()) / 2**20
    out.print(f"{len(index)} crops from {index.source.nunique()} sources in {out_dir} ({size:.1f} MiB)")


@train_app.command("features")
def train_features(
    crops: Annotated[Path | None, typer.Option(help="Crop cache from `ibfp train prepare`.")] = Path("cache/crops"),
    out_dir: Annotated[Path, typer.Option("--out", help="Feature cache folder to write.")] = Path("cache/features"),
    preset: PresetOption = "mobile",
    init: InitOption = None,
    views: Annotated[
        int, typer.Option(min=1, help="Jittered search views cached per crop, besides its one template view.")
    ] = 1,
    step: Annotated[
        list[str] | None,
        typer.Option(help="KEY=N: keep every N-th crop of the sources of that kind (sot, det) or name (repeatable)."),
    ] = None,
    synthetic: Annotated[int, typer.Option(min=0, help="Generated clips added as a source.")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed of the jitter.")] = 0,
) -> None:
    """CPU path, step 1: run the frozen backbone once over jittered views and cache its features."""
    from ..train.api import build_features

    with reported_errors(), stage_progress("views") as stage:
        steps = _key_values(step or ["sot=2"])
        n = build_features(
            crops,
            out_dir,
            preset=preset,
            init=init,
            views=views,
            synthetic=synthetic,
            seed=seed,
            steps=steps,
            progress=stage("backbone"),
        )
    out.print(f"{n} views cached in {out_dir}")


def _report_step(step: int, row: dict[str, float]) -> None:
    """One line on stderr per logged training step: its losses and learning rate."""
    err.print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "step"))


def _key_values(items: list[str]) -> dict[str, int]:
    """["sot=2", ...] -> {"sot": 2, ...}; a malformed item is an IBFPError."""
    pairs = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key or not value.isdigit() or int(value) < 1:
            raise IBFPError(f"--step {item!r} must look like NAME=N with N >= 1")
        pairs[key] = int(value)
    return pairs


@train_app.command("run")
def train_run(
    run_dir: Annotated[
        Path, typer.Option("--run", help="Run folder: checkpoint.pt and log.csv; an existing checkpoint is resumed.")
    ],
    features: Annotated[
        Path | None,
        typer.Option(help="Feature cache (CPU path: backbone frozen). Omit to train end to end from --crops."),
    ] = None,
    crops: Annotated[Path | None, typer.Option(help="Crop cache for end-to-end training (GPU path).")] = None,
    synthetic: Annotated[int, typer.Option(min=0, help="Generated clips added to --crops (end-to-end path).")] = 0,
    preset: PresetOption = "mobile",
    init: InitOption = None,
    steps: Annotated[
        int, typer.Option(min=1, help="Total optimiser steps of the run (resumes count).")
    ] = TRAIN_DEFAULTS.max_steps,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Pairs per step (per GPU under torchrun).")
    ] = TRAIN_DEFAULTS.batch_size,
    lr: Annotated[
        float, typer.Option(help="Adam learning rate of the new modules (backbone: x0.1).")
    ] = TRAIN_DEFAULTS.learning_rate,
    decay_every: Annotated[
        int, typer.Option(min=1, help="Multiply the learning rate by 0.2 every this many steps (counted from step 0).")
    ] = TRAIN_DEFAULTS.decay_every,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop after this many minutes on a resumable checkpoint.")
    ] = None,
    device: DeviceOption = "auto",
    start_from: Annotated[
        Path | None,
        typer.Option(
            help="Start a new run from trained IBFP weights (e.g. weights/ibfp-0.2.1.pt) instead of a new "
            "network; --init is then not needed. Ignored when the run folder already has a checkpoint.",
            dir_okay=False,
            exists=True,
        ),
    ] = None,
    trainable: Annotated[
        Trainable,
        typer.Option(
            help="What trains: all = the whole network but the frozen backbone layers; box = only the "
            "head's box branch (with --start-from: better boxes, the same target-finding), on "
            "positive pairs only."
        ),
    ] = TRAIN_DEFAULTS.trainable,
) -> None:
    """Train (or resume) a run. Multi-GPU: `torchrun --nproc_per_node N -m ibfp_cli train run ...`."""
    from dataclasses import replace

    from ..train.api import run_training
    from ..train.data import SamplingConfig

    cfg = replace(
        TRAIN_DEFAULTS,
        max_steps=steps,
        batch_size=batch_size,
        learning_rate=lr,
        decay_every=decay_every,
        trainable=trainable,
    )

    with reported_errors():
        state = run_training(
            run_dir,
            features=features,
            crops=crops,
            synthetic=synthetic,
            preset=preset,
            init=init,
            start_from=start_from,
            cfg=cfg,
            sampling=SamplingConfig(),
            device=device,
            max_minutes=max_minutes,
            report=_report_step,
        )
    out.print(f"run {run_dir}: step {state.step} of {steps}; checkpoint saved")


@train_app.command("export")
def train_export(
    run_dir: Annotated[Path, typer.Option("--run", help="Run folder with checkpoint.pt.")],
    out_file: Annotated[Path, typer.Option("--out", help="Weights file to write, e.g. weights/ibfp-0.1.0.pt.")],
    data_note: Annotated[
        str, typer.Option("--data", help="What the run was trained on (kept in the file's metadata).")
    ] = "",
    tracker_config: TrackerConfigOption = None,
) -> None:
    """Write a run's model as an fp16 weights file that `ibfp track` loads (with the tracker
    settings it is tracked with: the defaults, or those given with --tracker-config)."""
    from ..config import TrackerConfig, overridden, parse_settings
    from ..train.api import export_weights

    with reported_errors():
        check_outputs(out_file)
        tracker = overridden(TrackerConfig(), parse_settings(TrackerConfig, tracker_config or []))
        meta = export_weights(run_dir, out_file, data_note, tracker)
    out.print(f"wrote {out_file} ({out_file.stat().st_size / 2**20:.1f} MiB, step {meta['steps']})")


campaign_app = typer.Typer(
    help="The long training run that resumes wherever it stopped (weights/TRAINING.md).", no_args_is_help=True
)
train_app.add_typer(campaign_app, name="campaign")
CampaignName = Annotated[
    str, typer.Option("--name", help="Campaign name: run folder $IBFP_RUNS/NAME, resume point weights/resume/NAME.pt.")
]


@campaign_app.command("run")
def campaign_run(
    crops: Annotated[Path, typer.Option(help="Crop cache from `ibfp train prepare`.")] = Path("cache/crops"),
    minutes: Annotated[
        float | None,
        typer.Option(help="Stop after this many minutes, on a checkpoint. Default: until stopped (Ctrl-C, kill)."),
    ] = None,
    name: CampaignName = "campaign",
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Pairs per step. Default: the recipe's.", show_default=False)
    ] = None,
    device: DeviceOption = "auto",
    models: Annotated[
        Path | None,
        typer.Option(
            "--opencv-models",
            help="Folder of NanoTrack's ONNX files (as `ibfp eval` takes it), the recipe's teacher: a training "
            "signal only. "
            "Default: $IBFP_OPENCV_MODELS.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train the campaign from the newer of its run folder's checkpoint and its committed resume point,
    with fresh augmented views every step; a checkpoint at least every 10 minutes, so it can be killed."""
    from ..train.campaign import run_campaign

    with reported_errors():
        state = run_campaign(
            name, crops, minutes=minutes, device=device, batch_size=batch_size, say=err.print, report=_report_step,
            models=models,
        )  # fmt: skip
    out.print(f"campaign {name}: step {state.step}, {state.pairs:,} pairs; checkpoint saved")


@campaign_app.command("trial")
def campaign_trial(
    variant: Annotated[
        str,
        typer.Argument(
            help="Recipe variant (TRIALS in ibfp_cli/train/campaign.py): control (the recipe as it stands), "
            "wide-jitter (wider scale and aspect jitter), backbone-fast (the backbone's last stage at the "
            "heads' rate), search-224 (224 px crops), lean (224 px crops, 2-layer head branches), "
            "box-040 (the shipped 0.4.0, its box branch alone trained on, from step 0), "
            "distractors (half the positive pairs with a look-alike pasted beside the target), "
            "wide-views (a quarter of the search views as wide as the tracker's crop after a loss), "
            "stills (half the pairs from still images), decayed (learning rate x0.2), "
            "revive (dead channels re-initialised, AdamW), distill (the teacher's weight doubled), "
            "undistilled (no teacher), centre-weighted (the centre loss weighted as the box terms "
            "are by the teacher).",
            show_default=False,
        ),
    ],
    steps: Annotated[int, typer.Option(min=1, help="Steps to train from the trial's fork point.")] = 1000,
    crops: Annotated[Path, typer.Option(help="Crop cache from `ibfp train prepare`.")] = Path("cache/crops"),
    data: Annotated[
        Path, typer.Option(help="Data folder with the validation sequences (sot/, sot-train/).")
    ] = DEFAULT_DATA,
    name: CampaignName = "campaign",
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    trained: Annotated[
        Path | None,
        typer.Option(
            help="A trial a GPU stretch brought back (`device_stretch run --trials`: its folder "
            "NAME-trial-VARIANT): checked and logged here, not trained.",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """A short run to choose the recipe by: the variant trained STEPS steps from the campaign's
    resume point (run folder $IBFP_RUNS/NAME-trial-VARIANT; killed, it resumes), then the network
    check on the validation sequences and a row in weights/TRAINING.md's short-run table. Adopt the
    winner with `ibfp train campaign save --from $IBFP_RUNS/NAME-trial-VARIANT/resume.pt`."""
    from ..train.campaign import TRAINING_LOG, run_trial

    with reported_errors():
        trial = run_trial(
            variant, crops, data, steps=steps, device=device, backend=backend, name=name, say=err.print,
            report=_report_step, trained=trained,
        )  # fmt: skip
    out.print(trial.row())
    out.print(f"row added to {TRAINING_LOG}")


@campaign_app.command("save")
def campaign_save(
    data: Annotated[
        Path, typer.Option(help="Data folder with the validation sequences (sot/, sot-train/).")
    ] = DEFAULT_DATA,
    name: CampaignName = "campaign",
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="A resume point a device stretch brought back (campaign.pt, its log.csv beside it) "
            "instead of the run folder's checkpoint.",
            dir_okay=False,
            exists=True,
            show_default=False,
        ),
    ] = None,
    device: DeviceOption = "cpu",
    backend: BackendOption = "auto",
) -> None:
    """End a stretch: write the resume point to commit, check the network on the validation
    sequences, and add the stretch's row to weights/TRAINING.md."""
    from ..train.campaign import TRAINING_LOG, end_stretch, resume_point

    with reported_errors(), stage_progress("sequences"):
        stretch = end_stretch(name, data, source=source, device=device, backend=backend)
    out.print(stretch.row())
    out.print(f"commit {resume_point(name)} and {TRAINING_LOG}")
