"""The correction page's frame server: frames decoded at their exact index, sent as JPEG.

Frames come from `read_video`'s reader, the one `track` decodes with, so frame N on the page
is frame N of every other command. What keeps scrubbing responsive:

- a sequential fast path: the next frame continues the running decode instead of seeking,
  and so does any later frame of the same GOP;
- a keyframe index: a jump decodes from the keyframe before the frame, never from the start;
- a JPEG cache bounded in bytes, least recently used out first;
- a background fill that, while no request waits, decodes ahead of the last frame asked for,
  then the GOPs around it, nearest first, into the cache (as much as the cache holds), so
  stepping back, jumping by 10 and scrubbing nearby are cache hits;
- a seek proxy (proxy.py), built in the background once the fill is done: the whole video
  re-encoded with a keyframe every few frames, so a frame the cache misses decodes from a
  keyframe a few frames before it instead of one up to a whole GOP before it.

JPEGs for the page come from the proxy where it covers the frame (the picture is the same
to the eye, not to the bit); `image` (what retrack and track see) always decodes the original.
On a 1080p clip with x264's default keyframe interval (250 frames), a random frame the cache
misses takes a median of about 460 ms from the original and 33 ms from the proxy, which the
2-core machine builds at about 30 frames a second (benchmarks/frame_latency.py).
"""

from __future__ import annotations

import bisect
import enum
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import IBFPError, VideoError
from ..media.video import Frame, VideoInfo, VideoReader
from .proxy import SeekProxy

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
    proxy: bool = True
    """Build the seek proxy once the fill is done (off in the benchmark's cold measurements)."""
    proxy_gop: int = 8
    """Frames between the proxy's keyframes. A random frame decodes on average (gop + 1) / 2
    frames: at 1080p an ultrafast frame decodes in about 5.5 ms on one core of the busy 2-core
    machine, so 8 gives about 25 ms; with the JPEG, benchmarks/frame_latency.py measures a median of
    33 ms for a random frame and 11 ms for the next (targets 50 and 15 ms), with a training run
    keeping both cores busy."""
    proxy_crf: int = 20
    """x264's quality: 20 is about 3 grey levels from the original on the noisy generated clips,
    under the noise itself, and at 1080p about the original writer's size a frame (crf 23 with
    far-apart keyframes); 18 is a third larger and decodes 10% slower."""
    proxy_preset: str = "ultrafast"
    """x264's preset: its streams (no CABAC, no deblocking) decode about 3x faster than
    "veryfast"'s at 1080p (5.5 ms against 16 ms a frame) and encode about 2x faster."""
    proxy_space: float = 2.0
    """The proxy is built only where the temp folder has this many times the video file's size
    free: it came to 1.1x the original on the noisy generated clips (benchmarks/frame_latency.py),
    so 2x leaves the disk at least as much again for everything else."""


class ProxyState(enum.Enum):
    """Where the seek proxy stands."""

    OFF = "off"
    """Not asked for (FrameSettings.proxy)."""
    SKIPPED = "skipped"
    """Not needed: the original's keyframes are as close together as the proxy's, or the cache
    holds every frame; or no room for it in the temp folder (FrameSettings.proxy_space)."""
    WAITING = "waiting"
    """For `start`, then for the fill."""
    BUILDING = "building"
    BUILT = "built"
    FAILED = "failed"
    """The video could not be decoded to the end, or the proxy not encoded or written (a full
    disk): frames come from the original, as without a proxy."""
    STOPPED = "stopped"
    """`close` came first."""


