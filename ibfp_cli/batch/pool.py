"""Run a batch's videos in N local worker processes, the CPU threads divided between them.

Each worker is a spawned process that keeps its tracker's network loaded from one video to
the next. Workers report frames through a queue the parent reads while it waits. A worker
that dies (killed, out of memory) breaks the pool: the videos it was running are run again
in a new pool up to `retries` times, the others are simply resubmitted.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.queues import Queue

import cv2

from .jobs import (
    BatchResult,
    FramesCallback,
    ResultCallback,
    Stage,
    TrackOptions,
    VideoFrames,
    VideoJob,
    annotate,
    worker_died,
)

POLL_S = 0.1
"""How often the parent reads the workers' progress while it waits for results."""
REPORT_INTERVAL_S = 0.2
"""A worker sends frame progress at most this often per video (and always the last frame)."""

_queue: Queue | None = None  # the parent's progress queue, in a worker process


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """The cores divided between `workers` processes, at least one thread each."""
    return max(1, cpu_cores() // workers)


def run_in_pool(
    jobs: list[VideoJob],
    options: TrackOptions,
    workers: int,
    retries: int,
    frames: VideoFrames | None,
    finished: ResultCallback,
) -> None:
    """Run `jobs` in `workers` processes, calling `finished` with each result as it comes."""
    context = multiprocessing.get_context("spawn")  # fork would copy the parent's threads and locks
    threads = threads_per_worker(workers)
    deaths: dict[str, int] = {}
    pending = list(jobs)
    while pending:
        progress: Queue = context.Queue()  # a new one per pool: a killed worker may hold the old one's lock
        started: set[str] = set()
        with ProcessPoolExecutor(
            max_workers=min(workers, len(pending)),
            mp_context=context,
            initializer=_start_worker,
            initargs=(progress, threads),
        ) as pool:
            futures = {pool.submit(_run, job, options): job for job in pending}
            try:
                lost = _collect(futures, progress, started, frames, finished)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        # Videos that were running when the pool broke count a death; the rest never started.
        # If none had reported starting, all count, so a worker dying at start-up cannot loop.
        running = [job for job in lost if job.name in started] or lost
        pending = [job for job in lost if job not in running]
        for job in running:
            deaths[job.name] = deaths.get(job.name, 0) + 1
            if deaths[job.name] > retries:
                finished(worker_died(job, deaths[job.name]))
            else:
                pending.append(job)


def _collect(
    futures: dict[Future[BatchResult], VideoJob],
    progress: Queue,
    started: set[str],
    frames: VideoFrames | None,
    finished: ResultCallback,
) -> list[VideoJob]:
    """Pass on progress and results until every future is settled; the jobs a broken pool lost."""
    lost: list[VideoJob] = []
    waiting = set(futures)
    while waiting:
        settled, waiting = wait(waiting, timeout=POLL_S, return_when=FIRST_COMPLETED)
        _drain(progress, started, frames)
        for future in settled:
            try:
                finished(future.result())
            except BrokenProcessPool:
                lost.append(futures[future])
    _drain(progress, started, frames)
    return lost


def _drain(progress: Queue, started: set[str], frames: VideoFrames | None) -> None:
    while True:
        try:
            name, stage, done, total = progress.get_nowait()
        except (queue.Empty, OSError, EOFError):
            return
        started.add(name)
        if frames is not None and stage is not None:
            frames(name, stage, done, total)


def _start_worker(progress: Queue, threads: int) -> None:
    """Worker start-up: keep the progress queue; `threads` threads for torch and OpenCV."""
    global _queue
    _queue = progress
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when first imported
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    cv2.setNumThreads(threads)


def _run(job: VideoJob, options: TrackOptions) -> BatchResult:
    """One video in a worker: say it started, report its frames now and then, return its result."""
    assert _queue is not None, "_start_worker sets the queue"
    sender = _queue
    sender.put((job.name, None, 0, 0))
    return annotate(job, options, throttled(lambda stage, done, total: sender.put((job.name, stage, done, total))))


def throttled(report: FramesCallback, interval_s: float = REPORT_INTERVAL_S) -> FramesCallback:
    """`report` called at most every `interval_s` per stage, and always on a stage's last frame."""
    last: dict[str, float] = {}

    def send(stage: Stage, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last.get(stage, -interval_s) >= interval_s:
            last[stage] = now
            report(stage, done, total)

    return send
