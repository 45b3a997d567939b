"""Reading and writing videos with PyAV: exact frame counts, RGB frames, rotation applied.

Frame indices are 0-based decode (presentation) order. `probe` counts the demuxed
packets that carry a frame, so the count is exact even when the container's metadata
is missing or wrong and for variable frame rate video.

Damaged files: an MP4 cut short normally loses its index (the moov atom sits at the
end), so it cannot be opened and raises VideoError "truncated or corrupt". A file
whose index survives but whose data ends inside a frame raises the same error from
`probe`. If decoding fails later, the reader yields the frames decoded so far and
then raises VideoError. Every PyAV error becomes a one-line VideoError.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.container import InputContainer
from av.sidedata.sidedata import Type as SideDataType
from av.video.stream import VideoStream

from ..errors import VideoError

RIGHT_ANGLE = 90
FULL_TURN = 360
RGB_FORMAT = "rgb24"
PIXEL_FORMAT = "yuv420p"
"""The pixel format every H.264 player accepts; it needs even widths and heights."""
ENCODERS = ("libx264", "h264", "mpeg4")
"""Encoders tried in order: x264 where PyAV has it, else FFmpeg's default H.264, else MPEG-4."""
X264_PRESET = "ultrafast"
"""Annotation previews and generated clips favour encoding speed (about 3x "veryfast"
on noisy 640x480 clips) over file size (about 1.5x)."""
MAX_CRF = 51
"""x264's constant rate factor range is 0 (lossless) to 51 (worst)."""
MAX_RATE_DENOMINATOR = 1001
"""Frame rates are stored as fractions; 1001 keeps NTSC rates such as 30000/1001 exact."""
ROTATE_TAG = "rotate"
"""Stream metadata key older muxers use for the clockwise display rotation."""
ISO_BMFF_BRAND = b"ftyp"
ISO_BMFF_BRAND_OFFSET = 4
"""MP4/MOV files start with an `ftyp` box whose type sits at byte 4."""

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What `probe` learns about a video. Width and height are the displayed size."""

    path: Path
    container: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    rotation: int
    """Clockwise degrees (0, 90, 180, 270) the decoded picture is turned for display."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: 0-based decode index, presentation time, RGB uint8 (H, W, 3)."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass(frozen=True, slots=True)
class _Scan:
    """A demux pass over the video stream: its info and where each frame sits in time."""

    info: VideoInfo
    stream_index: int
    frame_pts: tuple[int, ...] | None
    """Sorted pts of all frames (position = frame index); None when some pts is missing."""
    keyframes: tuple[tuple[int, int], ...]
    """(pts, seek timestamp) of each keyframe packet, in pts order."""
    time_base: Fraction | None
    start_pts: int
    """The first frame's pts: frame times count from it."""


def frame_rate(fps: float) -> Fraction:
    """`fps` as the fraction a stream stores (NTSC rates such as 30000/1001 exact)."""
    return Fraction(fps).limit_denominator(MAX_RATE_DENOMINATOR)


def even_size(width: int, height: int) -> tuple[int, int]:
    """The size a width x height picture is encoded at: yuv420p needs even sides."""
    return width + width % 2, height + height % 2


def encoder_frame(image: np.ndarray, pts: int) -> av.VideoFrame:
    """An RGB uint8 (H, W, 3) picture as the encoder's frame `pts`, an odd side padded to
    even_size by repeating its last row or column."""
    height, width = image.shape[:2]
    if width % 2 or height % 2:
        image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=RGB_FORMAT)
    frame.pts = pts
    return frame


def rotate_image(image: np.ndarray, rotation: int) -> np.ndarray:
    """The image turned clockwise by `rotation` degrees (a multiple of 90)."""
    quarter_turns = (rotation // RIGHT_ANGLE) % (FULL_TURN // RIGHT_ANGLE)
    if quarter_turns == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-quarter_turns))


def normalize_rotation(degrees: float) -> int:
    """A rotation in degrees (either sign) as the nearest of 0, 90, 180, 270."""
    return int(round(degrees / RIGHT_ANGLE) * RIGHT_ANGLE) % FULL_TURN


def probe(path: PathLike) -> VideoInfo:
    """Size, rate, exact frame count, duration and rotation of a video."""
    return _scan(Path(path)).info


def read_video(path: PathLike, start: int = 0) -> VideoReader:
    """A reader yielding the video's frames from index `start` on."""
    return VideoReader(path, start=start)


