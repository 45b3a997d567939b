"""Several look-alike objects tracked together, with and without knowing each other (issue 28).

    python benchmarks/lookalikes.py                       # 12 generated clips, then uav_person11
    python benchmarks/lookalikes.py --clips 4 --no-video  # a quicker look

Every object of each generated clip (2 to 4 look-alikes that cross and hide each other) is
seeded on frame 0 and all are tracked in one network batch per frame, once with
`use_neighbours` and `use_identity` off (each object as if alone, as before issue 28) and once on, the two runs
interleaved clip by clip so that both see the same machine load. Printed per clip and in all:
crossings, identity switches, merged frames, wrong frames and the share of track-frames
confidently on their own object (`ibfp_cli.evaluate.identities`),
and the tracking time of each run, whose ratio is the cost of knowing the neighbours. Then the
same on `--video` (default ../shared/data/sot/uav_person11.mp4) with the objects of `--truth`
(default: its ground truth and benchmarks/uav_person11.person2.gt.csv) seeded on frame 0.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from ibfp_cli.boxes import Box
from ibfp_cli.evaluate.datasets import read_gt_csv
from ibfp_cli.evaluate.identities import IdentityCounts, confident, identity_counts
from ibfp_cli.media.synthetic import LOOKALIKE_CLIP, SyntheticSpec, synthetic_objects
from ibfp_cli.media.video import read_video
from ibfp_cli.tracking.tracker import IBFPTracker

CPU_THREADS = 2  # the project's CPU figures are stated for 2 cores
HERE = Path(__file__).resolve().parent
SOT = HERE.parents[1] / "shared" / "data" / "sot"
PERSON11 = SOT / "uav_person11.mp4"
PERSON11_TRUTH = [SOT / "uav_person11.gt.csv", HERE / "uav_person11.person2.gt.csv"]
SPEED_CLIP = SyntheticSpec(width=640, height=480, frames=60, distractors=3, seed=11)
"""The speed check: 4 objects of 80x60 on a VGA clip, as benchmarks/speed.py's several-object row."""
SPEED_ROUNDS = 3
"""Timed runs per setting, off and on alternating; the fastest of each counts (least disturbed)."""


def clip_specs(count: int, first_seed: int = 0) -> list[SyntheticSpec]:
    """`count` clips of 2, 3, 4, 2, ... objects, each the next seed from `first_seed` whose
    objects start apart (no two seed boxes overlap on frame 0)."""
    specs, seed = [], first_seed
    while len(specs) < count:
        spec = replace(LOOKALIKE_CLIP, distractors=1 + len(specs) % 3, seed=seed)
        seed += 1
        _, truth = synthetic_objects(replace(spec, frames=1))
        boxes = [Box(*b[0]) for b in truth]
        if all(_apart(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]):
            specs.append(spec)
    return specs


def _apart(a: Box, b: Box) -> bool:
    return a.x2 < b.x or b.x2 < a.x or a.y2 < b.y or b.y2 < a.y


