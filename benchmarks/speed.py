"""Per-frame speed of IBFP, split by stage, against PyAV decode-only and OpenCV's MIL tracker.

All figures come from one run on the same video, so the ratios hold on any machine:

    python benchmarks/speed.py                       # generated 640x480 clip, CPU (2 threads) and CUDA if present
    python benchmarks/speed.py --video clip.mp4 --box 100,50,80,120 --frames 300

A second table times several objects on the same frames (--objects, default 4): each updated
on its own, against all updated together with their search crops in one network batch.

Without shipped weights (or --weights), a randomly initialised model of the shipped preset
is timed: speed does not depend on the weights' values, but with random weights the target
is often "lost" and the online update then skipped, so such rows say so.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from ibfp_cli.boxes import Box, parse_box
from ibfp_cli.config import MODEL_PRESETS
from ibfp_cli.errors import WeightsError
from ibfp_cli.model.ibfp import IBFP
from ibfp_cli.opencv_trackers import create_mil
from ibfp_cli.synthetic import SyntheticSpec, write_synthetic_video
from ibfp_cli.tracker import IBFPTracker
from ibfp_cli.video import read_video
from ibfp_cli.weights import load_model, resolve_weights

STAGES = ("crop", "backbone", "fusion+head", "post", "online")
CPU_THREADS = 2  # issue 4: the CPU target is stated for 2 cores
WARMUP_FRAMES = 5


def decode_all(path: Path, frames: int) -> tuple[list[np.ndarray], float]:
    """Decoded frames and decode seconds per frame."""
    images = []
    start = time.perf_counter()
    for frame in read_video(path):
        images.append(frame.image)
        if len(images) == frames:
            break
    return images, (time.perf_counter() - start) / len(images)


def seconds_per_frame(
    step: Callable[[np.ndarray], object], images: list[np.ndarray], warmed_up: Callable[[], None] = lambda: None
) -> float:
    """Seconds per step(image) over the frames after the seed frame and a short warm-up;
    `warmed_up` runs between the two (to reset stage timers)."""
    for image in images[1 : 1 + WARMUP_FRAMES]:
        step(image)
    warmed_up()
    rest = images[1 + WARMUP_FRAMES :]
    start = time.perf_counter()
    for image in rest:
        step(image)
    return (time.perf_counter() - start) / len(rest)


def time_tracker(tracker, images: list[np.ndarray], box: Box) -> float:
    """Seconds per update() of one tracker; an IBFP tracker's stage times cover the timed frames."""
    tracker.init(images[0], box)
    if isinstance(tracker, IBFPTracker):
        return seconds_per_frame(tracker.update, images, tracker.times.reset)
    return seconds_per_frame(tracker.update, images)


def update_objects(trackers: list[IBFPTracker], together: bool, image: np.ndarray) -> None:
    """One frame for every object: in one network batch, or each on its own."""
    if together:
        IBFPTracker.update_many(trackers, image)
    else:
        for tracker in trackers:
            tracker.update(image)


def time_objects(model: IBFP, device: str, images: list[np.ndarray], boxes: list[Box]) -> tuple[float, float]:
    """Seconds per frame for all objects: updated one by one, and together (one network batch)."""
    timings = []
    for together in (False, True):
        trackers = [IBFPTracker(model=model, device=device) for _ in boxes]
        for tracker, box in zip(trackers, boxes):
            tracker.init(images[0], box)
        timings.append(seconds_per_frame(functools.partial(update_objects, trackers, together), images))
    return timings[0], timings[1]


def object_boxes(box: Box, count: int, width: int, height: int) -> list[Box]:
    """The seed box and count - 1 boxes of its size spread along the frame's middle row."""
    others = [
        Box(width * (k + 1) / count - box.w / 2, (height - box.h) / 2, box.w, box.h).clip(width, height)
        for k in range(count - 1)
    ]
    return [box, *others]