class VideoReader:
    """Iterate a video's frames (from index `start`) as `Frame`s; a context manager.

    `len()` is the video's total frame count, whatever `start` is. Each iteration
    decodes afresh, with FFmpeg's frame and slice threading (`threads=None`: one per core).
    """

    def __init__(self, path: PathLike, start: int = 0, threads: int | None = None) -> None:
        self.path = Path(path)
        self._scan = _scan(self.path)
        self.info: VideoInfo = self._scan.info
        if not 0 <= start < self.info.frame_count:
            raise VideoError(f"start frame {start} is outside {self.path.name}'s frames 0..{self.info.frame_count - 1}")
        self.start = start
        self.threads = threads
        self._open: set[InputContainer] = set()

    def __len__(self) -> int:
        return self.info.frame_count

    def __iter__(self) -> Iterator[Frame]:
        last = self.start - 1
        try:
            for frame in self._decode_frames():
                last = frame.index
                yield frame
        except av.FFmpegError as e:
            raise VideoError(
                f"cannot decode frame {last + 1} of {self.path}: truncated or corrupt ({_reason(e)})"
            ) from None

    def close(self) -> None:
        """Stop any iteration in progress and release the file."""
        for container in list(self._open):
            container.close()
        self._open.clear()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _decode_frames(self) -> Iterator[Frame]:
        if self.start > 0:
            with self._opened() as (container, stream):
                frames = self._frames_after_seek(container, stream)
                if frames is not None:
                    yield from frames
                    return
        with self._opened() as (container, stream):
            yield from self._numbered(_decode(container, stream), 0)

    def _frames_after_seek(self, container: InputContainer, stream: VideoStream) -> Iterator[Frame] | None:
        """Frames from the start on, decoded from the keyframe before it; None if that fails.

        It fails where frames lack timestamps or the seek lands past the start frame.
        """
        timeline = self._scan.frame_pts
        if timeline is None:
            return None
        at = bisect.bisect_right([pts for pts, _ in self._scan.keyframes], timeline[self.start])
        if at == 0:
            return None
        try:
            container.seek(self._scan.keyframes[at - 1][1], stream=stream, backward=True)
        except av.FFmpegError:
            return None
        frames = _decode(container, stream)
        first = next(frames, None)
        index = None if first is None else self._index_of(first.pts)
        if index is None or index > self.start:
            frames.close()
            return None
        return self._numbered(itertools.chain([first], frames), index)

    @contextmanager
    def _opened(self) -> Iterator[tuple[InputContainer, VideoStream]]:
        container = _open(self.path)
        self._open.add(container)
        try:
            stream = container.streams[self._scan.stream_index]
            stream.codec_context.thread_type = "AUTO"
            stream.codec_context.thread_count = self.threads or 0
            yield container, stream
        finally:
            self._open.discard(container)
            container.close()

    def _index_of(self, pts: int | None) -> int | None:
        """A frame's index from its pts, by its place among all the frames' pts."""
        timeline = self._scan.frame_pts
        if pts is None or timeline is None:
            return None
        at = bisect.bisect_left(timeline, pts)
        return at if at < len(timeline) and timeline[at] == pts else None

    def _numbered(self, frames: Iterator[av.VideoFrame], first_index: int) -> Iterator[Frame]:
        for index, frame in enumerate(frames, first_index):
            if index >= self.start:
                image = rotate_image(frame.to_ndarray(format=RGB_FORMAT), self.info.rotation)
                yield Frame(index=index, time_s=self._time_s(index, frame.pts), image=image)

    def _time_s(self, index: int, pts: int | None) -> float:
        """Seconds since the first frame, from the index-th smallest pts (else the frame's).

        The index-th smallest pts is the frame's presentation time even where a decoder
        passes on decode-order timestamps (H.264 with B-frames in AVI).
        """
        if self._scan.frame_pts is not None:
            pts = self._scan.frame_pts[index]
        if pts is None or self._scan.time_base is None:
            return index / self.info.fps
        return float((pts - self._scan.start_pts) * self._scan.time_base)


class VideoWriter:
    """Write RGB uint8 frames to an H.264 video (MP4 by file suffix); a context manager.

    H.264 in yuv420p needs even sizes: an odd width or height is padded by one pixel
    that repeats the last column or row, so the file is up to 1 px wider/taller.
    """

    def __init__(self, path: PathLike, width: int, height: int, fps: float, crf: int = 23) -> None:
        if width < 1 or height < 1:
            raise VideoError(f"video size {width}x{height} must be at least 1x1")
        if not (math.isfinite(fps) and fps > 0):
            raise VideoError(f"frame rate {fps} must be a positive number")
        if not 0 <= crf <= MAX_CRF:
            raise VideoError(f"crf {crf} must be between 0 and {MAX_CRF}")
        self.path = Path(path)
        self.width, self.height = width, height
        self._frames = 0
        self._closed = False
        if not self.path.parent.is_dir():
            raise VideoError(f"cannot write video {self.path}: its folder does not exist")
        codec = _encoder()
        options = {"crf": str(crf), "preset": X264_PRESET} if codec == "libx264" else {}
        try:
            self._container = av.open(str(self.path), mode="w")
        except av.FFmpegError as e:
            raise VideoError(f"cannot write video {self.path}: {_reason(e)}") from None
        except ValueError:
            raise VideoError(
                f"cannot write video {self.path}: no container format for its suffix {self.path.suffix!r} (use .mp4)"
            ) from None
        try:
            self._stream = self._container.add_stream(codec, rate=frame_rate(fps), options=options)
            self._stream.width, self._stream.height = even_size(width, height)
            self._stream.pix_fmt = PIXEL_FORMAT
        except av.FFmpegError as e:
            raise VideoError(f"cannot write video {self.path}: {_reason(e)}") from None

    def write(self, image: np.ndarray) -> None:
        """Append one RGB uint8 frame of the writer's (height, width, 3)."""
        if self._closed:
            raise VideoError(f"video {self.path} is already closed")
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise VideoError(
                f"frame of shape {image.shape} and type {image.dtype} does not match the "
                f"video's {self.height}x{self.width}x3 uint8"
            )
        self._mux(encoder_frame(image, self._frames))
        self._frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._mux(None)
        finally:
            self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        elif not self._closed:
            self._closed = True
            self._container.close()

    def _mux(self, frame: av.VideoFrame | None) -> None:
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.FFmpegError as e:
            raise VideoError(f"cannot encode video {self.path}: {_reason(e)}") from None


