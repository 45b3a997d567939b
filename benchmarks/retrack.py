"""What one correction costs: `ibfp retrack` with the previous run, against a whole retrack.

    python benchmarks/retrack.py                                        # generated 640x480 clip, 241 frames
    python benchmarks/retrack.py --video v.mp4 --gt v.gt.csv --frame 220

The object is tracked from its true box on frame 0 (as `ibfp track`), then the true box on
--frame is added as a correction and the video re-tracked from the keyframes three ways, all in
this process (the network loaded once, so the rows compare tracking work, not start-up):

- local: with the first run as the previous run, as `ibfp retrack --existing` and the correction
  page's Retrack do: each pass stops once its boxes rejoin the first run's (RetrackConfig);
- whole: the same, with every pass run over its whole stretch (rejoin_frames 0), which is what
  a correction cost before passes stopped;
- the first track itself, for scale.

Frames are the object-frames a tracker ran on (`RetrackResult.retracked`); "IoU to whole" is the
mean IoU of the local run's boxes with the whole retrack's.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ibfp_cli.annotate.keyframes import Keyframe, RetrackConfig, combined_keyframes, retrack
from ibfp_cli.annotate.pipeline import Seed, track_video
from ibfp_cli.boxes import Box, iou
from ibfp_cli.media.synthetic import SyntheticSpec, write_synthetic_video

CLIP = SyntheticSpec(width=640, height=480, frames=241, seed=7)
"""The issue's case: 241 frames, a correction on frame 220."""
CORRECTION_SHARE = 220 / 241
"""Where the correction goes by default, as a share of the clip."""


def read_truth(path: Path) -> dict[int, Box]:
    """frame,x,y,w,h rows (the project's .gt.csv)."""
    with path.open(newline="") as f:
        return {int(r["frame"]): Box(*(float(r[c]) for c in "xywh")) for r in csv.DictReader(f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, help="A video; with --gt. Default: a generated clip.")
    parser.add_argument("--gt", type=Path, help="Its true boxes: frame,x,y,w,h per row (0-based frames).")
    parser.add_argument("--frame", type=int, help="The corrected frame. Default: 220/241 of the way in.")
    parser.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.video is None:
            video = Path(folder) / "clip.mp4"
            truth = dict(enumerate(Box(*b) for b in write_synthetic_video(video, CLIP)))
        else:
            video, truth = args.video, read_truth(args.gt)
        frame = args.frame if args.frame is not None else round(CORRECTION_SHARE * len(truth))
        start = time.perf_counter()
        first = track_video(video, [Seed(truth[0])], device=args.device)
        track_s = time.perf_counter() - start
        keyframes = combined_keyframes(first, [Keyframe(frame, 1, truth[frame])])
        runs = {}
        for name, config in (("local", RetrackConfig()), ("whole", RetrackConfig(rejoin_frames=0))):
            start = time.perf_counter()
            result = retrack(video, keyframes, existing=first, device=args.device, config=config)
            runs[name] = (result, time.perf_counter() - start)
    local, whole = runs["local"][0].annotations.records, runs["whole"][0].annotations.records
    agreement = float(np.mean([iou(a.box, b.box) for a, b in zip(local, whole, strict=True)]))
    table = Table(title=f"{video.name}: {len(truth)} frames, correction on frame {frame}")
    for column in ("run", "frames tracked", "seconds", "x whole retrack", "IoU to whole"):
        table.add_column(column, justify="left" if column == "run" else "right")
    whole_s = runs["whole"][1]
    for name, (result, seconds) in runs.items():
        frames = sum(s.last - s.first + 1 for s in result.retracked)
        shown = f"{agreement:.3f}" if name == "local" else "1"
        table.add_row(f"retrack, {name}", str(frames), f"{seconds:.1f}", f"{seconds / whole_s:.2f}", shown)
    table.add_row("first track", str(len(first.records) - 1), f"{track_s:.1f}", f"{track_s / whole_s:.2f}", "")
    Console().print(table)


if __name__ == "__main__":
    main()
