"""`ibfp eval`: trackers scored on a benchmark."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import IBFPError
from ..tracking.opencv_trackers import MODELS_ENV
from ..tracking.registry import tracker_names
from .common import (
    BackendOption,
    DeviceOption,
    TrackerConfigOption,
    WeightsOption,
    out,
    reported_errors,
    stage_progress,
)


def evaluate(
    dataset: Annotated[
        Path,
        typer.Argument(
            metavar="DATASET",
            help="Benchmark folder (project layout <name>.mp4 + <name>.gt.csv, OTB, GOT-10k or LaSOT). "
            "A gt.csv with an id column (frame,id,x,y,w,h) holds several objects: its first is scored "
            "alone as usual, and all are also tracked together and counted for identity switches.",
            show_default=False,
        ),
    ],
    trackers: Annotated[
        str | None,
        typer.Option(
            "--tracker",
            help="Comma-separated trackers to compare, e.g. ibfp,nano,csrt. "
            "Default: every tracker `ibfp trackers` lists.",
            show_default=False,
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Report folder; finished runs found there are reused.", file_okay=False)
    ] = Path("report"),
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    weights: WeightsOption = None,
    tracker_config: TrackerConfigOption = None,
    opencv_models: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the NanoTrack and VitTrack ONNX files.",
            envvar=MODELS_ENV,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Parallel tracking processes. Default: half the CPU cores.", min=1, show_default=False),
    ] = None,
    sequences: Annotated[
        str | None, typer.Option(help="Comma-separated sequence names to run. Default: all.", show_default=False)
    ] = None,
    val_split: Annotated[
        bool,
        typer.Option(
            "--val-split",
            help="Run only the validation split that training never sees (the names in ibfp_cli/train/val_split.txt); "
            "with --sequences, those of its sequences.",
        ),
    ] = False,
    tuning_split: Annotated[
        bool,
        typer.Option(
            "--tuning-split",
            help="Run only the tuning split, the training footage to tune tracker settings on: every 3rd "
            "sequence of DATASET outside the validation split, by name; with --sequences, those of its sequences.",
        ),
    ] = False,
    starts: Annotated[
        int,
        typer.Option(
            help="Runs per sequence: from frame 0 and from STARTS - 1 later frames spread evenly over it "
            "(OTB's temporal robustness evaluation), each from the ground-truth box there; a sequence "
            "scores the mean of its runs, so one lucky or unlucky moment weighs less.",
            min=1,
        ),
    ] = 1,
    against: Annotated[
        Path | None,
        typer.Option(
            help="An earlier report folder of the same sequences (other weights or settings): each tracker "
            "in both is compared with its runs there, paired by sequence (AUC gain, its 90% bootstrap "
            "interval, sequences better), in against.csv and report.md.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    network_check: Annotated[
        bool,
        typer.Option(
            "--network-check",
            help="Also check the IBFP network alone: its box on search crops centred on the true box, "
            "every 5th frame (network_check.csv and a section of report.md); NanoTrack's network too "
            "when nano is among the trackers.",
        ),
    ] = False,
) -> None:
    """Score trackers on a benchmark (OTB success AUC, precision, normalised precision, speed)."""
    from ..config import TrackerConfig, parse_settings
    from ..evaluate import (  # pandas and friends: load on demand
        render_against_table,
        render_rich_table,
        render_together_table,
        run_evaluation,
    )
    from ..evaluate.datasets import open_dataset
    from ..train.prepare import tuning_sequences, val_sequences

    if opencv_models is not None:
        os.environ[MODELS_ENV] = str(opencv_models)  # worker processes inherit it
    with reported_errors(), stage_progress(unit="runs") as stage:
        chosen = _comma_list(sequences) if sequences else None
        if val_split and tuning_split:
            raise IBFPError("--val-split and --tuning-split: give one of them")
        if val_split:
            chosen = split_subset(
                chosen, val_sequences(), "--val-split", "the validation split (ibfp_cli/train/val_split.txt)"
            )
        if tuning_split:
            tuning = tuning_sequences(s.name for s in open_dataset(dataset))
            if not tuning:
                raise IBFPError(f"--tuning-split: {dataset} has no sequence outside the validation split")
            chosen = split_subset(chosen, set(tuning), "--tuning-split", f"the tuning split of {dataset}")
        settings = parse_settings(TrackerConfig, tracker_config or [])
        runs = stage("tracker x sequence runs")
        report = run_evaluation(
            dataset,
            _comma_list(trackers) if trackers else tracker_names(),
            out_dir,
            device=device,
            backend=backend,
            weights=weights,
            workers=workers,
            sequences=chosen,
            progress=lambda done, total, _label: runs(done, total),
            network=network_check,
            tracker_config=settings,
            starts=starts,
            against=against,
        )
    out.print(render_rich_table(report))
    if report.together is not None:
        out.print(render_together_table(report.together))
    if report.against is not None:
        out.print(render_against_table(report.against))
    out.print(f"report written to {escape(str(out_dir))}")


def split_subset(names: list[str] | None, split: set[str], flag: str, described: str) -> list[str]:
    """A split's sequences, or those of `names` when given (each must be in it)."""
    if names is None:
        return sorted(split)
    outside = [name for name in names if name not in split]
    if outside:
        raise IBFPError(f"{flag}: {', '.join(outside)} not in {described}")
    return names


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]
