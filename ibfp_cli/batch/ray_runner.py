"""Run a batch's videos on a Ray cluster: a pool of actors, each keeping its network loaded.

Only names, paths and seeds travel through Ray: each actor decodes its video from the
shared path and writes its outputs there, so every node must see the videos and the
output folder at the same paths. Results come back as they finish; frame progress comes
through a small Ray queue. An actor that dies (killed, its node lost) is replaced, and the
video it was running is run again up to `retries` times.
"""

from __future__ import annotations

import logging
import re
import socket
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..errors import IBFPError
from .jobs import BatchResult, ResultCallback, TrackOptions, VideoFrames, VideoJob, annotate, worker_died
from .pool import REPORT_INTERVAL_S, cpu_cores, throttled

CPUS_PER_WORKER = 1
"""Ray CPUs (and torch threads) per actor: two one-thread workers beat one two-thread worker
on small per-frame work (issue 12), and decoding runs in the same process."""
DEFAULT_GPUS_PER_WORKER = 1.0
"""A whole GPU per worker unless told to share: one video's network batch rarely fills a GPU,
but sharing is the user's call (memory per worker depends on the objects per video)."""
POLL_S = REPORT_INTERVAL_S
"""How often the driver reads the progress queue (two calls to its actor) while it waits; a
finished video is taken at once."""
LOCAL = "local"
"""`--ray` with no address: a Ray cluster of this machine's cores, for this batch only."""
_ADDRESS = re.compile(r"^(local|auto|ray://\S+|[\w.\-]+:\d+|\[[0-9a-fA-F:]+\]:\d+)$")
"""What `--ray` takes as its value: local, auto, ray://..., HOST:PORT or [IPv6]:PORT."""
REACH_TIMEOUT_S = 5.0
"""How long `--ray HOST:PORT` waits for the head node to take a connection before giving up."""
INSTALL_HINT = "--ray needs Ray 2.x: pip install -e '.[ray]' in the ibfp checkout (or pip install 'ray>=2.10,<3')"


@dataclass(frozen=True, slots=True)
class RayOptions:
    """Where and how to run: `address` "local" starts a Ray cluster of this machine's cores
    for the batch (and stops it after); "auto" or "HOST:PORT" joins a running one. A Ray
    this process is already connected to is used as it is. Each actor asks for
    `gpus_per_worker` of a GPU when the network runs on CUDA (0.25: four share one GPU)."""

    address: str = LOCAL
    gpus_per_worker: float = DEFAULT_GPUS_PER_WORKER


def is_ray_address(text: str) -> bool:
    """Whether `text` is a value of `--ray` rather than the next argument (a folder, a file)."""
    return bool(_ADDRESS.match(text))


