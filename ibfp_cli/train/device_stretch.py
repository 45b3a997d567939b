"""One GPU stretch of the training campaign in one command (issue 26.6).

A device here is lent rarely and briefly: one NVIDIA H200 with 16 CPU cores, about 10 minutes a
command, at most 64 MiB carried in, no network, no PyAV (torch, OpenCV, numpy, pandas, rich and
typer are there). `run` makes the most of it: the CUDA tests and the speed benchmark where PyAV
travelled as a wheel, then the campaign trained from its committed resume point with every crop
decoded into memory once, augmentation on the CPU cores in worker processes, bf16 and large
batches. Everything that comes back is in one folder: the new resume point, the loss log, the
tests' and the benchmark's output, and a summary. README, Training, gives the exact calls:

    python -m ibfp_cli.train.device_stretch pack --crops cache/crops --out .carry/train    # here (+ the teacher)
    python -m ibfp_cli.train.device_stretch run --pack .carry/train --out /tmp/dry --device cpu --minutes 1
    python3 -m ibfp_cli.train.device_stretch run --pack .carry/train --out $OUT --tests    # there
    ibfp train campaign save --from FILES_AT/campaign.pt                                   # back here

`run --trials control,VARIANT` trains short runs at equal pairs instead (`campaign.TRIALS`), each
into its own folder of `--out`, for `ibfp train campaign trial VARIANT --trained FOLDER` here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import TrackerConfig
from ..errors import IBFPError
from ..tracking.denormals import flush_denormals
from ..tracking.nano_network import models_folder
from ..tracking.opencv_trackers import MODELS_ENV, NANO_BACKBONE, NANO_HEAD
from ..tracking.tracker import pick_device
from .campaign import (
    RECIPE,
    RUNS_ENV,
    TRIAL_FORK,
    TRIAL_POINT,
    TRIALS,
    Recipe,
    find_start,
    fork_point,
    resume_point,
    runs_root,
    save_resume_point,
    trial_fork,
    trial_name,
)
from .data import ImageBatch, PairSampler, Source, image_batch
from .loop import CHECKPOINT, LOG, RunState, train
from .prepare import INDEX_FILE, META_FILE, CacheConfig, load_crop_cache
from .teacher import NanoTeacher, TeacherBoxes

PACK_BUDGET_MIB = 48.0  # the carry limit is 64 MiB a command; the rest is the repository itself
GPU_BATCH = 64  # pairs per step on the device: 4x the CPU recipe's 16
CPU_BATCH_REFERENCE = 16  # the recipe's batch, to which its learning rate belongs
TESTS_MINUTES = 2.0  # the CUDA tests and the speed benchmark, when asked for
CUDA_TESTS = ("tests/test_tracker.py", "tests/test_onnx_backend.py", "tests/test_cli_polish.py")
RUN_NAME = "campaign"
RESUME_FILE = f"{RUN_NAME}.pt"
SUMMARY_FILE = "summary.json"
TEACHER_FOLDER = "models"  # NanoTrack's ONNX files in a pack: the teacher of a recipe that distils
TRIAL_TIME_MARGIN = 1.5  # a trial after the first may take this many shares of time to reach its steps


def pack(crops: Path, out: Path, budget_mib: float = PACK_BUDGET_MIB, models: Path | None = None) -> pd.DataFrame:
    """Copy the crop cache to `out`, thinning the largest sources (every 2nd crop, re-encoded)
    until it fits the budget, and NanoTrack's two ONNX files from `models` into out/models (the
    recipe's teacher, 1.8 MiB beside the budget). Returns the packed index."""
    from ..media.video import VideoWriter  # PyAV: packing happens on a machine that has it

    if models is not None:
        folder = models_folder(models)
        (out / TEACHER_FOLDER).mkdir(parents=True, exist_ok=True)
        for name in (NANO_BACKBONE, NANO_HEAD):
            shutil.copyfile(folder / name, out / TEACHER_FOLDER / name)

    index = pd.read_csv(crops / INDEX_FILE)
    sizes = {name: (crops / f"{name}.mp4").stat().st_size / 2**20 for name in index.source.unique()}
    steps = dict.fromkeys(sizes, 1)
    while sum(sizes[n] / steps[n] for n in sizes) + (crops / INDEX_FILE).stat().st_size / 2**20 > budget_mib:
        largest = max(sizes, key=lambda n: sizes[n] / steps[n])
        steps[largest] *= 2
    out.mkdir(parents=True, exist_ok=True)
    thinned = {n for n, s in steps.items() if s > 1}
    sources = {s.name: s for s in load_crop_cache(crops) if s.name in thinned} if thinned else {}
    rows = []
    cfg = CacheConfig()
    for name, group in index.groupby("source", sort=True):
        group = group.sort_values("item")
        if name not in thinned:
            shutil.copyfile(crops / f"{name}.mp4", out / f"{name}.mp4")
            rows.append(group)
            continue
        source = sources[name]
        keep = np.arange(0, len(group), steps[name])
        with VideoWriter(out / f"{name}.mp4", cfg.crop_size, cfg.crop_size, cfg.fps, crf=cfg.crf) as writer:
            for i in keep:
                writer.write(source.frames[i])
        kept = group.iloc[keep].copy()
        kept["item"] = np.arange(len(kept))
        rows.append(kept)
    packed = pd.concat(rows)
    packed.to_csv(out / INDEX_FILE, index=False)
    shutil.copyfile(crops / META_FILE, out / META_FILE)
    return packed


