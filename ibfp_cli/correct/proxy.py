"""The seek proxy: a video's frames re-encoded once as H.264 with a keyframe every few frames,
in a temporary file, so a random frame decodes from a keyframe a few frames before it rather
than from one up to a whole GOP (250 frames in x264's default) before it. Video editors keep
such proxies for scrubbing.

The file holds the encoder's packets back to back (H.264 Annex B, with the stream headers
repeated at each keyframe, so a decode can start at any keyframe); the packets' places and
the keyframes are indexed in memory. Frame i of the proxy is the i-th frame appended: x264
writes no B-frames here, so each packet is one frame, in order.
"""

from __future__ import annotations

import bisect
import tempfile
import threading
from pathlib import Path

import av
import numpy as np

from ..errors import VideoError
from ..media.video import PIXEL_FORMAT, RGB_FORMAT, encoder_frame, even_size, frame_rate

ENCODER = "libx264"
DECODER = "h264"
FILE_PREFIX = "ibfp-proxy-"
FILE_SUFFIX = ".h264"


class SeekProxy:
    """Frames appended in order by one thread, decoded back by index from any thread.

    A frame can be decoded once its packet is written (`covers`); the encoder holds a few
    frames back until `finish`. `close` deletes the file; call it once nothing appends.
    """

    def __init__(self, width: int, height: int, fps: float, gop: int, crf: int, preset: str) -> None:
        self.width, self.height = width, height
        self._file = tempfile.NamedTemporaryFile(prefix=FILE_PREFIX, suffix=FILE_SUFFIX)  # closed by close()
        self.path = Path(self._file.name)
        try:
            self._encoder = av.CodecContext.create(ENCODER, "w")
            self._encoder.width, self._encoder.height = even_size(width, height)
            self._encoder.pix_fmt = PIXEL_FORMAT
            rate = frame_rate(fps)
            self._encoder.framerate, self._encoder.time_base = rate, 1 / rate
            self._encoder.gop_size = gop
            self._encoder.max_b_frames = 0
            self._encoder.options = {"crf": str(crf), "preset": preset}
            self._decoder = av.CodecContext.create(DECODER, "r")
            self._decoder.thread_count = 1  # no frame threading: a packet in, its frame out
        except (av.FFmpegError, ValueError) as e:
            self._file.close()
            raise VideoError(f"cannot make a seek proxy with {ENCODER}: {e}") from None
        self._spans: list[tuple[int, int]] = []
        """(byte offset, size) of each frame's packet."""
        self._keyframes: list[int] = []
        self._appended = 0
        self._size = 0
        self._next = 0
        """The frame the decoder yields next."""
        self._lock = threading.Lock()  # the file's position and the decoder: one user at a time
        self._closed = False

    @property
    def frame_count(self) -> int:
        """Frames written and decodable."""
        return len(self._spans)

    @property
    def size_bytes(self) -> int:
        return self._size

    def covers(self, index: int) -> bool:
        return 0 <= index < len(self._spans)

    def append(self, image: np.ndarray) -> None:
        """Encode the next frame, RGB uint8 (height, width, 3)."""
        frame = encoder_frame(image, self._appended)
        self._appended += 1
        self._write(frame)

    def finish(self) -> None:
        """Write the frames the encoder still holds."""
        self._write(None)

    def image(self, index: int) -> np.ndarray | None:
        """Frame `index` as RGB uint8 (height, width, 3); None where the proxy does not cover it
        (yet) or is closed."""
        with self._lock:
            if self._closed or not self.covers(index):
                return None
            if not self._continues_to(index):
                self._decoder.flush_buffers()
                self._next = self._keyframes[bisect.bisect_right(self._keyframes, index) - 1]
            while True:
                frame = self._decode(self._next)
                self._next += 1
                if self._next > index:
                    return frame.to_ndarray(format=RGB_FORMAT)[: self.height, : self.width]

    def close(self) -> None:
        """Delete the file."""
        with self._lock:
            self._closed = True
            self._file.close()

    def _continues_to(self, index: int) -> bool:
        """Whether decoding on from the current position reaches `index` no later than a
        restart from the keyframe before it would."""
        start = self._keyframes[bisect.bisect_right(self._keyframes, index) - 1]
        return start <= self._next <= index

    def _write(self, frame: av.VideoFrame | None) -> None:
        try:
            packets = self._encoder.encode(frame)  # outside the lock: this is the slow part
        except av.FFmpegError as e:
            raise VideoError(f"cannot encode the seek proxy: {e.strerror or e}") from None
        with self._lock:
            for packet in packets:
                if packet.pts != len(self._spans):
                    raise VideoError(f"the seek proxy's encoder wrote frame {packet.pts} at {len(self._spans)}")
                data = bytes(packet)
                self._file.seek(self._size)
                self._file.write(data)
                self._file.flush()
                if packet.is_keyframe:
                    self._keyframes.append(len(self._spans))
                self._spans.append((self._size, len(data)))
                self._size += len(data)

    def _decode(self, index: int) -> av.VideoFrame:
        offset, size = self._spans[index]
        self._file.seek(offset)
        try:
            frames = self._decoder.decode(av.Packet(self._file.read(size)))
        except av.FFmpegError as e:
            raise VideoError(f"cannot decode frame {index} of the seek proxy: {e.strerror or e}") from None
        if len(frames) != 1:
            raise VideoError(f"the seek proxy's packet {index} decoded to {len(frames)} frames, not 1")
        return frames[0]
