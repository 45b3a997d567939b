"""Run trackers over a benchmark in worker processes, save each run, and score the saved runs.

Each (tracker, sequence) run is saved to `<out_dir>/predictions/<tracker>/<sequence>.csv`
(`<sequence>@<frame>.csv` for a later start) once complete; a later call finds it there and
does not track that run again (resume). Scores are always recomputed from the saved files.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..boxes import Box
from ..errors import IBFPError, TrackerUnavailable
from ..media.atomic import atomic_output
from ..tracking.contract import SingleObjectTracker, TrackerFactory, TrackerOutput
from ..tracking.registry import tracker_factory
from ..wording import counted
from .boxfit import NetworkCheck, box_fit, network_check
from .compare import compare_reports, read_per_sequence
from .datasets import Sequence, open_dataset, temporal_starts
from .metrics import score_sequence
from .predictions import Predictions, has_predictions, read_predictions, write_predictions
from .report import EvalReport, SequenceResult, build_report, network_table, together_table, write_report
from .together import OBJECTS_SUFFIX, has_together, score_together, track_together

PREDICTIONS_FOLDER = "predictions"
SETTINGS_JSON = "ibfp_settings.json"
"""The IBFP weights and settings a report folder's saved runs were made with."""
INIT_SCORE = 1.0
"""Score recorded on frame 0, where the box is the ground truth the tracker starts from."""
MS_PER_S = 1000.0
WORKER_THREADS = 1
"""Torch and OpenCV threads per worker process when several run at once (no oversubscription)."""

ProgressCallback = Callable[[int, int, str], None]
"""progress(done, total, "tracker/sequence"), called as each run finishes or is found saved."""


@dataclass(frozen=True, eq=False)
class _Run:
    """One tracker on one sequence; picklable for a spawned worker."""

    tracker: str
    factory: TrackerFactory
    options: dict[str, object]
    sequence: Sequence
    output: Path
    together: bool = False
    """Every object of a several-object sequence at once (`evaluate.together`), not the first alone."""

    @property
    def label(self) -> str:
        return f"{self.tracker}/{run_name(self.sequence)}" + (" (all objects)" if self.together else "")

    def saved(self) -> bool:
        """Its output is already complete (from an earlier, interrupted evaluation)."""
        if self.together:
            return has_together(self.output, self.sequence)
        return has_predictions(self.output, len(self.sequence))


