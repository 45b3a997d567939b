"""The correction page's state: every object's keyframes, tracked boxes and absences, the undo
stack, the background track or retrack, and Save.

What the page shows is what Save writes. On each frame an object has its keyframe (a box a
person drew, score 1) if it has one there, else the box the last track or retrack gave it,
unless it is marked absent there. An absence is marked from a frame up to the object's next
keyframe (as CVAT's "outside"); opening a file marks every frame where an object has no box
absent, so a gap stays a gap until a box is drawn there. Retrack runs `ibfp retrack` from
all keyframes with the tracked boxes as its previous run, so only the stretches next to a
changed keyframe are tracked again, each pass only until it rejoins the tracked boxes; absent
frames stay empty whatever it finds.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..annotate.convert import with_video
from ..annotate.keyframes import (
    KEYFRAME_SCORE,
    Keyframe,
    RetrackResult,
    combined_keyframes,
    keyframes_of,
    load_keyframes,
    retrack,
)
from ..annotate.pipeline import Seed, track_video
from ..annotate.review import DEFAULT_THRESHOLD, low_confidence_segments
from ..annotations import DEFAULT_LABEL, Annotations, BoxRecord, VideoMeta
from ..boxes import MIN_BOX_SIZE, Box, validate_box
from ..errors import BoxError, IBFPError
from ..formats import read_annotations, resolve_format, write_annotations
from ..media.atomic import check_output
from ..media.render import track_colour
from ..progress import ProgressCallback
from .frames import FrameServer, FrameSettings
from .jobs import Job, JobStatus

KEYFRAME_FORMATS: frozenset[str] = frozenset({"csv", "coco", "cvat"})
"""Formats whose files flag the boxes a person drew (docs/FORMATS.md, "What each format
keeps"); with the others, the keyframes survive a Save only in the keyframes file."""


class NotFound(IBFPError):
    """The object or keyframe a request names does not exist."""


class Refused(IBFPError):
    """A request the state does not allow now: a job is running, nothing to undo, ..."""


@dataclass(frozen=True)
class TrackerChoice:
    """The tracker Track and Retrack run, as `ibfp track` takes it."""

    name: str = "ibfp"
    device: str = "auto"
    backend: str = "auto"
    weights: Path | None = None


@dataclass(frozen=True)
class SaveTargets:
    """The files Save writes: the boxes in `format`, and the keyframes file if one is named."""

    boxes: Path
    format: str
    keyframes: Path | None = None
    keyframes_format: str | None = None

    @property
    def keeps_keyframes(self) -> bool:
        """Whether a Save keeps which boxes are keyframes."""
        return self.keyframes is not None or self.format in KEYFRAME_FORMATS


@dataclass(frozen=True, slots=True)
class _Undo:
    """One object as it was before an edit; label None: the edit created it. `tracked` and
    `tracked_from` (its tracked boxes, and the keyframes they came from) only where the edit
    deleted the object."""

    id: int
    label: str | None
    keyframes: dict[int, Box]
    absent: frozenset[int]
    tracked: dict[int, BoxRecord] | None = None
    tracked_from: dict[tuple[int, int], Box] | None = None


def save_targets(
    boxes: Path | None, out: Path | None, fmt: str | None, keyframes: Path | None, boxes_format: str | None = None
) -> SaveTargets:
    """Where Save writes: `out` in `fmt` (else its extension's format), or else BOXES itself in
    `boxes_format` (else its extension's); the keyframes file in its extension's format.
    Their folders are checked now."""
    if out is not None:
        target, format_name = out, resolve_format(out, fmt).name
    elif boxes is not None:
        target, format_name = boxes, resolve_format(boxes, boxes_format).name
    else:
        raise IBFPError("with no BOXES file, give --out FILE: the file Save writes the boxes to")
    keyframes_format = resolve_format(keyframes).name if keyframes is not None else None
    for path in (target, keyframes):
        if path is not None:
            check_output(path)
    return SaveTargets(target, format_name, keyframes, keyframes_format)


def open_session(
    video: str | os.PathLike[str],
    boxes: str | os.PathLike[str] | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    fmt: str | None = None,
    source_format: str | None = None,
    keyframes: str | os.PathLike[str] | None = None,
    tracker: TrackerChoice | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    frame_settings: FrameSettings | None = None,
) -> Session:
    """A session on `video`, with the boxes of BOXES and the keyframes of the keyframes file
    where it exists.

    Save writes `out` in `fmt` (else its extension's format), or else BOXES in the format it
    was read in. BOXES is read in `source_format`, else (when Save writes it) in `fmt`, else
    in its extension's format. Everything is checked before the page is served: the files,
    the boxes against the video, where Save will write.
    """
    boxes_path = Path(boxes) if boxes is not None else None
    out_path = Path(out) if out is not None else None
    keyframes_path = Path(keyframes) if keyframes is not None else None
    read_format = source_format or (fmt if out_path is None else None)
    targets = save_targets(boxes_path, out_path, fmt, keyframes_path, read_format)
    existing = read_annotations(boxes_path, read_format) if boxes_path is not None else None
    frames = FrameServer(video, frame_settings)
    try:
        if existing is not None:
            existing = with_video(existing, frames.info, frames.path.name)
        given = _read_keyframes(keyframes_path) if keyframes_path is not None and keyframes_path.exists() else []
        return Session(frames, targets, existing, given, tracker or TrackerChoice(), threshold)
    except BaseException:
        frames.close()
        raise


def _read_keyframes(path: Path) -> list[Keyframe]:
    """The keyframes of a keyframes file; one Save wrote without any holds none."""
    if not read_annotations(path).records:
        return []
    return load_keyframes(path)


class Session:
    """The state behind the page; every method is safe to call from several threads.

    Edits (draw, delete, absent, undo) and Save are refused while a track or retrack runs.
    """

    def __init__(
        self,
        frames: FrameServer,
        targets: SaveTargets,
        existing: Annotations | None = None,
        keyframes: Iterable[Keyframe] = (),
        tracker: TrackerChoice | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.frames = frames
        self.targets = targets
        self.tracker = tracker or TrackerChoice()
        self.threshold = threshold
        info = frames.info
        self.meta = VideoMeta(frames.path.name, info.width, info.height, info.fps, info.frame_count)
        self.can_track = existing is None
        """Track (from scratch, forward from one box per object) is offered only without BOXES."""
        self._lock = threading.RLock()
        self._labels: dict[int, str] = {}
        self._keys: dict[int, dict[int, Box]] = defaultdict(dict)
        self._tracked: dict[int, dict[int, BoxRecord]] = defaultdict(dict)
        self._absent: dict[int, set[int]] = defaultdict(set)
        self._scored = existing is None or existing.scored
        self._undo: list[_Undo] = []
        self._job: Job[Any] | None = None
        self.version = 0
        """Counts changes; the page and Save compare it."""
        self._saved_version = 0
        if existing is not None:
            self._load(existing)
        given = list(keyframes)
        for k in combined_keyframes(existing, given) if existing is not None else given:
            self._labels.setdefault(k.id, k.label)
            self._put_keyframe(k.id, k.frame, self._file_box(k))
        self._tracked_from = {(k.id, k.frame): k.box for k in keyframes_of(existing)} if existing is not None else {}
        """The keyframes the tracked boxes were made from (those BOXES flags, at first)."""

    # --- edits -----------------------------------------------------------------------------

    def set_keyframe(self, frame: int, box: Box, track_id: int | None = None, label: str | None = None) -> int:
        """Make `box` the object's keyframe on `frame` (a new object when `track_id` is None);
        returns the object's id. The box must lie inside the frame, at least 2 px each way;
        an absence that covered the frame ends there."""
        with self._lock:
            self._check_idle()
            self._check_frame(frame)
            box = self._inside(box)
            if track_id is None:
                new_label = _checked_label(label if label is not None else DEFAULT_LABEL)
                track_id = max(self._labels, default=0) + 1
                self._push(track_id)
                self._labels[track_id] = new_label
            else:
                self._check_object(track_id)
                if label is not None and label != self._labels[track_id]:
                    raise IBFPError(f"object {track_id} is labelled {self._labels[track_id]!r}, not {label!r}")
                self._push(track_id)
            self._put_keyframe(track_id, frame, box)
            self.version += 1
            return track_id

    def delete_keyframe(self, track_id: int, frame: int) -> None:
        """Remove the object's keyframe on `frame`; an object left with no keyframe and no
        tracked box is gone."""
        with self._lock:
            self._check_idle()
            self._check_object(track_id)
            if frame not in self._keys[track_id]:
                raise NotFound(f"object {track_id} has no keyframe on frame {frame}")
            self._push(track_id)
            del self._keys[track_id][frame]
            self._drop_if_empty(track_id)
            self.version += 1

    def delete_object(self, track_id: int) -> None:
        """Remove the object: its keyframes, tracked boxes and absences (undo brings all back)."""
        with self._lock:
            self._check_idle()
            self._check_object(track_id)
            came_from = {key: box for key, box in self._tracked_from.items() if key[0] == track_id}
            self._undo.append(
                _Undo(
                    track_id,
                    self._labels[track_id],
                    dict(self._keys[track_id]),
                    frozenset(self._absent[track_id]),
                    dict(self._tracked.get(track_id, {})),
                    came_from,
                )
            )
            for table in (self._labels, self._keys, self._absent, self._tracked):
                table.pop(track_id, None)
            self._tracked_from = {key: box for key, box in self._tracked_from.items() if key[0] != track_id}
            self.version += 1

    def set_absent(self, track_id: int, frame: int, absent: bool = True) -> None:
        """absent: the object is out of view from `frame` up to its next keyframe (its keyframe
        on `frame` itself is removed); not absent: it is back from `frame` to the end of that
        absence. Asking for what already holds changes nothing."""
        with self._lock:
            self._check_idle()
            self._check_object(track_id)
            self._check_frame(frame)
            frames = self._absent[track_id]
            keys = self._keys[track_id]
            if absent:
                later = [f for f in keys if f > frame]
                span = set(range(frame, (min(later) if later else self.meta.frame_count)))
                if span <= frames and frame not in keys:
                    return
                self._push(track_id)
                keys.pop(frame, None)
                frames |= span
            else:
                if frame not in frames:
                    return
                self._push(track_id)
                frames -= set(_run_from(frames, frame))
            self.version += 1

    def undo(self) -> int:
        """Undo the last edit; returns the id of the object it changed. Tracked boxes are not
        restored (they follow the keyframes at the next Retrack), except a deleted object's."""
        with self._lock:
            self._check_idle()
            if not self._undo:
                raise Refused("nothing to undo")
            state = self._undo.pop()
            if state.label is None:
                for table in (self._labels, self._keys, self._absent, self._tracked):
                    table.pop(state.id, None)
            else:
                self._labels[state.id] = state.label
                self._keys[state.id] = dict(state.keyframes)
                self._absent[state.id] = set(state.absent)
                if state.tracked is not None:
                    self._tracked[state.id] = dict(state.tracked)
                if state.tracked_from is not None:
                    self._tracked_from = {**self._tracked_from, **state.tracked_from}
            self.version += 1
            return state.id

    # --- track and retrack ---------------------------------------------------------------------

    def start_retrack(self) -> JobStatus:
        """Retrack in the background from all keyframes, the tracked boxes as the previous run."""
        with self._lock:
            self._check_idle()
            keyframes = self._keyframe_list()
            if not keyframes:
                raise Refused("no keyframes to retrack from: draw a box first")
            records = [r for by_frame in self._tracked.values() for r in by_frame.values()]
            existing = Annotations(self.meta, records, self._scored) if records else None
            snapshot = self._keyframe_snapshot()
            choice = self.tracker

            def work(progress: ProgressCallback) -> RetrackResult:
                with _paused(self.frames):
                    return retrack(
                        self.frames.path,
                        keyframes,
                        tracker=choice.name,
                        existing=existing,
                        device=choice.device,
                        backend=choice.backend,
                        weights=choice.weights,
                        progress=progress,
                    )

            def finish(result: RetrackResult) -> str:
                self._replace_tracked(result.annotations, snapshot, scored=self._scored)
                frames = sum(s.last - s.first + 1 for s in result.retracked)
                return f"retracked {frames} frame(s) in {len(result.retracked)} stretch(es)"

            return self._start(Job("retrack", work, finish))

    def start_track(self) -> JobStatus:
        """Track every object forward from its one keyframe, as `ibfp track` does (no BOXES only)."""
        with self._lock:
            self._check_idle()
            if not self.can_track:
                raise Refused("the boxes came from a file: Retrack corrects them (Track starts from scratch)")
            if not self._labels:
                raise Refused("no boxes to track from: draw a box around each object first")
            several = [i for i in sorted(self._labels) if len(self._keys[i]) != 1]
            if several:
                raise Refused(
                    f"object {several[0]} has {len(self._keys[several[0]])} keyframes; Track starts each "
                    "object from one box (Retrack uses them all)"
                )
            seeds = [Seed(k.box, k.frame, k.id, k.label) for k in self._keyframe_list()]
            snapshot = self._keyframe_snapshot()
            choice = self.tracker

            def work(progress: ProgressCallback) -> Annotations:
                with _paused(self.frames):
                    return track_video(
                        self.frames.path,
                        seeds,
                        choice.name,
                        device=choice.device,
                        backend=choice.backend,
                        weights=choice.weights,
                        progress=progress,
                    )

            def finish(result: Annotations) -> str:
                self._replace_tracked(result, snapshot, scored=True)
                return f"tracked {len(seeds)} object(s) over {len({r.frame for r in result.records})} frame(s)"

            return self._start(Job("track", work, finish))

    def job_status(self) -> JobStatus | None:
        """The running or last job's status; None before the first."""
        with self._lock:
            return self._job.status() if self._job is not None else None

    # --- save and view -------------------------------------------------------------------------

    def save(self) -> list[Path]:
        """Write the boxes (and the keyframes file, if named), each atomically; returns the paths."""
        with self._lock:
            self._check_idle()
            annotations = self.annotations()
            write_annotations(self.targets.boxes, annotations, self.targets.format)
            written = [self.targets.boxes]
            if self.targets.keyframes is not None:
                keys = Annotations(self.meta, [r for r in annotations.records if r.keyframe], annotations.scored)
                write_annotations(self.targets.keyframes, keys, self.targets.keyframes_format)
                written.append(self.targets.keyframes)
            self._saved_version = self.version
            return written

    def annotations(self) -> Annotations:
        """The boxes as the page shows them and Save writes them; a keyframe on a frame never
        tracked gets its time from decoding it (the page has shown it: usually known)."""
        with self._lock:
            records = [
                replace(r, time_s=self.frames.time_s(r.frame)) if r.keyframe and r.time_s is None else r
                for i in sorted(self._labels)
                for r in self._records(i)
            ]
            return Annotations(self.meta, records, self._scored)

    @property
    def unsaved(self) -> bool:
        with self._lock:
            return self.version != self._saved_version

    @property
    def stale(self) -> bool:
        """Keyframes changed since the tracked boxes were made from them."""
        with self._lock:
            return self._keyframe_snapshot() != self._tracked_from

    def view(self) -> dict[str, Any]:
        """Everything the page draws, as JSON-ready values."""
        with self._lock:
            job = self.job_status()
            return {
                "video": {
                    "name": self.meta.name,
                    "width": self.meta.width,
                    "height": self.meta.height,
                    "fps": self.meta.fps,
                    "frame_count": self.meta.frame_count,
                },
                "version": self.version,
                "unsaved": self.unsaved,
                "stale": self.stale,
                "scored": self._scored,
                "threshold": self.threshold,
                "can_track": self.can_track,
                "undo": len(self._undo),
                "job": None if job is None else asdict(job),
                "files": {
                    "boxes": str(self.targets.boxes),
                    "format": self.targets.format,
                    "keyframes": None if self.targets.keyframes is None else str(self.targets.keyframes),
                    "keeps_keyframes": self.targets.keeps_keyframes,
                },
                "objects": [self._object_view(i) for i in sorted(self._labels)],
            }

    def close(self) -> None:
        """Stop a running job (nothing it found is kept) and the frame server."""
        with self._lock:
            job = self._job
        if job is not None:
            job.cancel()
        self.frames.close()

    # --- internals -----------------------------------------------------------------------------

    def _load(self, existing: Annotations) -> None:
        """Boxes, labels and absences from a file: an object is absent where it has no box."""
        self._labels.update(existing.labels())
        for r in existing.records:
            self._tracked[r.id][r.frame] = r
        for i in self._labels:
            self._absent[i] = set(range(self.meta.frame_count)) - set(self._tracked[i])

    def _file_box(self, k: Keyframe) -> Box:
        where = f"keyframe of object {k.id} on frame {k.frame}"
        if not 0 <= k.frame < self.meta.frame_count:
            raise IBFPError(f"{where} is outside the video's frames 0..{self.meta.frame_count - 1} (0-based)")
        try:
            validate_box(k.box, self.meta.width, self.meta.height)
        except BoxError as e:
            raise BoxError(f"{where}: {e}") from None
        return k.box

    def _put_keyframe(self, track_id: int, frame: int, box: Box) -> None:
        """Set a keyframe; the object is back in view from there to the end of that absence."""
        self._keys[track_id][frame] = box
        absent = self._absent[track_id]
        if frame in absent:
            absent -= set(_run_from(absent, frame))

    def _push(self, track_id: int) -> None:
        label = self._labels.get(track_id)
        self._undo.append(
            _Undo(track_id, label, dict(self._keys.get(track_id, {})), frozenset(self._absent.get(track_id, ())))
        )

    def _drop_if_empty(self, track_id: int) -> None:
        if not self._keys[track_id] and not self._tracked.get(track_id):
            for table in (self._labels, self._keys, self._absent, self._tracked):
                table.pop(track_id, None)

    def _keyframe_list(self) -> list[Keyframe]:
        return [
            Keyframe(frame, i, box, self._labels[i])
            for i in sorted(self._labels)
            for frame, box in sorted(self._keys[i].items())
        ]

    def _keyframe_snapshot(self) -> dict[tuple[int, int], Box]:
        return {(i, frame): box for i in self._labels for frame, box in self._keys[i].items()}

    def _replace_tracked(self, annotations: Annotations, snapshot: dict[tuple[int, int], Box], scored: bool) -> None:
        with self._lock:
            tracked: dict[int, dict[int, BoxRecord]] = defaultdict(dict)
            for r in annotations.records:
                tracked[r.id][r.frame] = r
            self._tracked = tracked
            self._tracked_from = snapshot
            self._scored = scored
            self.version += 1

    def _start(self, job: Job[Any]) -> JobStatus:
        self._job = job
        job.start()
        return job.status()

    def _check_idle(self) -> None:
        if self._job is not None and self._job.running:
            raise Refused(f"a {self._job.kind} is running; wait until it ends")

    def _check_frame(self, frame: int) -> None:
        if not 0 <= frame < self.meta.frame_count:
            raise IBFPError(f"frame {frame} is outside the video's frames 0..{self.meta.frame_count - 1} (0-based)")

    def _check_object(self, track_id: int) -> None:
        if track_id not in self._labels:
            raise NotFound(f"there is no object {track_id}")

    def _inside(self, box: Box) -> Box:
        width, height = self.meta.width, self.meta.height
        assert width is not None and height is not None
        if not box.is_finite():
            raise BoxError(f"box {box} has a non-finite number")
        if box.w < MIN_BOX_SIZE or box.h < MIN_BOX_SIZE:
            raise BoxError(f"box {box} is smaller than {MIN_BOX_SIZE:g} px")
        if box.x < 0 or box.y < 0 or box.x2 > width or box.y2 > height:
            raise BoxError(f"box {box} is not inside the {width}x{height} frame")
        return box

    def _records(self, track_id: int) -> Iterator[BoxRecord]:
        """One object's boxes as shown: keyframe, else tracked, never on an absent frame (a
        keyframe's time is its tracked box's, else None)."""
        label, keys, tracked, absent = (
            self._labels[track_id],
            self._keys[track_id],
            self._tracked.get(track_id, {}),
            self._absent[track_id],
        )
        for frame in sorted(keys.keys() | tracked.keys()):
            if frame in absent:
                continue
            record = tracked.get(frame)
            if frame in keys:
                time_s = record.time_s if record is not None else None
                yield BoxRecord(frame, track_id, keys[frame], KEYFRAME_SCORE, False, time_s, label, keyframe=True)
            elif record is not None:
                yield replace(record, label=label, keyframe=False)

    def _object_view(self, track_id: int) -> dict[str, Any]:
        count = self.meta.frame_count or 0
        boxes: list[list[float] | None] = [None] * count
        scores: list[float | None] = [None] * count
        lost: list[bool] = [False] * count
        records = list(self._records(track_id))
        for r in records:
            boxes[r.frame] = list(r.box.xywh())
            scores[r.frame] = r.score
            lost[r.frame] = r.lost
        doubtful = low_confidence_segments(Annotations(self.meta, records), self.threshold) if self._scored else []
        red, green, blue = track_colour(track_id)
        return {
            "id": track_id,
            "label": self._labels[track_id],
            "colour": f"#{red:02x}{green:02x}{blue:02x}",
            "boxes": boxes,
            "scores": scores,
            "lost": lost,
            "keyframes": sorted(self._keys[track_id]),
            "absent": _runs(self._absent[track_id]),
            "doubtful": [[s.first, s.last, s.lowest_frame, s.lowest_score] for s in doubtful],
        }


@contextmanager
def _paused(frames: FrameServer) -> Iterator[None]:
    """The frame server's background fill held while a job runs (it wants the CPU)."""
    frames.pause()
    try:
        yield
    finally:
        frames.resume()


def _checked_label(label: str) -> str:
    label = label.strip()
    if not label:
        raise IBFPError("a label must not be empty")
    if any(unicodedata.category(c).startswith("C") for c in label):
        raise IBFPError(f"label {label!r} holds a control character")
    return label


def _run_from(frames: set[int], frame: int) -> Iterator[int]:
    """`frame` and the frames after it in `frames` without a gap."""
    while frame in frames:
        yield frame
        frame += 1


def _runs(frames: set[int]) -> list[list[int]]:
    """Sorted frames as [first, last] runs of consecutive frames."""
    runs: list[list[int]] = []
    for frame in sorted(frames):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return runs