def track(frames: list[np.ndarray], seeds: list[Box], neighbours: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """Every object tracked from its seed on frame 0: boxes (objects, frames, 4), confident
    (objects, frames) and the seconds spent in update_many."""
    trackers = [IBFPTracker(device="cpu") for _ in seeds]
    for tracker, seed in zip(trackers, seeds):
        tracker.config = replace(tracker.config, use_neighbours=neighbours, use_identity=neighbours)
        tracker.init(frames[0], seed)
    boxes = np.empty((len(seeds), len(frames), 4))
    scores = np.ones((len(seeds), len(frames)))
    lost = np.zeros((len(seeds), len(frames)), dtype=bool)
    boxes[:, 0] = [s.xywh() for s in seeds]
    seconds = 0.0
    for i, frame in enumerate(frames[1:], start=1):
        start = time.perf_counter()
        outputs = IBFPTracker.update_many(trackers, frame)
        seconds += time.perf_counter() - start
        for k, out in enumerate(outputs):
            boxes[k, i], scores[k, i], lost[k, i] = out.box.xywh(), out.score, out.lost
    return boxes, confident(scores, lost), seconds


def compare(
    name: str, frames: list[np.ndarray], truth: np.ndarray
) -> tuple[IdentityCounts, IdentityCounts, float, float]:
    """Counts with neighbours off and on, then the seconds of each; printed on one line."""
    seeds = [Box(*t[0]) for t in truth]
    results = []
    for neighbours in (False, True):
        boxes, sure, seconds = track(frames, seeds, neighbours)
        results.append((identity_counts(boxes, sure, truth), seconds))
    (off, off_s), (on, on_s) = results
    print(
        f"{name}: {len(truth)} objects, {off.crossings} crossings; switches {off.switches} -> {on.switches}, "
        f"merged frames {off.merged_frames} -> {on.merged_frames}, wrong frames {off.wrong_frames} -> "
        f"{on.wrong_frames}, confident on its own object {off.own_frames / off.track_frames:.1%} -> "
        f"{on.own_frames / on.track_frames:.1%}; {off_s:.1f} s -> {on_s:.1f} s",
        flush=True,
    )
    return off, on, off_s, on_s


def speed_ratio(rounds: int) -> tuple[float, float]:
    """Fastest seconds per frame over `rounds` runs of SPEED_CLIP, neighbours off and on."""
    frames, truth = synthetic_objects(SPEED_CLIP)
    frames = list(frames)
    seeds = [Box(*t[0]) for t in truth]
    best = {False: float("inf"), True: float("inf")}
    for _ in range(rounds):
        for neighbours in (False, True):
            seconds = track(frames, seeds, neighbours)[2] / (len(frames) - 1)
            best[neighbours] = min(best[neighbours], seconds)
    return best[False], best[True]


def read_truth(paths: list[Path]) -> np.ndarray:
    """(objects, frames, 4) from project ground-truth CSVs, cut to the shortest."""
    tracks = [read_gt_csv(p)[0] for p in paths]
    frames = min(len(t) for t in tracks)
    return np.stack([t[:frames] for t in tracks])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12, help="generated clips (default 12)")
    parser.add_argument("--video", type=Path, default=PERSON11)
    parser.add_argument("--truth", type=Path, nargs="+", default=PERSON11_TRUTH, help="one gt.csv per object")
    parser.add_argument("--no-video", action="store_true", help="generated clips only")
    parser.add_argument("--speed-rounds", type=int, default=SPEED_ROUNDS, help="0: no speed check")
    args = parser.parse_args()
    torch.set_num_threads(CPU_THREADS)
    rows = []
    for spec in clip_specs(args.clips):
        frames, truth = synthetic_objects(spec)
        rows.append(compare(f"clip seed {spec.seed}", list(frames), truth))
    if not args.no_video:
        truth = read_truth(args.truth)
        with read_video(args.video) as reader:
            frames = [f.image for f, _ in zip(reader, range(truth.shape[1]))]
        rows.append(compare(args.video.stem, frames, truth[:, : len(frames)]))
    generated = rows[: args.clips]
    table = Table(title=f"{len(generated)} generated look-alike clips, all objects seeded")
    for column in ("neighbours", "crossings", "switches", "merged frames", "wrong frames", "own frames", "seconds"):
        table.add_column(column, justify="right")
    for label, k in (("off", 0), ("on", 1)):
        counts = [r[k] for r in generated]
        seconds = sum(r[2 + k] for r in generated)
        table.add_row(
            label,
            str(sum(c.crossings for c in counts)),
            str(sum(c.switches for c in counts)),
            str(sum(c.merged_frames for c in counts)),
            str(sum(c.wrong_frames for c in counts)),
            f"{sum(c.own_frames for c in counts) / sum(c.track_frames for c in counts):.1%}",
            f"{seconds:.1f}",
        )
    console = Console()
    console.print(table)
    ratio = sum(r[3] for r in generated) / sum(r[2] for r in generated)
    console.print(f"look-alike clips, time with neighbours on / off: {ratio:.3f} (same run, clips interleaved)")
    if args.speed_rounds:
        off, on = speed_ratio(args.speed_rounds)
        console.print(
            f"{1 + SPEED_CLIP.distractors} objects on a {SPEED_CLIP.width}x{SPEED_CLIP.height} clip: "
            f"{off * 1000:.1f} ms per frame off, {on * 1000:.1f} ms on: ratio {on / off:.3f}"
        )


if __name__ == "__main__":
    main()