def check_reachable(address: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Raise IBFPError at once when HOST:PORT (or ray://HOST:PORT) takes no connection; Ray
    itself would retry for minutes first. local and auto are not network addresses."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address in (LOCAL, "auto") or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise IBFPError(f"cannot reach Ray at {address}: {e.strerror or e}") from None


class BatchWorker:
    """A Ray actor running videos one at a time; the tracker's network, loaded by the first
    video, stays loaded for the next ones."""

    def __init__(self, threads: int) -> None:
        import cv2
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)

    def run(self, job: VideoJob, options: TrackOptions, progress: Any) -> BatchResult:
        """Run one video, putting (video, stage, done, total) on the progress queue now and then."""
        progress.put((job.name, None, 0, 0))
        report = throttled(lambda stage, done, total: progress.put((job.name, stage, done, total)))
        return annotate(job, options, report)


def run_on_ray(
    jobs: list[VideoJob],
    options: TrackOptions,
    cluster: RayOptions,
    workers: int | None,
    retries: int,
    frames: VideoFrames | None,
    finished: ResultCallback,
) -> None:
    """Run `jobs` on `workers` actors (default: as many as the cluster has room for)."""
    try:
        import ray
    except ImportError:
        raise IBFPError(INSTALL_HINT) from None
    if cluster.gpus_per_worker <= 0:
        raise IBFPError(f"--gpus-per-worker must be more than 0, not {cluster.gpus_per_worker}")
    if not jobs:  # everything was done already: no cluster to start
        return
    started_here = not ray.is_initialized()
    if started_here:
        check_reachable(cluster.address)
        try:
            ray.init(address=cluster.address, include_dashboard=False, logging_level=logging.ERROR)
        except Exception as e:  # Ray raises plain Exception too, e.g. when its node times out starting
            raise IBFPError(f"cannot start or join Ray at {cluster.address}: {str(e).splitlines()[0]}") from None
    try:
        _run(ray, jobs, options, cluster, workers, retries, frames, finished)
    finally:
        if started_here:
            ray.shutdown()


def _run(
    ray: Any,
    jobs: list[VideoJob],
    options: TrackOptions,
    cluster: RayOptions,
    workers: int | None,
    retries: int,
    frames: VideoFrames | None,
    finished: ResultCallback,
) -> None:
    from ray.exceptions import RayError, RayTaskError
    from ray.util.queue import Queue

    resources = ray.cluster_resources()
    gpus = cluster.gpus_per_worker if _wants_gpu(options.device, resources) else 0
    if workers is None:
        room = resources.get("GPU", 0) / gpus if gpus else resources.get("CPU", cpu_cores()) / CPUS_PER_WORKER
        workers = max(1, int(room))
    actor_class = ray.remote(BatchWorker)
    run_id = uuid.uuid4().hex[:8]
    made = 0

    def new_actor() -> Any:
        nonlocal made
        made += 1
        name = f"ibfp-batch-{run_id}-{made}"  # `ray list actors` shows which run an actor belongs to
        return actor_class.options(name=name, num_cpus=CPUS_PER_WORKER, num_gpus=gpus).remote(CPUS_PER_WORKER)

    progress = Queue(actor_options={"num_cpus": 0})  # takes no worker's place, even while it starts
    idle = [new_actor() for _ in range(min(workers, len(jobs)))]
    pending = deque(jobs)
    running: dict[Any, tuple[VideoJob, Any]] = {}
    deaths: dict[str, int] = {}
    try:
        while pending or running:
            while pending and idle:
                job, actor = pending.popleft(), idle.pop()
                running[actor.run.remote(job, options, progress)] = (job, actor)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            _drain(progress, frames)
            for ref in ready:
                job, actor = running.pop(ref)
                try:
                    result = ray.get(ref)
                except RayTaskError as e:  # our code raised outside annotate's guard: not a lost worker
                    result = BatchResult(job.name, "failed", f"{type(e.cause).__name__}: {e.cause}")
                except RayError:  # the actor, its process or its node died
                    ray.kill(actor, no_restart=True)
                    idle.append(new_actor())
                    deaths[job.name] = deaths.get(job.name, 0) + 1
                    if deaths[job.name] > retries:
                        finished(worker_died(job, deaths[job.name]))
                    else:
                        pending.appendleft(job)
                    continue
                idle.append(actor)
                finished(result)
        _drain(progress, frames)
    finally:
        for actor in [*idle, *(actor for _, actor in running.values())]:
            ray.kill(actor, no_restart=True)
        progress.shutdown()


def _wants_gpu(device: str, resources: dict[str, float]) -> bool:
    """--device cuda asks for GPUs; auto does where the cluster has some."""
    return device == "cuda" or (device == "auto" and resources.get("GPU", 0) > 0)


def _drain(progress: Any, frames: VideoFrames | None) -> None:
    count = progress.qsize()
    if count and frames is not None:
        for name, stage, done, total in progress.get_nowait_batch(count):
            if stage is not None:
                frames(name, stage, done, total)
    elif count:
        progress.get_nowait_batch(count)