def _encoder() -> str:
    for name in ENCODERS:
        try:
            av.Codec(name, "w")
        except av.FFmpegError:
            continue
        return name
    raise VideoError(f"this PyAV build has none of the encoders {', '.join(ENCODERS)}")


def _decode(container: InputContainer, stream: VideoStream) -> Iterator[av.VideoFrame]:
    for packet in container.demux(stream):
        yield from packet.decode()


def _reason(error: av.FFmpegError) -> str:
    return error.strerror or str(error)


def _open(path: Path) -> InputContainer:
    if not path.exists():
        raise VideoError(f"video {path} does not exist")
    if not path.is_file():
        raise VideoError(f"video {path} is not a file")
    try:
        return av.open(str(path))
    except av.FFmpegError as e:
        raise VideoError(_unreadable(path, e)) from None


def _unreadable(path: Path, error: av.FFmpegError) -> str:
    if isinstance(error, av.error.InvalidDataError):
        with path.open("rb") as f:
            head = f.read(ISO_BMFF_BRAND_OFFSET + len(ISO_BMFF_BRAND))
        if head[ISO_BMFF_BRAND_OFFSET:] == ISO_BMFF_BRAND:
            return f"video {path} is truncated or corrupt (its MP4 index is missing)"
        return f"{path} is not a video file (or is truncated or corrupt)"
    return f"cannot read video {path}: {_reason(error)}"


def _scan(path: Path) -> _Scan:
    with _open(path) as container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise VideoError(f"{path} has no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        try:
            return _scan_stream(path, container, stream)
        except av.FFmpegError as e:
            raise VideoError(f"video {path} is truncated or corrupt ({_reason(e)})") from None


def _scan_stream(path: Path, container: InputContainer, stream: VideoStream) -> _Scan:
    pts: list[int | None] = []
    keyframes: list[tuple[int, int]] = []
    display_rotation: int | None = None
    last_corrupt = False
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_discard:
            continue
        if display_rotation is None:
            display_rotation = _display_rotation(packet.decode())
        pts.append(packet.pts)
        last_corrupt = packet.is_corrupt
        if packet.is_keyframe and packet.pts is not None:
            seek_ts = packet.pts if packet.dts is None else min(packet.pts, packet.dts)
            keyframes.append((packet.pts, seek_ts))
    if not pts:
        raise VideoError(f"video {path} has no frames")
    if display_rotation is None:
        display_rotation = _display_rotation(stream.decode(None))
    if last_corrupt:
        raise VideoError(f"video {path} is truncated or corrupt (its last frame is cut short)")

    frame_count = len(pts)
    rate = stream.average_rate or stream.guessed_rate
    duration_s = _duration(container, stream)
    if rate:
        fps = float(rate)
    elif duration_s:
        fps = frame_count / duration_s
    else:
        raise VideoError(f"video {path} has no frame rate")
    rotation = _rotation(stream, display_rotation)
    width, height = stream.codec_context.width, stream.codec_context.height
    if rotation % (2 * RIGHT_ANGLE):
        width, height = height, width
    info = VideoInfo(
        path=path,
        container=container.format.name,
        codec=stream.codec_context.name,
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        duration_s=duration_s or frame_count / fps,
        rotation=rotation,
    )
    timeline = None if None in pts else tuple(sorted(p for p in pts if p is not None))
    start_pts = timeline[0] if timeline else stream.start_time or 0
    return _Scan(info, stream.index, timeline, tuple(sorted(keyframes)), stream.time_base, start_pts)


def _display_rotation(frames: Iterable[av.VideoFrame]) -> int | None:
    """Clockwise rotation from the first frame's display matrix; None before any frame."""
    for frame in frames:
        if SideDataType.DISPLAYMATRIX not in frame.side_data:
            return 0
        # PyAV reports the matrix's counter-clockwise angle.
        return normalize_rotation(-frame.rotation)
    return None


def _rotation(stream: VideoStream, display_rotation: int | None) -> int:
    if display_rotation:
        return display_rotation
    tag = stream.metadata.get(ROTATE_TAG)
    try:
        return normalize_rotation(float(tag)) if tag is not None else 0
    except ValueError:
        return 0


def _duration(container: InputContainer, stream: VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None
