"""Corrections: re-track objects between the boxes a person drew, both ways, incrementally.

A keyframe is a box a person drew (the seed, or a correction). Between two keyframes of an
object the tracker runs forward from the earlier one and backward from the later one, and
each frame keeps the more confident of the two boxes. Before an object's first keyframe it
is tracked backward to frame 0; after its last, forward to the video's end. Given the previous
run's boxes, a pass stops where its boxes have rejoined them (RetrackConfig), so a local
correction re-tracks the frames around it, not the whole stretch.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain, pairwise
from pathlib import Path

from ..annotations import DEFAULT_LABEL, Annotations, BoxRecord, VideoMeta
from ..boxes import Box, iou, validate_box
from ..errors import BoxError, FormatError, IBFPError
from ..formats import read_annotations, resolve_format, write_annotations
from ..media.atomic import atomic_output
from ..media.video import Frame, VideoInfo, probe, read_video
from ..progress import ProgressCallback
from ..tracking.contract import SingleObjectTracker, TrackerOutput, update_all
from ..tracking.registry import create_tracker
from .pipeline import clip_output

KEYFRAME_SCORE = 1.0
"""Score of a box a person drew."""
BACKWARD_BUFFER_BYTES = 1 << 30
"""Decoded frames held at once for backward tracking: 1 GiB, about 170 frames of 1080p."""
FLAGGED_FORMATS: frozenset[str] = frozenset({"cvat"})
"""Formats whose files, as annotation tools export them, mark which boxes a person set;
from any other format every box is taken as a keyframe (an annotator's partial work)."""
SAME_BOX_PX = 0.01
"""Keyframe boxes whose corners differ by at most this many pixels are the same box: CVAT
stores corners with two decimals, so a keyframe read back from CVAT is within 0.005 px."""
RGB_CHANNELS = 3
FORWARD, BACKWARD = 1, -1


@dataclass(frozen=True)
class RetrackConfig:
    """When a pass from a keyframe stops early: once its boxes have rejoined the previous run's.

    A pass stops after `rejoin_frames` consecutive frames on which its box and the previous
    run's box for the object are both found and overlap by at least `rejoin_iou`; on the
    frames it did not reach, the previous run's boxes stand. Only where the previous run has
    a box on every frame the pass would reach. rejoin_frames 0: every pass runs its whole stretch.
    """

    # Two boxes of one object at IoU 0.8 differ by about a tenth of their size: within what two
    # annotators differ by (VOT and GOT-10k count IoU >= 0.5 as found); a drawn box 12% larger
    # than the tracked one stays below it, so a correction of size is carried on.
    rejoin_iou: float = 0.8
    # A sixth of a second at 30 fps: longer than a crossing object overlaps the target on the
    # generated clips, so a pass does not stop on a box that only passes by.
    rejoin_frames: int = 5


@dataclass(frozen=True, slots=True)
class Keyframe:
    """A box a person drew for one object on one frame (0-based decode index)."""

    frame: int
    id: int
    box: Box
    label: str = DEFAULT_LABEL


@dataclass(frozen=True, slots=True)
class Span:
    """Frames first..last (0-based, inclusive) of one object, between its keyframes."""

    id: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class RetrackResult:
    """The annotations after re-tracking, and the spans that were tracked anew (the rest
    were copied from the previous run, or stand where the passes rejoined it)."""

    annotations: Annotations
    retracked: tuple[Span, ...]


_Mark = tuple[int, Box]
"""A keyframe as far as tracking is concerned: its frame and box."""


@dataclass(frozen=True, slots=True)
class _Stretch:
    """One object's frames between two keyframes; None stands for the video's start or end."""

    id: int
    start: _Mark | None
    end: _Mark | None

    def span(self, frame_count: int) -> Span:
        first = 0 if self.start is None else self.start[0] + 1
        last = frame_count - 1 if self.end is None else self.end[0] - 1
        return Span(self.id, first, last)


@dataclass(eq=False)
class _Pass:
    """One object's tracker run from a keyframe over `length` frames, forward or backward."""

    id: int
    keyframe: int
    box: Box
    length: int
    step: int
    may_stop: bool = False
    """Whether the pass may stop once it rejoins the previous run (which covers its frames)."""
    outputs: dict[int, TrackerOutput] = field(default_factory=dict)
    agreeing: int = 0
    """Consecutive frames, up to the last one tracked, on which it matched the previous run."""

    def frames(self) -> tuple[int, int]:
        """The lowest and highest frame the pass decodes, its keyframe included."""
        far = self.keyframe + self.step * self.length
        return min(self.keyframe, far), max(self.keyframe, far)


def load_keyframes(path: str | os.PathLike[str], fmt: str | None = None) -> list[Keyframe]:
    """Keyframes from a corrections CSV (`frame,id,x,y,w,h` and optional `label`, 0-based
    frames) or any annotation file ibfp reads.

    From CVAT XML only the boxes marked as set by a person are taken (ibfp's `manual`
    attribute, else CVAT's keyframe="1"); from the other formats, every box.
    """
    path = Path(path)
    format_name = resolve_format(path, fmt).name
    records = read_annotations(path, format_name).records
    if format_name in FLAGGED_FORMATS:
        records = [r for r in records if r.keyframe]
    if not records:
        raise FormatError(f"{path} holds no keyframes")
    return [_keyframe(r, path) for r in records]


def keyframes_of(annotations: Annotations) -> list[Keyframe]:
    """The boxes of an annotation set that are flagged as drawn by a person."""
    return [Keyframe(r.frame, r.id, r.box, r.label) for r in annotations.records if r.keyframe]


def combined_keyframes(existing: Annotations, corrections: Iterable[Keyframe]) -> list[Keyframe]:
    """The keyframes of a previous run plus corrections; a correction on the same object
    and frame replaces the earlier keyframe unless its box is the same (within SAME_BOX_PX)."""
    merged = {(k.id, k.frame): k for k in keyframes_of(existing)}
    for k in corrections:
        earlier = merged.get((k.id, k.frame))
        if earlier is not None and _same_box(earlier.box, k.box):
            merged[k.id, k.frame] = replace(earlier, label=k.label)
        else:
            merged[k.id, k.frame] = k
    return sorted(merged.values(), key=lambda k: (k.id, k.frame))


def keyframes_to_retrack(
    keyframes: str | os.PathLike[str],
    fmt: str | None = None,
    existing: str | os.PathLike[str] | None = None,
    replace_keyframes: bool = False,
) -> tuple[list[Keyframe], Annotations | None]:
    """What `ibfp retrack` starts from: the keyframes of the file `keyframes` (see
    `load_keyframes`), plus those of the previous run's output `existing` unless
    `replace_keyframes` (see `combined_keyframes`); and that output's annotations (None
    without one)."""
    given = load_keyframes(keyframes, fmt)
    previous = read_annotations(existing) if existing is not None else None
    if previous is not None and not replace_keyframes:
        given = combined_keyframes(previous, given)
    return given, previous


def retrack(
    video: str | os.PathLike[str],
    keyframes: Iterable[Keyframe],
    *,
    tracker: str = "ibfp",
    existing: Annotations | None = None,
    device: str = "auto",
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    buffer_bytes: int = BACKWARD_BUFFER_BYTES,
    config: RetrackConfig = RetrackConfig(),
) -> RetrackResult:
    """Track every object with keyframes between them, both ways, and merge by confidence.

    `keyframes` is the full set: each object is re-initialised at each of its keyframes and
    tracked forward to its next keyframe (or the video's end) and backward to its previous
    one (or frame 0). Where both passes reach a frame, the higher score wins (a lost box
    never beats a found one; on a tie, the pass from the nearer keyframe, forward when
    equally near). Keyframe boxes are kept as given (clipped to the frame where they
    overhang it), flagged keyframe with score 1.

    With `existing` (a previous run's output, which flags its keyframes), a stretch between
    two keyframes that are both unchanged, and that `existing` covers on every frame, is
    copied instead of tracked, and a pass stops once its boxes rejoin the previous run's
    (see RetrackConfig; the previous boxes stand on the frames it did not reach). Objects
    without keyframes are copied from `existing` as they are. The result's `retracked` lists
    the spans tracked anew.

    Memory: backward tracking holds up to `buffer_bytes` of decoded frames (RGB, full size).
    A longer stretch is decoded in chunks from its end, each chunk from the video's I-frame
    before it, so a small buffer costs decoding time, not memory.
    """
    info = probe(video)
    if existing is not None:
        _check_existing(existing, info, video)
    keyframes = list(keyframes)
    marks = _checked_marks(keyframes, info)
    labels = _labels(keyframes, existing)
    previous = _previous_records(existing)
    copied, changed = _plan(marks, existing, previous, info.frame_count)
    passes = {s: _passes(s, info.frame_count, previous.get(s.id, {}), config) for s in changed}
    times = _run_passes(
        video,
        [p for stretch_passes in passes.values() for p in stretch_passes],
        info,
        lambda: create_tracker(tracker, device=device, backend=backend, weights=weights),
        max(1, buffer_bytes // (info.width * info.height * RGB_CHANNELS)),
        progress,
        _Rejoin(previous, config),
    )
    records = [
        replace(r, label=labels[r.id])
        for r in chain(
            copied,
            _keyframe_records(marks, times, previous),
            _tracked_records(passes, times, info.frame_count, previous),
        )
    ]
    records += [r for i, have in previous.items() if i not in marks for r in have.values()]
    meta = VideoMeta(Path(video).name, info.width, info.height, info.fps, info.frame_count)
    retracked = sorted(_tracked_spans(passes, info.frame_count), key=lambda s: (s.id, s.first))
    return RetrackResult(Annotations(meta, records), tuple(retracked))


def retrack_to_file(
    video: str | os.PathLike[str],
    keyframes: Iterable[Keyframe],
    out: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    tracker: str = "ibfp",
    existing: Annotations | None = None,
    device: str = "auto",
    backend: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
) -> RetrackResult:
    """`retrack` and write the boxes to `out` in `fmt` (default: from its extension).

    The format and output folder are checked before tracking; `out` appears only once
    complete, so it may be the file `existing` was read from.
    """
    format_name = resolve_format(Path(out), fmt).name
    with atomic_output(out) as tmp:
        result = retrack(
            video,
            keyframes,
            tracker=tracker,
            existing=existing,
            device=device,
            backend=backend,
            weights=weights,
            progress=progress,
        )
        write_annotations(tmp, result.annotations, format_name)
    return result


def _keyframe(record: BoxRecord, path: Path) -> Keyframe:
    where = f"{path}: object {record.id} on frame {record.frame} (0-based)"
    if record.id < 1:
        raise FormatError(f"{where}: object ids must be 1 or more")
    if not (record.box.w > 0 and record.box.h > 0):
        raise FormatError(f"{where}: box {record.box} has no area (w and h must be positive)")
    return Keyframe(record.frame, record.id, record.box, record.label)


def _same_box(a: Box, b: Box) -> bool:
    return all(abs(u - v) <= SAME_BOX_PX for u, v in zip(a.xyxy(), b.xyxy(), strict=True))


def _check_existing(existing: Annotations, info: VideoInfo, video: str | os.PathLike[str]) -> None:
    known = existing.video
    if known.width is not None and (known.width, known.height) != (info.width, info.height):
        raise IBFPError(
            f"the existing boxes are for a {known.width}x{known.height} video but {video} is {info.width}x{info.height}"
        )
    if known.frame_count is not None and known.frame_count != info.frame_count:
        raise IBFPError(
            f"the existing boxes are for a video of {known.frame_count} frames but {video} has {info.frame_count}"
        )


def _checked_marks(keyframes: list[Keyframe], info: VideoInfo) -> dict[int, list[_Mark]]:
    """Each object's keyframes in frame order, checked against the video."""
    if not keyframes:
        raise IBFPError("no keyframes given; give at least one box drawn by a person")
    last = info.frame_count - 1
    marks: dict[int, dict[int, Box]] = defaultdict(dict)
    for k in keyframes:
        where = f"keyframe of object {k.id} on frame {k.frame}"
        if not 0 <= k.frame <= last:
            raise IBFPError(f"{where} is outside the video's frames 0..{last} (0-based)")
        if k.frame in marks[k.id]:
            raise IBFPError(f"object {k.id} has two keyframes on frame {k.frame}")
        try:
            marks[k.id][k.frame] = _fitted(k.box, info)
        except BoxError as e:
            raise BoxError(f"{where}: {e}") from None
    return {track_id: sorted(frames.items()) for track_id, frames in sorted(marks.items())}


def _fitted(box: Box, info: VideoInfo) -> Box:
    """The box itself when it lies inside the frame, else its part inside (checked for size).

    An inside box is not clipped, so that one read back from a previous run compares equal.
    """
    clipped = validate_box(box, info.width, info.height)
    inside = box.x >= 0 and box.y >= 0 and box.x2 <= info.width and box.y2 <= info.height
    return box if inside else clipped


def _old_marks(existing: Annotations | None) -> dict[int, list[_Mark]]:
    marks: dict[int, list[_Mark]] = defaultdict(list)
    for k in keyframes_of(existing) if existing is not None else ():
        marks[k.id].append((k.frame, k.box))
    return marks


def _previous_records(existing: Annotations | None) -> dict[int, dict[int, BoxRecord]]:
    """The records of a previous run by object id and frame."""
    previous: dict[int, dict[int, BoxRecord]] = defaultdict(dict)
    for r in existing.records if existing is not None else ():
        previous[r.id][r.frame] = r
    return previous


def _stretches(track_id: int, marks: list[_Mark]) -> list[_Stretch]:
    """The stretches before, between and after an object's keyframes (in frame order)."""
    return [_Stretch(track_id, a, b) for a, b in pairwise([None, *marks, None])]


def _plan(
    marks: dict[int, list[_Mark]],
    existing: Annotations | None,
    previous: dict[int, dict[int, BoxRecord]],
    frame_count: int,
) -> tuple[list[BoxRecord], list[_Stretch]]:
    """The records copied from the previous run, and the stretches to track anew.

    A stretch is copied when the previous run had the same keyframes around it and a box
    on each of its frames.
    """
    old = {s for i, old_marks in _old_marks(existing).items() for s in _stretches(i, old_marks)}
    copied: list[BoxRecord] = []
    changed: list[_Stretch] = []
    for track_id, track_marks in marks.items():
        have = previous.get(track_id, {})
        for stretch in _stretches(track_id, track_marks):
            span = stretch.span(frame_count)
            frames = range(span.first, span.last + 1)
            if stretch in old and all(f in have for f in frames):
                copied.extend(have[f] for f in frames)
            else:
                changed.append(stretch)
    return copied, changed


def _passes(stretch: _Stretch, frame_count: int, have: dict[int, BoxRecord], config: RetrackConfig) -> list[_Pass]:
    """The forward pass from the stretch's start keyframe and the backward pass from its end;
    they may stop early where the previous run (`have`, by frame) has a tracked box on every frame.

    A forward pass is made even for an empty stretch so that its keyframe's frame is decoded
    (for its time); a backward pass only where there are frames to track.
    """
    span = stretch.span(frame_count)
    length = span.last - span.first + 1
    frames = range(span.first, span.last + 1)
    # not over a keyframe the previous run had and this one has not: a deleted box is tracked over
    may_stop = config.rejoin_frames > 0 and all(f in have and not have[f].keyframe for f in frames)
    passes = []
    if stretch.start is not None:
        passes.append(_Pass(stretch.id, *stretch.start, length, FORWARD, may_stop))
    if stretch.end is not None and length > 0:
        passes.append(_Pass(stretch.id, *stretch.end, length, BACKWARD, may_stop))
    return passes


@dataclass(frozen=True)
class _Rejoin:
    """The previous run's boxes (by object and frame) and when a pass counts as rejoining them."""

    previous: dict[int, dict[int, BoxRecord]]
    config: RetrackConfig

    def done(self, p: _Pass, frame: int, output: TrackerOutput) -> bool:
        """Count the pass's agreement on `frame`; whether it has now rejoined the previous run."""
        if not p.may_stop:
            return False
        old = self.previous[p.id][frame]
        close = not (output.lost or old.lost) and iou(output.box, old.box) >= self.config.rejoin_iou
        p.agreeing = p.agreeing + 1 if close else 0
        return p.agreeing >= self.config.rejoin_frames


def _run_passes(
    video: str | os.PathLike[str],
    passes: list[_Pass],
    info: VideoInfo,
    new_tracker: Callable[[], SingleObjectTracker],
    chunk_frames: int,
    progress: ProgressCallback | None,
    rejoin: _Rejoin,
) -> dict[int, float]:
    """Run every pass: forward ones in one sweep, backward ones in another, each decoding the
    union of its passes' frames once, up to where its last pass stops. Returns each decoded
    frame's time.

    Each object has one tracker per direction, re-initialised at each of its keyframes; all
    are made before any frame is decoded, so a tracker that cannot run fails first.
    """
    sweeps = []
    for step in (FORWARD, BACKWARD):
        group = [p for p in passes if p.step == step]
        trackers = {p.id: new_tracker() for p in group if p.length > 0}
        sweeps.append((group, trackers, _merged([p.frames() for p in group])))
    total = sum(hi - lo + 1 for _, _, runs in sweeps for lo, hi in runs)
    (forward, forward_trackers, forward_runs), (backward, backward_trackers, backward_runs) = sweeps
    done = chain(
        *(
            _sweep(_within(forward, lo, hi), forward_trackers, _frames(video, lo, hi), info, rejoin)
            for lo, hi in forward_runs
        ),
        *(
            _sweep(
                _within(backward, lo, hi),
                backward_trackers,
                _frames_backward(video, lo, hi, chunk_frames),
                info,
                rejoin,
            )
            for lo, hi in reversed(backward_runs)
        ),
    )
    times: dict[int, float] = {}
    count = 0
    for count, frame in enumerate(done, start=1):
        times[frame.index] = frame.time_s
        if progress is not None:
            progress(count, total)
    if progress is not None and count < total:  # the passes stopped early: the work is done
        progress(total, total)
    return times


def _within(passes: list[_Pass], first: int, last: int) -> list[_Pass]:
    """The passes that start on frames first..last."""
    return [p for p in passes if first <= p.keyframe <= last]


def _sweep(
    passes: list[_Pass],
    trackers: dict[int, SingleObjectTracker],
    frames: Iterable[Frame],
    info: VideoInfo,
    rejoin: _Rejoin,
) -> Iterator[Frame]:
    """Feed frames (in the passes' direction) to the passes; yields each frame when done, and
    stops once every pass has started and ended.

    A pass starts its object's tracker on the keyframe's frame and updates it on the next
    `length` frames, or until it rejoins the previous run; an object's passes in one direction
    never overlap.
    """
    starting: dict[int, list[_Pass]] = defaultdict(list)
    for p in passes:
        starting[p.keyframe].append(p)
    active: dict[_Pass, Box] = {}  # running passes -> their last box
    for frame in frames:
        running = list(active.items())
        outputs = update_all([trackers[p.id] for p, _ in running], frame.image)
        for (p, last_box), output in zip(running, outputs):
            output = clip_output(output, last_box, info)
            p.outputs[frame.index] = output
            if len(p.outputs) == p.length or rejoin.done(p, frame.index, output):
                del active[p]
            else:
                active[p] = output.box
        for p in starting.pop(frame.index, ()):
            if p.length > 0:
                trackers[p.id].init(frame.image, p.box)
                active[p] = p.box
        yield frame
        if not (active or starting):
            return


def _merged(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching frame intervals joined, in order."""
    runs: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if runs and lo <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], max(runs[-1][1], hi))
        else:
            runs.append((lo, hi))
    return runs


def _frames(video: str | os.PathLike[str], first: int, last: int) -> Iterator[Frame]:
    """Frames first..last in order."""
    with read_video(video, start=first) as reader:
        for frame in reader:
            if frame.index > last:
                break
            yield frame


def _frames_backward(video: str | os.PathLike[str], first: int, last: int, chunk_frames: int) -> Iterator[Frame]:
    """Frames last..first in reverse order, decoded `chunk_frames` at a time from the end."""
    for top in range(last, first - 1, -chunk_frames):
        yield from reversed(list(_frames(video, max(first, top - chunk_frames + 1), top)))


def _better(frame: int, passes: list[_Pass], standing: BoxRecord | None) -> TrackerOutput:
    """The passes' best box on a frame: found before lost, then the higher score, then the
    pass from the nearer keyframe, then the forward one. A pass that stopped before the frame
    (it had rejoined the previous run) stands there with the previous run's box, `standing`."""

    def output(p: _Pass) -> TrackerOutput:
        if frame in p.outputs:
            return p.outputs[frame]
        assert standing is not None  # a pass stops only where the previous run has every box
        return TrackerOutput(standing.box, standing.score, standing.lost)

    def rank(p: _Pass) -> tuple[bool, float, int, int]:
        found = output(p)
        return (not found.lost, found.score, -abs(frame - p.keyframe), p.step)

    return output(max(passes, key=rank))


def _tracked_records(
    passes: dict[_Stretch, list[_Pass]],
    times: dict[int, float],
    frame_count: int,
    previous: dict[int, dict[int, BoxRecord]],
) -> Iterator[BoxRecord]:
    """One record per frame of each stretch tracked anew: the better of its two passes' boxes,
    or the previous run's where both passes had stopped before the frame."""
    for stretch, stretch_passes in passes.items():
        span = stretch.span(frame_count)
        have = previous.get(stretch.id, {})
        for frame in range(span.first, span.last + 1):
            if not any(frame in p.outputs for p in stretch_passes):
                yield have[frame]
                continue
            output = _better(frame, stretch_passes, have.get(frame))
            yield BoxRecord(frame, stretch.id, output.box, output.score, output.lost, times[frame])


def _tracked_spans(passes: dict[_Stretch, list[_Pass]], frame_count: int) -> Iterator[Span]:
    """The runs of frames that a pass reached, per stretch."""
    for stretch, stretch_passes in passes.items():
        span = stretch.span(frame_count)
        reached = sorted({f for p in stretch_passes for f in p.outputs if span.first <= f <= span.last})
        for run in _merged([(f, f) for f in reached]):
            yield Span(stretch.id, *run)


def _keyframe_records(
    marks: dict[int, list[_Mark]], times: dict[int, float], previous: dict[int, dict[int, BoxRecord]]
) -> Iterator[BoxRecord]:
    """One record per keyframe; its time from this run's decoding, else the previous run's."""
    for track_id, track_marks in marks.items():
        for frame, box in track_marks:
            time_s = times.get(frame)
            if time_s is None and frame in previous.get(track_id, {}):
                time_s = previous[track_id][frame].time_s
            yield BoxRecord(frame, track_id, box, KEYFRAME_SCORE, time_s=time_s, keyframe=True)


def _labels(keyframes: list[Keyframe], existing: Annotations | None) -> dict[int, str]:
    """Each object's label: from its keyframes, else from the previous run, else the default.

    Keyframes labelled with the default label count as unlabelled.
    """
    given: dict[int, set[str]] = defaultdict(set)
    for k in keyframes:
        if k.label != DEFAULT_LABEL:
            given[k.id].add(k.label)
    labels = existing.labels() if existing is not None else {}
    for track_id, names in given.items():
        if len(names) > 1:
            first, second = sorted(names)[:2]
            raise IBFPError(
                f"object {track_id} has keyframes labelled {first!r} and {second!r}; give each object one label"
            )
        labels[track_id] = names.pop()
    return defaultdict(lambda: DEFAULT_LABEL, labels)
