"""Video reading and writing: exact counts, round trips, seeking, VFR, rotation, errors."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import SMALL_SPEC

from ibfp_cli.errors import VideoError
from ibfp_cli.media.synthetic import SyntheticSpec, render_synthetic, write_synthetic_video
from ibfp_cli.media.video import VideoReader, VideoWriter, normalize_rotation, probe, read_video, rotate_image

MAX_MEAN_ABS_ERROR = 8.0
"""H.264 at the default crf keeps a clean synthetic frame within a few grey levels."""


def _clip(width: int, height: int, frames: int, seed: int = 0) -> np.ndarray:
    spec = SyntheticSpec(
        width=width, height=height, frames=frames, object_size=(width // 4, height // 4), noise=0.0, seed=seed
    )
    return render_synthetic(spec)[0]


def _write_pyav(
    path: Path,
    frames: np.ndarray,
    *,
    pts_ms: list[int] | None = None,
    gop: int | None = None,
    rotation_ccw: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Write frames with PyAV directly, for what VideoWriter does not offer."""
    height, width = frames.shape[1:3]
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation_ccw is not None:
            stream.set_display_rotation(rotation_ccw)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _write(path: Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    with VideoWriter(path, frames.shape[2], frames.shape[1], fps) as writer:
        for image in frames:
            writer.write(image)
    return path


@pytest.mark.parametrize(("width", "height", "count"), [(96, 64, 12), (97, 63, 17), (33, 18, 5)])
def test_decoded_frame_count_equals_frames_written(tmp_path: Path, width: int, height: int, count: int) -> None:
    path = _write(tmp_path / "clip.mp4", _clip(width, height, count))
    info = probe(path)
    frames = list(read_video(path))
    assert info.frame_count == count
    assert [f.index for f in frames] == list(range(count))
    assert (info.width, info.height) == (width + width % 2, height + height % 2)
    assert all(f.image.shape == (info.height, info.width, 3) for f in frames)


def test_small_video_metadata_and_times(small_video: tuple[Path, np.ndarray]) -> None:
    path, _ = small_video
    with VideoReader(path) as reader:
        times = [f.time_s for f in reader]
        assert len(reader) == SMALL_SPEC.frames
    info = reader.info
    assert (info.width, info.height) == (SMALL_SPEC.width, SMALL_SPEC.height)
    assert info.fps == pytest.approx(SMALL_SPEC.fps)
    assert info.duration_s == pytest.approx(SMALL_SPEC.frames / SMALL_SPEC.fps)
    assert (info.codec, info.rotation) == ("h264", 0)
    assert times == pytest.approx([i / SMALL_SPEC.fps for i in range(SMALL_SPEC.frames)])


def test_writer_round_trip_keeps_the_pixels(tmp_path: Path) -> None:
    frames = _clip(160, 120, 10)
    decoded = np.stack([f.image for f in read_video(_write(tmp_path / "clip.mp4", frames))])
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    error = np.abs(decoded.astype(np.int16) - frames.astype(np.int16)).mean()
    assert error < MAX_MEAN_ABS_ERROR


def test_odd_size_is_padded_by_repeating_the_edge(tmp_path: Path) -> None:
    image = np.zeros((17, 33, 3), np.uint8)
    image[:, -1] = (250, 20, 20)  # a red last column
    image[-1, :] = (20, 20, 250)  # a blue last row
    path = _write(tmp_path / "odd.mp4", np.stack([image] * 3))
    decoded = next(iter(read_video(path))).image
    assert decoded.shape == (18, 34, 3)
    # The added column and row repeat the last ones (a black pad would read near 0).
    new_column, last_column = decoded[:15, 33].astype(int), decoded[:15, 32].astype(int)
    new_row, last_row = decoded[17, :31].astype(int), decoded[16, :31].astype(int)
    assert np.abs(new_column - last_column).mean() < MAX_MEAN_ABS_ERROR
    assert np.abs(new_row - last_row).mean() < MAX_MEAN_ABS_ERROR
    assert new_column[:, 0].mean() > 150 and new_row[:, 2].mean() > 150


@pytest.mark.parametrize("suffix", ["mp4", "mkv", "ts"])
def test_start_yields_the_same_frames_as_a_full_decode(tmp_path: Path, suffix: str) -> None:
    path = _write_pyav(tmp_path / f"gop.{suffix}", _clip(96, 64, 30), gop=6)
    full = list(read_video(path))
    for start in (1, 6, 13, 29):
        tail = list(read_video(path, start=start))
        assert [f.index for f in tail] == list(range(start, 30))
        for want, got in zip(full[start:], tail, strict=True):
            assert got.time_s == want.time_s
            np.testing.assert_array_equal(got.image, want.image)


def test_start_decodes_from_the_beginning_when_the_seek_overshoots(tmp_path: Path) -> None:
    path = _write_pyav(tmp_path / "gop.mp4", _clip(96, 64, 20), gop=4)
    full = list(read_video(path))
    reader = VideoReader(path, start=5)
    timeline = reader._scan.frame_pts
    assert timeline is not None
    # Claim a keyframe at frame 5 that really seeks to frame 12.
    reader._scan = dataclasses.replace(reader._scan, keyframes=((timeline[5], timeline[12]),))
    tail = list(reader)
    assert [f.index for f in tail] == list(range(5, 20))
    for want, got in zip(full[5:], tail, strict=True):
        np.testing.assert_array_equal(got.image, want.image)


@pytest.mark.parametrize("suffix", ["h264", "mkv"])
def test_frame_count_needs_no_metadata(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"clip.{suffix}", _clip(64, 48, 11))
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # the container stores no count
    assert probe(path).frame_count == 11
    assert [f.index for f in read_video(path, start=4)] == list(range(4, 11))


def test_variable_frame_rate_count_and_times(tmp_path: Path) -> None:
    pts_ms = [0, 40, 50, 120, 400, 410, 420, 700, 1000, 1033]
    path = _write_pyav(tmp_path / "vfr.mp4", _clip(64, 48, len(pts_ms)), pts_ms=pts_ms)
    assert probe(path).frame_count == len(pts_ms)
    times = [f.time_s for f in read_video(path)]
    assert times == pytest.approx([t / 1000 for t in pts_ms], abs=1e-4)
    tail = list(read_video(path, start=4))
    assert [f.index for f in tail] == list(range(4, len(pts_ms)))
    assert [f.time_s for f in tail] == pytest.approx([t / 1000 for t in pts_ms[4:]], abs=1e-4)


@pytest.mark.parametrize(("ccw", "clockwise"), [(90, 270), (-90, 90), (180, 180)])
def test_display_rotation_is_applied(tmp_path: Path, ccw: int, clockwise: int) -> None:
    frames = _clip(64, 32, 3)
    plain = list(read_video(_write_pyav(tmp_path / "plain.mp4", frames)))
    path = _write_pyav(tmp_path / "rotated.mp4", frames, rotation_ccw=ccw)
    info = probe(path)
    assert info.rotation == clockwise
    assert (info.width, info.height) == ((32, 64) if clockwise != 180 else (64, 32))
    for want, got in zip(plain, read_video(path), strict=True):
        np.testing.assert_array_equal(got.image, np.rot90(want.image, k=-clockwise // 90))


def test_rotate_image_turns_clockwise() -> None:
    image = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)  # [[0 1 2] [3 4 5]]
    turned = rotate_image(image, 90)
    assert turned[..., 0].tolist() == [[3, 0], [4, 1], [5, 2]]
    assert rotate_image(image, 0) is image
    np.testing.assert_array_equal(rotate_image(image, 180), image[::-1, ::-1])
    np.testing.assert_array_equal(rotate_image(turned, 270), image)
    assert [normalize_rotation(d) for d in (-90, 89.6, 180, 360, -270)] == [270, 90, 180, 0, 90]


def _error_message(path: Path) -> str:
    with pytest.raises(VideoError) as caught:
        probe(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert "does not exist" in _error_message(tmp_path / "missing.mp4")


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    assert "not a file" in _error_message(tmp_path)


def test_text_file_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("these are not frames\n" * 20)
    assert "not a video file" in _error_message(path)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    rate = 8000
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        samples = (np.sin(np.arange(rate) / 10) * 1000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    assert "no video stream (streams: audio)" in _error_message(path)


def test_mp4_cut_in_half_is_truncated(small_video: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    data = small_video[0].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _error_message(path)


def test_faststart_mp4_cut_in_half_is_truncated(tmp_path: Path) -> None:
    whole = _write_pyav(tmp_path / "whole.mp4", _clip(96, 64, 20), options={"movflags": "faststart"})
    data = whole.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _error_message(path)


def test_start_outside_the_video(small_video: tuple[Path, np.ndarray]) -> None:
    with pytest.raises(VideoError, match=r"start frame 40 is outside .* 0\.\.39"):
        VideoReader(small_video[0], start=40)
    with pytest.raises(VideoError, match="start frame -1"):
        VideoReader(small_video[0], start=-1)


def test_writer_rejects_a_frame_of_the_wrong_shape(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "out.mp4", 32, 24, 25) as writer:
        writer.write(np.zeros((24, 32, 3), np.uint8))
        with pytest.raises(VideoError, match=r"\(24, 31, 3\).*24x32x3 uint8"):
            writer.write(np.zeros((24, 31, 3), np.uint8))
        with pytest.raises(VideoError, match="float32"):
            writer.write(np.zeros((24, 32, 3), np.float32))
    assert probe(tmp_path / "out.mp4").frame_count == 1


def test_writer_into_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="folder does not exist"):
        VideoWriter(tmp_path / "nowhere" / "out.mp4", 32, 24, 25)


def test_writer_with_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no container format for its suffix '.boxes'"):
        VideoWriter(tmp_path / "out.boxes", 32, 24, 25)


def test_probe_of_a_vga_synthetic_clip(tmp_path: Path) -> None:
    spec = SyntheticSpec()
    path = tmp_path / "demo.mp4"
    boxes = write_synthetic_video(path, spec)
    info = probe(path)
    assert (info.width, info.height, info.frame_count) == (640, 480, 300)
    assert info.fps == 30.0
    assert info.duration_s == pytest.approx(10.0)
    assert boxes.shape == (300, 4)
