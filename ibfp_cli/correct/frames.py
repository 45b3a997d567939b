"""The correction page's frame server: frames decoded at their exact index, sent as JPEG.

Frames come from `read_video`'s reader, the one `track` decodes with, so frame N on the page
is frame N of every other command. What keeps scrubbing responsive:

- a sequential fast path: the next frame continues the running decode instead of seeking,
  and so does any later frame of the same GOP;
- a keyframe index: a jump decodes from the keyframe before the frame, never from the start;
- a JPEG cache bounded in bytes, least recently used out first;
- a background fill that, while no request waits, decodes ahead of the last frame asked for,
  then the GOPs around it, nearest first, into the cache (as much as the cache holds), so
  stepping back, jumping by 10 and scrubbing nearby are cache hits.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import IBFPError, VideoError
from ..media.video import Frame, VideoInfo, VideoReader

MIB = 1 << 20


class FrameOutOfRange(IBFPError):
    """A frame index outside the video."""


@dataclass(frozen=True)
class FrameSettings:
    """How frames are encoded, cached and filled in."""

    jpeg_quality: int = 80
    """OpenCV's JPEG quality: at 80 a 1080p frame of the noisy generated clip encodes in about
    5 ms to about 340 KB (benchmarks/frame_latency.py), with no blocking to see on the page."""
    cache_bytes: int = 512 * MIB
    """JPEGs kept in memory: about 1,500 such 1080p frames, 50 s of video at 30 fps."""
    read_ahead: int = 30
    """Frames the fill decodes after the last one asked for before anything else: one second
    at 30 fps, what holding the next-frame key asks for next."""
    fill_share: float = 0.9
    """The fill stops once its frames would take this share of the cache, leaving the rest to
    the frames the page asks for itself."""
    fill: bool = True
    """Run the background fill (off in the benchmark's cold measurements)."""
    decoder_threads: int | None = None
    """FFmpeg decoding threads; None: one per core, as `track` decodes."""


class JpegCache:
    """Encoded frames by index, at most `capacity` bytes, least recently used out first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, index: int) -> bytes | None:
        with self._lock:
            data = self._items.get(index)
            if data is not None:
                self._items.move_to_end(index)
            return data

    def __contains__(self, index: int) -> bool:
        with self._lock:
            return index in self._items

    def put(self, index: int, data: bytes) -> None:
        with self._lock:
            old = self._items.pop(index, None)
            self._bytes -= len(old) if old is not None else 0
            self._items[index] = data
            self._bytes += len(data)
            while self._bytes > self.capacity and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def mean_size(self) -> float | None:
        """Mean bytes per cached frame; None while empty."""
        with self._lock:
            return self._bytes / len(self._items) if self._items else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def keyframe_indices(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """The indices of the frames a decode can start from (keyframe packets), frame 0 always.

    Frames are numbered as `read_video` numbers them: by their place among all the frames'
    timestamps. Where some frame has no timestamp, only frame 0 is listed.
    """
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            pts: list[int | None] = []
            keys: list[int] = []
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe and packet.pts is not None:
                    keys.append(packet.pts)
    except av.FFmpegError as e:
        raise VideoError(f"cannot index the keyframes of {path}: {e.strerror or e}") from None
    if None in pts:
        return (0,)
    timeline = sorted(p for p in pts if p is not None)
    return tuple(sorted({0, *(bisect.bisect_left(timeline, k) for k in keys)}))


class _Decoder:
    """One decoding position in the video: a later frame of the same GOP continues it, any
    other frame starts a new decode from the keyframe before it."""

    def __init__(self, path: Path, keyframes: tuple[int, ...], threads: int | None) -> None:
        self._reader = VideoReader(path, threads=threads)
        self.info: VideoInfo = self._reader.info
        self._keyframes = keyframes
        self._frames: Iterator[Frame] | None = None
        self._next = 0
        """The index the running decode yields next."""

    def frame(self, index: int) -> Frame:
        if not self._continues_to(index):
            self._restart(index)
        assert self._frames is not None
        for frame in self._frames:
            self._next = frame.index + 1
            if frame.index == index:
                return frame
        self._frames = None
        raise VideoError(f"cannot decode frame {index} of {self._reader.path}")

    def close(self) -> None:
        self._frames = None
        self._reader.close()

    def _continues_to(self, index: int) -> bool:
        if self._frames is None or index < self._next:
            return False
        start = self._keyframes[bisect.bisect_right(self._keyframes, index) - 1]
        return self._next >= start  # seeking would decode from `start`: no fewer frames

    def _restart(self, index: int) -> None:
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]  # a generator
        self._reader.start = index
        self._frames = iter(self._reader)


class FrameServer:
    """Frames of one video by index, as RGB arrays or JPEG bytes; a context manager.

    Call `start` to run the background fill; `close` stops it and releases the file.
    """

    def __init__(self, video: str | os.PathLike[str], settings: FrameSettings | None = None) -> None:
        self.settings = settings or FrameSettings()
        self.path = Path(video)
        self.keyframes = keyframe_indices(self.path)
        self._decoder = _Decoder(self.path, self.keyframes, self.settings.decoder_threads)
        self.info: VideoInfo = self._decoder.info
        self.cache = JpegCache(self.settings.cache_bytes)
        self._times: dict[int, float] = {}
        self._decoding = threading.Lock()  # one decoder, one decode at a time
        self._changed = threading.Condition()
        self._cursor = 0
        self._moves = 0  # counts cursor moves, so the fill restarts its plan after one
        self._waiting = 0  # requests waiting for the decoder: the fill gives way to them
        self._paused = False
        self._stopped = False
        self._filled = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def frame_count(self) -> int:
        return self.info.frame_count

    def start(self) -> None:
        """Start the background fill (when the settings ask for it)."""
        if self.settings.fill and self._thread is None:
            self._thread = threading.Thread(target=self._fill, name="ibfp-frame-fill", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the fill and release the video."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._decoding:
            self._decoder.close()

    def __enter__(self) -> FrameServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def pause(self) -> None:
        """Hold the fill (a retrack wants the CPU); requests are still served."""
        with self._changed:
            self._paused = True

    def resume(self) -> None:
        with self._changed:
            self._paused = False
            self._changed.notify_all()

    def wait_filled(self, timeout: float | None = None) -> bool:
        """Wait until the fill has done its plan for the current frame; False on timeout."""
        return self._filled.wait(timeout)

    def jpeg(self, index: int) -> bytes:
        """Frame `index` as JPEG; the fill then works around it."""
        self._check(index)
        self._move_cursor(index)
        data = self.cache.get(index)
        if data is None:
            data = self._encode(self._decoded(index, waiting=True).image)
            self.cache.put(index, data)
        return data

    def image(self, index: int) -> np.ndarray:
        """Frame `index` as RGB uint8 (H, W, 3), exactly as `read_video` yields it."""
        self._check(index)
        return self._decoded(index, waiting=True).image

    def time_s(self, index: int) -> float:
        """Frame `index`'s presentation time in seconds, as `track` records it."""
        self._check(index)
        if index not in self._times:
            self._decoded(index, waiting=True)
        return self._times[index]

    def _check(self, index: int) -> None:
        if not 0 <= index < self.frame_count:
            raise FrameOutOfRange(f"frame {index} is outside the video's frames 0..{self.frame_count - 1} (0-based)")

    def _move_cursor(self, index: int) -> None:
        with self._changed:
            if index != self._cursor:
                self._cursor = index
                self._moves += 1
                self._filled.clear()
                self._changed.notify_all()

    def _decoded(self, index: int, waiting: bool) -> Frame:
        if waiting:
            with self._changed:
                self._waiting += 1
        try:
            with self._decoding:
                frame = self._decoder.frame(index)
        finally:
            if waiting:
                with self._changed:
                    self._waiting -= 1
                    self._changed.notify_all()
        self._times[index] = frame.time_s
        return frame

    def _encode(self, image: np.ndarray) -> bytes:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality])
        if not ok:
            raise VideoError(f"OpenCV could not encode a frame of {self.path} as JPEG")
        return data.tobytes()

    def _fill(self) -> None:
        """The fill thread: work through the plan for the current cursor, one frame at a time,
        giving way to requests and starting over when the cursor moves."""
        while True:
            with self._changed:
                while not self._stopped and (self._paused or self._filled.is_set()):
                    self._changed.wait()
                if self._stopped:
                    return
                cursor, moves = self._cursor, self._moves
            for index in self._plan(cursor):
                with self._changed:
                    while not self._stopped and (self._paused or self._waiting) and self._moves == moves:
                        self._changed.wait()
                    if self._stopped or self._moves != moves:
                        break
                if index not in self.cache:
                    try:
                        self.cache.put(index, self._encode(self._decoded(index, waiting=False).image))
                    except VideoError:
                        break  # a damaged stretch: the page gets the error when it asks for the frame
            with self._changed:
                if self._moves == moves:
                    self._filled.set()  # done, or given up, until the cursor moves

    def _plan(self, cursor: int) -> Iterator[int]:
        """The frames to fill for a cursor: read-ahead first, then whole GOPs by distance from
        the cursor (each decoded from its keyframe), until the fill's share of the cache."""
        last = self.frame_count - 1
        ahead = range(cursor + 1, min(cursor + self.settings.read_ahead, last) + 1)
        yield from ahead
        budget = self._fill_frames() - len(ahead)
        starts = self.keyframes
        gops = [(start, (starts[i + 1] - 1) if i + 1 < len(starts) else last) for i, start in enumerate(starts)]
        gops.sort(key=lambda g: 0 if g[0] <= cursor <= g[1] else min(abs(g[0] - cursor), abs(g[1] - cursor)))
        for first, end in gops:
            if budget <= 0:
                return
            frames = [i for i in range(first, end + 1) if i not in ahead]
            yield from frames[:budget]
            budget -= len(frames)

    def _fill_frames(self) -> int:
        """How many frames the fill's share of the cache holds, at the mean size so far."""
        mean = self.cache.mean_size()
        if mean is None:
            return self.settings.read_ahead
        return int(self.settings.cache_bytes * self.settings.fill_share / mean)