class _Batches(torch.utils.data.IterableDataset):
    """Endless augmented batches, each worker drawing with its own seed (fresh views every step),
    with the teacher's boxes for each where the recipe distils (each worker its own teacher)."""

    def __init__(self, sources: list[Source], batch: int, seed: int, recipe: Recipe, models: Path | None) -> None:
        self.sources, self.batch, self.seed, self.recipe, self.models = sources, batch, seed, recipe, models

    def __iter__(self) -> Iterator[tuple[ImageBatch, TeacherBoxes | None]]:
        info = torch.utils.data.get_worker_info()
        sampler = PairSampler(self.sources, self.recipe.sampling, self.seed * 1000 + (info.id if info else 0))
        area, size = TrackerConfig().search_area_scale, self.recipe.model.input_size
        loss = self.recipe.train.loss
        teacher = NanoTeacher(self.models) if loss.distill_weight else None
        while True:
            batch = image_batch(sampler, self.batch, area, size, self.recipe.template_aug, self.recipe.search_aug)
            yield batch, teacher.boxes(batch, loss.distill_found_iou) if teacher else None


def train_stretch(
    pack_dir: Path,
    out: Path,
    *,
    minutes: float,
    device: str,
    batch: int,
    workers: int,
    recipe: Recipe = RECIPE,
    name: str = RUN_NAME,
    until: int | None = None,
) -> RunState:
    """Train the campaign (or run `name`, a trial forking from the campaign's resume point) from
    its newest start for `minutes` on `device`, or to step `until` (run folder under $IBFP_RUNS);
    write the new resume point, the loss log and a summary into `out`."""
    from .api import training_sources

    trial = name != RUN_NAME
    start = find_start(name, recipe, fork_point(recipe, RUN_NAME))
    print(start.description, flush=True)
    sources = training_sources(pack_dir, recipe.synthetic, recipe.train.seed)
    steps_before = start.state.step if start.state else 0
    # the recipe's rate belongs to its batch; a larger batch takes it up by the square root
    lr = recipe.train.learning_rate * math.sqrt(batch / CPU_BATCH_REFERENCE)
    cfg = replace(recipe.train, model=recipe.model, batch_size=batch, learning_rate=lr)
    if until is not None:
        cfg = replace(cfg, max_steps=until)
    teacher_files = pack_dir / TEACHER_FOLDER if (pack_dir / TEACHER_FOLDER).is_dir() else None
    loader = torch.utils.data.DataLoader(
        _Batches(sources, batch, cfg.seed + steps_before, recipe, teacher_files),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=4 if workers else None,
        persistent_workers=bool(workers),
    )
    batches = iter(loader)
    rng = np.random.default_rng(cfg.seed)
    taught: list[TeacherBoxes | None] = [None]  # the teacher's boxes for the batch last drawn

    def next_batch() -> ImageBatch:
        drawn, taught[0] = next(batches)
        return drawn

    def teacher(_: ImageBatch) -> TeacherBoxes:
        assert taught[0] is not None
        return taught[0]

    def report(step: int, row: dict[str, float]) -> None:
        print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "step"), flush=True)

    started = time.monotonic()
    state = train(
        runs_root() / name,
        start.model,
        next_batch,
        rng,
        cfg,
        device=pick_device(device),
        max_minutes=minutes,
        report=report,
        start=start.state,
        teacher=teacher if cfg.loss.distill_weight else None,
    )
    seconds = time.monotonic() - started
    run_dir = runs_root() / name
    data = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    model = start.model.cpu()
    model.load_state_dict(data["model"])
    out.mkdir(parents=True, exist_ok=True)
    save_resume_point(out / (TRIAL_POINT if trial else RESUME_FILE), model, state, recipe)
    if trial:  # recorded by `trial_fork` in the run folder, kept when a trial resumes there
        shutil.copyfile(run_dir / TRIAL_FORK, out / TRIAL_FORK)
    shutil.copyfile(run_dir / LOG, out / LOG)
    summary = {
        "device": torch.cuda.get_device_name() if state.seconds.get("cuda") else f"cpu ({os.cpu_count()} cores)",
        "steps": [steps_before, state.step],
        "pairs": state.pairs,
        "batch": batch,
        "learning_rate": lr,
        "workers": workers,
        "seconds": round(seconds, 1),
        "pairs_per_second": round((state.step - steps_before) * batch / seconds, 1),
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary), flush=True)
    return state