@dataclass(frozen=True)
class FrameStats:
    """Where the frames served so far came from, and the proxy's progress."""

    from_cache: int
    from_proxy: int
    """JPEGs encoded from a frame the proxy decoded (for a request or the fill)."""
    from_original: int
    """Frames the original's decoder gave (for a JPEG, `image` or `time_s`)."""
    proxy: ProxyState
    proxy_frames: int
    proxy_bytes: int


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

    Call `start` to run the background fill and build the seek proxy; `close` stops both,
    deletes the proxy and releases the file.
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
        self._waiting = 0  # requests waiting for a decoder: the fill and the proxy give way to them
        self._paused = False
        self._stopped = False
        self._filled = threading.Event()
        self._thread: threading.Thread | None = None
        self._proxy: SeekProxy | None = None
        self._proxy_state = self._initial_proxy_state()
        self._proxy_thread: threading.Thread | None = None
        self._proxy_over = threading.Event()  # built, skipped, failed or stopped
        if self._proxy_state is not ProxyState.WAITING:
            self._proxy_over.set()
        self._counts = {"cache": 0, "proxy": 0, "original": 0}
        self._counting = threading.Lock()

    @property
    def frame_count(self) -> int:
        return self.info.frame_count

    def start(self) -> None:
        """Start the background fill and the proxy's build (those the settings ask for)."""
        if self.settings.fill and self._thread is None:
            self._thread = threading.Thread(target=self._fill, name="ibfp-frame-fill", daemon=True)
            self._thread.start()
        if self._proxy_state is ProxyState.WAITING and self._proxy_thread is None:
            self._proxy_thread = threading.Thread(target=self._build_proxy, name="ibfp-seek-proxy", daemon=True)
            self._proxy_thread.start()

    def close(self) -> None:
        """Stop the fill and the proxy's build, delete the proxy and release the video."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        for thread in (self._thread, self._proxy_thread):
            if thread is not None:
                thread.join()
        if self._proxy is not None:
            self._proxy.close()
        with self._decoding:
            self._decoder.close()

    def __enter__(self) -> FrameServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def pause(self) -> None:
        """Hold the fill and the proxy's build (a retrack wants the CPU); requests are still served."""
        with self._changed:
            self._paused = True

    def resume(self) -> None:
        with self._changed:
            self._paused = False
            self._changed.notify_all()

    def wait_filled(self, timeout: float | None = None) -> bool:
        """Wait until the fill has done its plan for the current frame; False on timeout."""
        return self._filled.wait(timeout)

    def wait_proxy(self, timeout: float | None = None) -> bool:
        """Wait until the proxy covers every frame; False on timeout or where there will be
        none (`stats().proxy` says why)."""
        self._proxy_over.wait(timeout)
        return self._proxy_state is ProxyState.BUILT

    def stats(self) -> FrameStats:
        """Counts of the frames served by source, and the proxy's state and size."""
        proxy = self._proxy
        with self._counting:
            counts = dict(self._counts)
        return FrameStats(
            from_cache=counts["cache"],
            from_proxy=counts["proxy"],
            from_original=counts["original"],
            proxy=self._proxy_state,
            proxy_frames=proxy.frame_count if proxy is not None else 0,
            proxy_bytes=proxy.size_bytes if proxy is not None else 0,
        )

    def jpeg(self, index: int) -> bytes:
        """Frame `index` as JPEG; the fill then works around it."""
        self._check(index)
        self._move_cursor(index)
        data = self.cache.get(index)
        if data is not None:
            self._count("cache")
            return data
        with self._request():
            image = self._picture(index)
        data = self._encode(image)
        self.cache.put(index, data)
        return data

    def image(self, index: int) -> np.ndarray:
        """Frame `index` as RGB uint8 (H, W, 3), exactly as `read_video` yields it."""
        self._check(index)
        with self._request():
            return self._decoded(index).image

    def time_s(self, index: int) -> float:
        """Frame `index`'s presentation time in seconds, as `track` records it."""
        self._check(index)
        if index not in self._times:
            with self._request():
                self._decoded(index)
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

    @contextmanager
    def _request(self) -> Iterator[None]:
        """A request waits for a decoder: the fill and the proxy's build hold meanwhile."""
        with self._changed:
            self._waiting += 1
        try:
            yield
        finally:
            with self._changed:
                self._waiting -= 1
                self._changed.notify_all()

    def _picture(self, index: int) -> np.ndarray:
        """Frame `index` for a JPEG: from the proxy where it covers the frame, else the original."""
        proxy = self._proxy
        image = proxy.image(index) if proxy is not None else None
        if image is not None:
            self._count("proxy")
            return image
        return self._decoded(index).image

    def _decoded(self, index: int) -> Frame:
        with self._decoding:
            frame = self._decoder.frame(index)
        self._count("original")
        self._times[index] = frame.time_s
        return frame

    def _count(self, source: str) -> None:
        with self._counting:
            self._counts[source] += 1

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
                        self.cache.put(index, self._encode(self._picture(index)))
                    except VideoError:
                        break  # a damaged stretch: the page gets the error when it asks for the frame
            with self._changed:
                if self._moves == moves:
                    self._filled.set()  # done, or given up, until the cursor moves
                    self._changed.notify_all()

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

    def _initial_proxy_state(self) -> ProxyState:
        """WAITING where a proxy pays and fits: not where the original's keyframes are on average
        no further apart than the proxy's (a jump there decodes no more frames than in the
        proxy), nor where the temp folder lacks the room."""
        if not self.settings.proxy:
            return ProxyState.OFF
        if self.frame_count / len(self.keyframes) <= self.settings.proxy_gop:
            return ProxyState.SKIPPED
        if shutil.disk_usage(tempfile.gettempdir()).free < self.settings.proxy_space * self.path.stat().st_size:
            return ProxyState.SKIPPED
        return ProxyState.WAITING

    def _proxy_may_go_on(self) -> bool:
        """Wait until nothing has a better claim on the CPU (a request, a retrack, the fill's
        plan); False once stopped."""
        with self._changed:
            while not self._stopped and (
                self._paused or self._waiting or (self._thread is not None and not self._filled.is_set())
            ):
                self._changed.wait()
            return not self._stopped

    def _build_proxy(self) -> None:
        """The proxy thread: once the fill is done, transcode the video in order into the proxy,
        which serves each frame as soon as it is written; a failure leaves no proxy."""
        try:
            if not self._proxy_may_go_on():
                self._proxy_state = ProxyState.STOPPED
            elif len(self.cache) >= self.frame_count:
                self._proxy_state = ProxyState.SKIPPED
            else:
                self._proxy_state = ProxyState.BUILDING
                self._proxy_state = self._transcode()
        except (VideoError, OSError):
            proxy, self._proxy = self._proxy, None
            if proxy is not None:
                proxy.close()
            self._proxy_state = ProxyState.FAILED
        finally:
            self._proxy_over.set()

    def _transcode(self) -> ProxyState:
        """Append the video's frames to a new proxy, in order: BUILT, or STOPPED by `close`."""
        settings, info = self.settings, self.info
        proxy = SeekProxy(
            info.width, info.height, info.fps, settings.proxy_gop, settings.proxy_crf, settings.proxy_preset
        )
        self._proxy = proxy  # close() deletes it from here on
        with VideoReader(self.path, threads=settings.decoder_threads) as reader:
            for frame in reader:
                if not self._proxy_may_go_on():
                    return ProxyState.STOPPED
                proxy.append(frame.image)
        proxy.finish()
        if proxy.frame_count != self.frame_count:
            raise VideoError(f"the seek proxy has {proxy.frame_count} of {self.frame_count} frames")
        return ProxyState.BUILT
