"""How long `ibfp track` takes from process start to its first tracked frame, against baselines.

    python benchmarks/startup.py                 # 5 rounds on a generated 2-frame 1280x720 clip
    python benchmarks/startup.py --rounds 9

`ibfp track` runs as a user runs it (a new process, `python -m ibfp_cli track`) on a clip of two
frames: the box is drawn on frame 0 and frame 1 is the first tracked one, so the process's wall
time is start-up (interpreter, imports, weights, ONNX Runtime sessions, the tracker's first-frame
fit) plus one tracked frame, writing a 2-row file and exiting. Each round times, one after the
other so that a change of load touches every row alike:

- `python -c pass`: the interpreter alone;
- `python -c "import torch"`: what importing torch costs on this machine;
- `ibfp --help`: the command line's own imports (no torch);
- `ibfp track`, warm: the ONNX graphs already exported in the cache folder;
- `ibfp track`, cold: an empty cache folder, so the graphs are exported first (a first run after
  installing, or after new weights or a new ibfp).

Rows give the median and the range over rounds, and the ratio of the median to `import torch`'s,
which carries over to other machines better than seconds do.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ibfp_cli.media.synthetic import SyntheticSpec, write_synthetic_video

ROUNDS = 5
CLIP = SyntheticSpec(width=1280, height=720, frames=2, seed=5)
"""Two frames of 720p: the seed frame and the first tracked one."""
CACHE_ENV = "IBFP_CACHE_DIR"
"""Where `ibfp track` caches the ONNX graphs (ibfp_cli.tracking.onnx_export.CACHE_ENV)."""
TORCH_ROW = "python -c 'import torch'"


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one process run; an error is an error, not a time."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="Times each row is run (median reported).")
    args = parser.parse_args()
    console = Console()
    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        clip = work / "clip.mp4"
        box = write_synthetic_video(clip, CLIP)[0]
        track = [python, "-m", "ibfp_cli", "track", str(clip), "--box", ",".join(f"{v:g}" for v in box)]
        track += ["--out", str(work / "boxes.csv")]
        warm_env = {**os.environ, CACHE_ENV: str(work / "warm-cache")}
        timed(track, warm_env)  # exports the graphs into the warm cache
        rows: dict[str, tuple[list[str], str | None]] = {
            "python -c pass": ([python, "-c", "pass"], None),
            TORCH_ROW: ([python, "-c", "import torch"], None),
            "ibfp --help": ([python, "-m", "ibfp_cli", "--help"], None),
            "ibfp track, warm cache": (track, "warm"),
            "ibfp track, cold cache": (track, "cold"),
        }
        seconds: dict[str, list[float]] = {name: [] for name in rows}
        for round_ in range(args.rounds):
            for name, (command, cache) in rows.items():
                env = dict(os.environ)
                if cache == "warm":
                    env = warm_env
                elif cache == "cold":
                    env[CACHE_ENV] = str(work / f"cold-cache-{round_}")
                seconds[name].append(timed(command, env))
    torch_s = statistics.median(seconds[TORCH_ROW])
    table = Table(title=f"process start to exit, {args.rounds} rounds, on {os.cpu_count()} CPUs")
    for column in ("command", "median s", "min..max s", "x import torch"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, values in seconds.items():
        median = statistics.median(values)
        table.add_row(name, f"{median:.2f}", f"{min(values):.2f}..{max(values):.2f}", f"{median / torch_s:.2f}")
    console.print(table)
    console.print("ibfp track rows: start-up, the first-frame fit and one tracked frame (a 2-frame 1280x720 clip)")


if __name__ == "__main__":
    main()