def train_trials(
    pack_dir: Path, out: Path, variants: list[str], *, minutes: float, device: str, batch: int, workers: int
) -> dict[str, RunState]:
    """Short runs on the device at equal pairs: the first variant trains for its share of
    `minutes`, each other one as many steps from the same start (at most 1.5 shares of time).
    Each comes back in out/<its run folder name>/ for `ibfp train campaign trial VARIANT --trained`."""
    share = minutes / len(variants)
    steps: int | None = None
    states = {}
    for variant in variants:
        recipe, name = TRIALS[variant], trial_name(variant)
        fork = trial_fork(runs_root() / name, fork_point(recipe, RUN_NAME))
        if fork is None:
            raise IBFPError(f"no resume point ({resume_point(RUN_NAME)}) to fork trial {variant!r} from")
        until = None if steps is None else fork.step + steps
        state = train_stretch(
            pack_dir, out / name, minutes=share if steps is None else TRIAL_TIME_MARGIN * share, device=device,
            batch=batch, workers=workers, recipe=recipe, name=name, until=until,
        )  # fmt: skip
        steps = state.step - fork.step if steps is None else steps
        states[variant] = state
    return states


def run_checks(out: Path) -> None:
    """The CUDA tests and the speed benchmark, their output in `out`; skipped without PyAV."""
    try:
        import av  # noqa: F401
    except ImportError:
        (out / "tests.txt").write_text("skipped: PyAV is not installed here (carry its wheel, README Training)\n")
        return
    commands = {
        "tests.txt": [sys.executable, "-m", "pytest", "-q", "-k", "cuda", *CUDA_TESTS],
        "speed.txt": [sys.executable, "benchmarks/speed.py", "--no-batch"],
    }
    for name, command in commands.items():
        done = subprocess.run(command, capture_output=True, text=True, timeout=TESTS_MINUTES * 60 / len(commands))
        (out / name).write_text(done.stdout + done.stderr + f"\nexit {done.returncode}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ibfp_cli.train.device_stretch", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack", help="copy the crop cache, thinned to fit one carry")
    p.add_argument("--crops", type=Path, default=Path("cache/crops"), help="crop cache of `ibfp train prepare`")
    p.add_argument("--out", type=Path, required=True, help="folder to write (name it in the device run's carry)")
    p.add_argument("--budget", type=float, default=PACK_BUDGET_MIB, help="largest size of the pack, MiB")
    p.add_argument(
        "--opencv-models",
        dest="models",
        type=Path,
        default=None,
        help=f"folder of NanoTrack's ONNX files, the recipe's teacher (default: ${MODELS_ENV})",
    )  # fmt: skip
    r = commands.add_parser("run", help="the stretch: checks, then training, results in --out")
    r.add_argument("--pack", type=Path, required=True, help="folder written by `pack`")
    r.add_argument("--out", type=Path, required=True, help="results folder ($OUT on the device)")
    r.add_argument("--minutes", type=float, default=7.0, help="training minutes (after the checks)")
    r.add_argument("--device", default="auto", help="auto, cuda or cpu (cpu: the dry run)")
    r.add_argument("--batch", type=int, default=GPU_BATCH, help="pairs per step")
    r.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2), help="augmenting processes")
    r.add_argument("--runs", type=Path, default=Path("/tmp/ibfp-runs"), help="run folder root on that machine")
    r.add_argument("--tests", action="store_true", help="run the CUDA tests and the speed benchmark first")
    r.add_argument("--trials", help="comma-separated TRIALS variants, control first: short runs at equal pairs instead")
    args = parser.parse_args(argv)
    if args.command == "pack":
        models = args.models or (Path(os.environ[MODELS_ENV]) if os.environ.get(MODELS_ENV) else None)
        if RECIPE.train.loss.distill_weight and models is None:
            parser.error(f"the recipe distils from NanoTrack: name its files' folder (--opencv-models, ${MODELS_ENV})")
        packed = pack(args.crops, args.out, args.budget, models)
        size = sum(p.stat().st_size for p in args.out.iterdir()) / 2**20
        print(f"{len(packed)} crops from {packed.source.nunique()} sources in {args.out} ({size:.1f} MiB)")
        return
    flush_denormals()  # as `ibfp train` does: a CPU dry run's steps up to 4x faster
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tests:
        run_checks(args.out)
    os.environ[RUNS_ENV] = str(args.runs)
    if args.trials:
        variants = args.trials.split(",")
        unknown = [v for v in variants if v not in TRIALS]
        if unknown:
            parser.error(f"no trial {', '.join(unknown)}: choose from {', '.join(TRIALS)}")
        train_trials(
            args.pack, args.out, variants, minutes=args.minutes, device=args.device, batch=args.batch,
            workers=args.workers,
        )  # fmt: skip
        return
    train_stretch(args.pack, args.out, minutes=args.minutes, device=args.device, batch=args.batch, workers=args.workers)


if __name__ == "__main__":
    main()