def ibfp_model(weights: str | None) -> tuple[IBFP, str]:
    try:
        model, _ = load_model(resolve_weights(weights))
        return model, "shipped weights" if weights is None else str(weights)
    except WeightsError:
        return IBFP(MODEL_PRESETS["mobile"]), "random init (no weights found)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, help="video to time (default: a generated 640x480 clip)")
    parser.add_argument("--box", help="seed box x,y,w,h on frame 0 (with --video)")
    parser.add_argument("--frames", type=int, default=200, help="frames to time")
    parser.add_argument("--weights", help="IBFP weights file (default: the newest shipped)")
    parser.add_argument("--preset", choices=sorted(MODEL_PRESETS), help="time a random model of this preset instead")
    parser.add_argument("--objects", type=int, default=4, help="objects in the several-objects table (1: skip it)")
    args = parser.parse_args()
    console = Console(width=200)
    with tempfile.TemporaryDirectory() as tmp:
        if args.video is None:
            spec = SyntheticSpec(frames=args.frames + 1 + WARMUP_FRAMES)
            video = Path(tmp) / "bench.mp4"
            gt = write_synthetic_video(video, spec)
            box = Box(*gt[0])
        else:
            video, box = args.video, parse_box(args.box)
        torch.set_num_threads(CPU_THREADS)
        images, decode_s = decode_all(video, args.frames + 1 + WARMUP_FRAMES)
    height, width = images[0].shape[:2]
    mil_s = time_tracker(create_mil(), images, box)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    table = Table(title=f"IBFP speed, {width}x{height}, {len(images) - 1 - WARMUP_FRAMES} frames timed")
    for column in (
        "device",
        "model",
        *[f"{s} ms" for s in STAGES],
        "total ms",
        "fps",
        "fps incl. decode",
        "x decode",
        "x MIL",
    ):
        table.add_column(column, justify="right")
    several = Table(title=f"{args.objects} objects per frame, {width}x{height}")
    for column in ("device", "one by one ms", "batched ms", "x one by one", "batched fps"):
        several.add_column(column, justify="right")
    for device in devices:
        if args.preset:
            model, source = IBFP(MODEL_PRESETS[args.preset]), f"random {args.preset}"
        else:
            model, source = ibfp_model(args.weights)
        tracker = IBFPTracker(model=model, device=device, profile=True)
        if device == "cpu":
            torch.set_num_threads(CPU_THREADS)
        per_frame = time_tracker(tracker, images, box)
        stage_ms = [1000 * tracker.times.seconds.get(s, 0.0) / tracker.times.frames for s in STAGES]
        name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({CPU_THREADS} threads)"
        table.add_row(
            name,
            source,
            *[f"{v:.1f}" for v in stage_ms],
            f"{1000 * per_frame:.1f}",
            f"{1 / per_frame:.1f}",
            f"{1 / (per_frame + decode_s):.1f}",
            f"{decode_s / per_frame:.2f}",
            f"{mil_s / per_frame:.2f}",
        )
        if args.objects > 1:
            boxes = object_boxes(box, args.objects, width, height)
            alone_s, batched_s = time_objects(model, device, images, boxes)
            several.add_row(
                name,
                f"{1000 * alone_s:.1f}",
                f"{1000 * batched_s:.1f}",
                f"{alone_s / batched_s:.2f}",
                f"{1 / batched_s:.1f}",
            )
    console.print(table)
    if args.objects > 1:
        console.print(several)
        console.print("'x one by one' = time with each object updated on its own / time with one network batch.")
    console.print(
        f"baselines in this run: PyAV decode {1000 * decode_s:.1f} ms/frame ({1 / decode_s:.0f} fps), "
        f"OpenCV MIL {1000 * mil_s:.1f} ms/frame ({1 / mil_s:.0f} fps). "
        "'x decode' = decode time / IBFP time; 'x MIL' = MIL time / IBFP time (above 1: IBFP is faster)."
    )


if __name__ == "__main__":
    main()
