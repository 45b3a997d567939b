"""How lean must IBFP's network be for issue 26.5? Speed of smaller search crops and shallower head
branches against the shipped network and NanoTrack, every run timed in turn in one process:

    python benchmarks/lean.py                     # generated 640x480 clip, 2 CPU threads
    python benchmarks/lean.py --repeats 7 --frames 200

Each variant is the shipped network with one architecture setting changed (`ModelConfig`), its
tensors taken from the shipped weights where names and shapes match: speed does not depend on the
values, so no training is needed to decide which architecture can reach the target before training
one. A variant whose new layers are random may lose the target and then skip the online update;
the `online` column shows it. The ratio to NanoTrack includes decoding, as issue 26 states it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from speed import (
    CPU_THREADS,
    SHARED_MODELS,
    STAGES,
    WARMUP_FRAMES,
    decode_all,
    ibfp_model,
    nano_tracker,
    one_object_times,
)

from ibfp_cli.boxes import Box
from ibfp_cli.media.synthetic import SyntheticSpec, write_synthetic_video
from ibfp_cli.model.ibfp import IBFP
from ibfp_cli.tracking.backends import onnx_available
from ibfp_cli.tracking.opencv_trackers import MODELS_ENV
from ibfp_cli.tracking.tracker import IBFPTracker

VARIANTS: dict[str, dict[str, int]] = {
    "shipped": {},
    "head 3 layers": {"head_layers": 3},
    "head 2 layers": {"head_layers": 2},
    "search 256": {"input_size": 256},
    "search 224": {"input_size": 224},
    "search 256, head 3": {"input_size": 256, "head_layers": 3},
    "search 224, head 3": {"input_size": 224, "head_layers": 3},
    "search 224, head 2": {"input_size": 224, "head_layers": 2},
}
"""Architecture changes timed (fields of ModelConfig); the paper's 288 px crops and 5-layer branches
are the shipped network's."""
TARGET = 0.5  # issue 26: default `ibfp track` at least 0.5x NanoTrack's frames/s, decode included


def variant_model(shipped: IBFP, change: dict[str, int]) -> IBFP:
    """The shipped network with `change` made, its tensors wherever names and shapes match."""
    model = IBFP(replace(shipped.config, **change))
    own = model.state_dict()
    taken = {k: v for k, v in shipped.state_dict().items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(taken, strict=False)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames to time per run")
    parser.add_argument("--repeats", type=int, default=5, help="timings of every run, in turn (medians)")
    default_models = os.environ.get(MODELS_ENV) or (str(SHARED_MODELS) if SHARED_MODELS.is_dir() else None)
    parser.add_argument("--opencv-models", type=Path, default=default_models, help="folder with NanoTrack's ONNX files")
    args = parser.parse_args()
    torch.set_num_threads(CPU_THREADS)
    cv2.setNumThreads(CPU_THREADS)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        gt = write_synthetic_video(video, SyntheticSpec(frames=args.frames + 1 + WARMUP_FRAMES))
        images, decode_s = decode_all(video, args.frames + 1 + WARMUP_FRAMES)
    box = Box(*gt[0])
    shipped, source = ibfp_model(None)
    backends = ["onnx", "onnx-int8"] if onnx_available() else ["torch"]
    trackers = {
        (name, backend): IBFPTracker(model=variant_model(shipped, change), device="cpu", backend=backend, profile=True)
        for name, change in VARIANTS.items()
        for backend in backends
    }
    seconds, stages, nano_runs = one_object_times(trackers, nano_tracker(args.opencv_models), images, box, args.repeats)

    def fps(per_frame: float) -> float:
        return 1 / (per_frame + decode_s)

    title = f"IBFP variants of {source}, one object, 640x480, {args.frames} frames, median of {args.repeats}"
    table = Table(title=title)
    for column in ("variant", "backend", *[f"{s} ms" for s in STAGES], "total ms", "x shipped", "x NanoTrack"):
        table.add_column(column, justify="right")
    for (name, backend), runs in seconds.items():
        base = seconds["shipped", backend]
        x_base = np.median([fps(a) / fps(b) for a, b in zip(runs, base)])
        x_nano = np.median([fps(a) / fps(n) for a, n in zip(runs, nano_runs)]) if nano_runs else float("nan")
        mark = " (target)" if x_nano >= TARGET else ""
        table.add_row(
            name,
            backend,
            *[f"{v:.1f}" for v in stages[name, backend]],
            f"{1000 * np.median(runs):.1f}",
            f"{x_base:.2f}",
            f"{x_nano:.2f}{mark}",
        )
    console = Console(width=200)
    console.print(table)
    nano = f"NanoTrack {1000 * np.median(nano_runs):.1f} ms/frame, " if nano_runs else "NanoTrack not found, "
    console.print(f"in this run: {nano}PyAV decode {1000 * decode_s:.1f} ms/frame; ratios are frames/s with decoding")


if __name__ == "__main__":
    main()
