"""Seconds per campaign training step on the CPU, subnormal floats flushed to zero or not.

    python benchmarks/train_step.py                  # 2 threads, 2 rounds of 3 steps per mode
    python benchmarks/train_step.py --threads 1 --steps 5 --crops cache/crops

The network is the campaign's (its committed resume point, `weights/resume/campaign.pt`, in the
recipe's architecture), trained as `ibfp train campaign run` trains it: a batch of fresh views of
the crop cache (`ibfp train prepare`; generated clips where there is none), the frozen backbone
without a graph, forward, backward and an Adam step (subnormals come from what the network
computes on its inputs, so real crops are the data to time). The mode is set before torch starts
its threads (tracking/denormals.py), so each mode runs in its own process, the two in turn each
round, so that a change of load touches both alike; the table gives the median of each and their
ratio, which carries over to other machines of the same CPU family better than seconds do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from ibfp_cli.config import TrackerConfig
from ibfp_cli.tracking.denormals import flush_denormals
from ibfp_cli.tracking.weights import load_model
from ibfp_cli.train.api import training_sources
from ibfp_cli.train.campaign import RECIPE, resume_point, transplant
from ibfp_cli.train.data import PairSampler, image_batch
from ibfp_cli.train.loop import forward_loss, freeze

CROPS = Path("cache/crops")  # `ibfp train prepare`'s default output
WARMUP_STEPS = 2  # per process, untimed: first-call allocations
AS_IS, FLUSHED = "as is", "flushed"
MODES = (AS_IS, FLUSHED)


def time_steps(threads: int, steps: int, crops: Path | None, flushed: bool) -> list[float]:
    """Seconds of each of `steps` campaign steps after WARMUP_STEPS, in this process."""
    if flushed:
        flush_denormals()  # before torch's first parallel work, as `ibfp train` does
    torch.set_num_threads(threads)
    cfg = replace(RECIPE.train, model=RECIPE.model)
    model = transplant(load_model(resume_point("campaign"))[0], RECIPE.model).train()
    freeze(model, cfg)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    sampler = PairSampler(training_sources(crops, RECIPE.synthetic, cfg.seed), RECIPE.sampling, cfg.seed)
    area, size = TrackerConfig().search_area_scale, RECIPE.model.input_size
    times = []
    for i in range(WARMUP_STEPS + steps):
        batch = image_batch(sampler, cfg.batch_size, area, size, RECIPE.template_aug, RECIPE.search_aug)
        start = time.perf_counter()
        terms = forward_loss(model, batch, cfg)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        if i >= WARMUP_STEPS:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the campaign's machine: 2).")
    parser.add_argument("--steps", type=int, default=3, help="Timed steps of each mode per round.")
    parser.add_argument("--rounds", type=int, default=2, help="Rounds: one process per mode each, in turn.")
    parser.add_argument("--crops", type=Path, default=CROPS, help="Crop cache; generated clips where it is missing.")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)  # one mode's timing process
    args = parser.parse_args()
    crops = args.crops if args.crops.is_dir() else None
    if args.child:
        print(json.dumps(time_steps(args.threads, args.steps, crops, args.child == FLUSHED)))
        return
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            command = [sys.executable, __file__, "--child", mode, *sys.argv[1:]]
            times[mode] += json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    data = f"crops of {crops}" if crops else "generated clips"
    title = f"campaign step, batch {RECIPE.train.batch_size}, {data}, {args.threads} thread(s)"
    table = Table(title=f"{title}, median of {args.rounds} x {args.steps}")
    for column in ("mode", "s / step", "range", "x as is"):
        table.add_column(column)
    base = statistics.median(times[AS_IS])
    for mode, values in times.items():
        median = statistics.median(values)
        table.add_row(mode, f"{median:.2f}", f"{min(values):.2f}-{max(values):.2f}", f"{base / median:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