def default_workers() -> int:
    """Half the CPU cores, at least one: each worker also decodes its own frames."""
    return max(1, (os.cpu_count() or 1) // 2)


def run_evaluation(
    dataset: Path,
    trackers: list[str],
    out_dir: Path,
    *,
    device: str = "auto",
    backend: str = "auto",
    weights: Path | None = None,
    workers: int | None = None,
    sequences: list[str] | None = None,
    progress: ProgressCallback | None = None,
    network: bool = False,
    tracker_config: dict[str, object] | None = None,
    starts: int = 1,
    against: Path | None = None,
) -> EvalReport:
    """Track every selected sequence of `dataset` with each tracker, then score and report.

    Trackers that cannot run here (missing OpenCV build, model files, weights) are listed in
    the report's `unavailable` instead of failing the run (unless none can run). With `network`,
    the IBFP network's own boxes are also checked (`evaluate.boxfit.network_check`).
    `tracker_config`: IBFP tracker settings over the weights' own (`config.parse_settings`); a
    folder whose saved IBFP runs were made with other weights or settings is refused. `starts`:
    runs per sequence, from its first frame and later ones (`datasets.temporal_starts`); each
    sequence's runs are averaged before the means over sequences. `against`: an earlier report
    folder of the same sequences, each tracker compared with its runs there (`compare`). Writes
    into `out_dir`, creating it.
    """
    earlier = read_per_sequence(against) if against is not None else None  # a wrong folder: before any tracking
    chosen = select_sequences(open_dataset(dataset), sequences)
    tracker_config = tracker_config or {}
    options: dict[str, object] = {
        "device": device,
        "backend": backend,
        "weights": weights,
        "tracker_config": tracker_config,
    }
    factories, unavailable = _available_trackers(trackers, options)
    if not factories:
        raise TrackerUnavailable("no tracker can run here: " + "; ".join(unavailable.values()))
    out_dir = Path(out_dir)
    segments = [seq.starting_at(frame) if frame else seq for seq in chosen for frame in temporal_starts(seq, starts)]
    runs = [
        _Run(name, factory, options, seq, out_dir / PREDICTIONS_FOLDER / name / f"{run_name(seq)}.csv")
        for name, factory in factories.items()
        for seq in segments
    ]
    runs += [
        _Run(name, factory, options, seq, out_dir / PREDICTIONS_FOLDER / name / f"{seq.name}{OBJECTS_SUFFIX}", True)
        for name, factory in factories.items()
        for seq in chosen
        if seq.objects is not None
    ]
    for name in factories:
        _make_folder(out_dir / PREDICTIONS_FOLDER / name)
    if "ibfp" in factories:
        _claim_settings(out_dir, weights, tracker_config)
    _track_missing(runs, workers or default_workers(), progress)
    results = [_scored(run) for run in runs if not run.together]
    report = build_report(results, unavailable)
    together = [score_together(run.tracker, run.sequence, run.output) for run in runs if run.together]
    if together:
        report = replace(report, together=together_table(together))
    if tracker_config:
        report.notes.append("IBFP settings over the weights' own: " + _settings_text(tracker_config))
    if starts > 1:
        report.notes.append(
            f"temporal robustness: each sequence run from up to {starts} evenly spread frames (per_sequence.csv, "
            "start), not only frame 0; a sequence's scores are the mean of its runs, each run starting from "
            "the ground-truth box of its first frame"
        )
    if network:
        checks = {"ibfp": run_network_check(chosen, weights, device, backend, tracker_config)}
        if "nano" in factories:  # NanoTrack's own network, where it tracked beside IBFP
            checks["nano"] = nano_network_checks(chosen)
        report = replace(report, network=network_table(checks))
    if earlier is not None:
        report = replace(report, against=compare_reports(report.per_sequence, earlier, against))
    return write_report(report, out_dir, Path(dataset).name)


def run_network_check(
    sequences: list[Sequence],
    weights: Path | None,
    device: str,
    backend: str = "auto",
    tracker_config: dict[str, object] | None = None,
) -> list[NetworkCheck]:
    """`network_check` of the IBFP weights on each sequence, online branch off, on the backend
    and with the settings the trackers ran with."""
    from ..tracking.tracker import create  # torch: only when asked for

    checks = []
    for sequence in sequences:
        tracker = create(weights=weights, device=device, backend=backend, tracker_config=tracker_config)
        tracker.config = replace(tracker.config, use_online=False)
        checks.append(network_check(sequence, tracker))
    return checks


def nano_network_checks(sequences: list[Sequence]) -> list[NetworkCheck]:
    """`network_check` of NanoTrack's network (its files where the `nano` tracker finds them)."""
    from ..tracking.nano_network import NanoMeasurer, NanoNetwork  # torch: only when asked for

    network = NanoNetwork()
    return [network_check(sequence, NanoMeasurer(network)) for sequence in sequences]


def run_name(sequence: Sequence) -> str:
    """A run's name: the sequence's, with its start frame when it starts later (`NAME@FRAME`)."""
    return f"{sequence.name}@{sequence.start}" if sequence.start else sequence.name


def select_sequences(all_sequences: list[Sequence], names: list[str] | None) -> list[Sequence]:
    """The sequences called `names` (all when None), in the dataset's order."""
    if names is None:
        return all_sequences
    known = {s.name for s in all_sequences}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise IBFPError(
            f"no sequence named {', '.join(unknown)} in the dataset "
            f"({counted(len(known), 'sequence')}, e.g. {', '.join(sorted(known)[:3])})"
        )
    wanted = set(names)
    return [s for s in all_sequences if s.name in wanted]


def track_sequence(tracker: SingleObjectTracker, sequence: Sequence) -> Predictions:
    """Start `tracker` from the first ground-truth box and run it on every later frame.

    Only the init / update calls are timed, not decoding.
    """
    count = len(sequence)
    boxes = np.empty((count, 4))
    scores = np.empty(count)
    lost = np.zeros(count, dtype=bool)
    times_ms = np.empty(count)
    first = Box(*(float(v) for v in sequence.gt[0]))
    for index, frame in enumerate(sequence.frames()):
        start = time.perf_counter()
        if index == 0:
            tracker.init(frame, first)
            output = TrackerOutput(first, INIT_SCORE)
        else:
            output = tracker.update(frame)
        times_ms[index] = (time.perf_counter() - start) * MS_PER_S
        boxes[index] = output.box.xywh()
        scores[index] = output.score
        lost[index] = output.lost
    return Predictions(boxes, scores, lost, times_ms)


def _available_trackers(
    names: list[str], options: dict[str, object]
) -> tuple[dict[str, TrackerFactory], dict[str, str]]:
    """Factories of the trackers that can be created here, and why the others cannot."""
    factories: dict[str, TrackerFactory] = {}
    unavailable: dict[str, str] = {}
    for name in dict.fromkeys(names):
        factory = tracker_factory(name)  # an unknown name is an error, not "unavailable"
        try:
            factory(**options)
        except IBFPError as e:
            unavailable[name] = str(e)
        else:
            factories[name] = factory
    return factories, unavailable


def _claim_settings(out_dir: Path, weights: Path | None, tracker_config: dict[str, object]) -> None:
    """Record the IBFP weights and settings of `out_dir`'s runs, or refuse a folder whose saved
    runs were made with others (they would be reused as if made with these)."""
    path = out_dir / SETTINGS_JSON
    settings = {"weights": None if weights is None else str(weights), "tracker_config": tracker_config}
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != settings:
            made_with = _settings_text(saved["tracker_config"]) or "the weights' own settings"
            raise IBFPError(
                f"{out_dir} holds IBFP runs made with other weights or settings ({made_with}, "
                f"weights {saved['weights'] or 'shipped'}); choose another --out"
            )
        return
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")


def _settings_text(tracker_config: dict[str, object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(tracker_config.items()))


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IBFPError(f"cannot create output folder {folder}: {e.strerror or e}") from None


def _track_missing(runs: list[_Run], workers: int, progress: ProgressCallback | None) -> None:
    """Track the runs without a complete saved file, longest sequences first."""
    pending, done = [], 0
    for run in runs:
        if run.saved():
            done += 1
            if progress is not None:
                progress(done, len(runs), run.label)
        else:
            pending.append(run)
    pending.sort(key=lambda r: -len(r.sequence))
    if workers <= 1 or len(pending) <= 1:
        for run in pending:
            _track(run)
            done += 1
            if progress is not None:
                progress(done, len(runs), run.label)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(pending)), mp_context=context, initializer=_limit_threads
    ) as pool:
        futures = {pool.submit(_track, run): run for run in pending}
        try:
            for future in as_completed(futures):
                future.result()
                done += 1
                if progress is not None:
                    progress(done, len(runs), futures[future].label)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _track(run: _Run) -> None:
    """Create the tracker(s), track the sequence, save the predictions (in a worker or here)."""
    if run.together:
        track_together(run.tracker, run.options, run.sequence, run.output)
    else:
        write_predictions(run.output, track_sequence(run.factory(**run.options), run.sequence))


def _limit_threads() -> None:
    """Worker start-up: one thread each for torch and OpenCV."""
    os.environ["OMP_NUM_THREADS"] = str(WORKER_THREADS)  # read by torch when first imported
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(WORKER_THREADS)
    cv2.setNumThreads(WORKER_THREADS)


def _scored(run: _Run) -> SequenceResult:
    predictions = read_predictions(run.output)
    return SequenceResult(
        tracker=run.tracker,
        sequence=run.sequence.name,
        start=run.sequence.start,
        frames=len(predictions),
        score=score_sequence(predictions.boxes, run.sequence.gt, run.sequence.absent),
        track_seconds=float(np.sum(predictions.times_ms)) / MS_PER_S,
        fit=box_fit(predictions.boxes, run.sequence.gt, run.sequence.absent),
    )
