"""Subnormal floats flushed to zero on the CPU, for the rest of the process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

SMALLEST_NORMAL = torch.finfo(torch.float32).tiny  # 1.18e-38: below it, fp32 values are subnormal
PROBE_SIZE = 1 << 22  # elements: far above torch's parallel grain, so every CPU thread takes a share


def flush_denormals() -> None:
    """Treat subnormal floats as 0 from now on, on this thread and on every thread it starts.

    x86 CPUs compute on subnormals (|x| < 1.2e-38: activations and gradients decaying toward
    zero) through a slow microcode path. Measured on this project's 2-core machine (AVX-512),
    2026-12-06, `benchmarks/train_step.py` on the crop cache: a campaign training step (16 pairs)
    6.1 s as is and 1.7 s flushed on two threads, 11.4 s and 2.7 s on one; most of it in the
    head's 3x3 convs (2.3 s against 0.13 s on one thread).
    The mode belongs to each thread and a thread takes its starter's: torch starts its CPU worker
    threads at its first parallel work and keeps them, so call this before that (the `ibfp train`
    commands do, first thing); called later, only this thread's share of the work is flushed.
    Flushing changes only values below 1.2e-38.
    """
    torch.set_flush_denormal(True)


def flushing_denormals() -> bool:
    """Whether every CPU thread of torch's pool turns subnormal results into 0."""
    halves = torch.full((PROBE_SIZE,), SMALLEST_NORMAL) / 2
    return bool((halves == 0).all())


def _this_thread_flushes() -> bool:
    """Whether the calling thread turns subnormal results into 0 (one element: no worker thread)."""
    return bool((torch.tensor([SMALLEST_NORMAL]) / 2 == 0).all())


@contextmanager
def denormal_mode_kept() -> Iterator[None]:
    """Run a block that may reset the calling thread's subnormal mode (ONNX Runtime's session
    creation does, measured 2026-12-07: a training step then ran 3x slower) and restore it."""
    flushing = _this_thread_flushes()
    try:
        yield
    finally:
        if flushing and not _this_thread_flushes():
            torch.set_flush_denormal(True)
