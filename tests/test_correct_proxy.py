"""`ibfp correct`'s seek proxy: built in the background, frames at their exact index, used for
the page's JPEGs, never for `image`, and its temporary file deleted."""

from __future__ import annotations

import errno
import shutil
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from ibfp_cli.correct import proxy as proxy_module
from ibfp_cli.correct.frames import FrameServer, FrameSettings, ProxyState
from ibfp_cli.correct.proxy import SeekProxy
from ibfp_cli.correct.sample import write_two_object_clip
from ibfp_cli.media.video import read_video

WIDTH, HEIGHT, FRAMES = 160, 120, 48
NOISE = 6.0
"""Pixel noise of the clip: each frame's own, so neighbouring frames differ by about 5 grey
levels even where nothing moves, while the proxy (crf 20) stays within about 2.6 of its frame."""
SAME_FRAME_GREY = 3.0
"""Mean absolute difference a proxy frame may have from the original frame at its index ..."""
NEIGHBOUR_SHARE = 0.5
"""... and at most this share of its difference from the frames next to it."""
JPEG_GREY, JPEG_NEIGHBOUR_SHARE = 5.0, 0.8
"""The same for a proxy frame sent as JPEG: quality 80 adds its own error (about 4.3 levels)."""
DENSE_GOP = 4
BUILD_TIMEOUT_S = 30
HELD_S = 0.3
"""How long a held build is watched for not finishing."""
JUMPS = [30, 31, 8, 7, 47, 0, 16, 15, 23, 40, 41, 2]
"""Frame orders that jump back and forth across the proxy's keyframes and step within a GOP."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 160x120 clip of 48 frames with one keyframe (x264's default interval is 250)."""
    video = tmp_path_factory.mktemp("proxy") / "far_keys.mp4"
    write_two_object_clip(video, WIDTH, HEIGHT, FRAMES, noise=NOISE)
    return video


@pytest.fixture(scope="module")
def originals(clip: Path) -> list[np.ndarray]:
    return [frame.image for frame in read_video(clip)]


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp dir for this test, so the proxy's file can be watched."""
    folder = tmp_path / "system_temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def proxy_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{proxy_module.FILE_PREFIX}*"))


def grey_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def assert_is_frame(image: np.ndarray, originals: list[np.ndarray], index: int, limit: float, share: float) -> None:
    """`image` is close to frame `index` and clearly further from its neighbours."""
    same = grey_difference(image, originals[index])
    neighbours = [grey_difference(image, originals[i]) for i in (index - 1, index + 1) if 0 <= i < len(originals)]
    assert same < limit, (index, same)
    assert same < share * min(neighbours), (index, same, neighbours)


@pytest.mark.parametrize("size", [(WIDTH, HEIGHT), (WIDTH - 1, HEIGHT - 1)], ids=["even", "odd"])
def test_proxy_frames_are_the_originals_at_their_index(originals, size: tuple[int, int], temp_dir: Path) -> None:
    width, height = size
    frames = [image[:height, :width] for image in originals]
    settings = FrameSettings()
    proxy = SeekProxy(width, height, 30.0, settings.proxy_gop, settings.proxy_crf, settings.proxy_preset)
    for image in frames:
        proxy.append(image)
    proxy.finish()
    assert proxy.frame_count == len(frames)
    assert not proxy.covers(len(frames))
    for index in JUMPS:
        image = proxy.image(index)
        assert image is not None and image.shape == (height, width, 3)
        assert_is_frame(image, frames, index, SAME_FRAME_GREY, NEIGHBOUR_SHARE)
    assert proxy.image(len(frames)) is None
    proxy.close()
    assert proxy_files(temp_dir) == []


def test_jumps_are_served_from_the_proxy_once_built(clip: Path, originals, temp_dir: Path) -> None:
    frames = FrameServer(clip, FrameSettings(fill=False))
    assert frames.keyframes == (0,)
    frames.start()
    assert frames.wait_proxy(BUILD_TIMEOUT_S)
    stats = frames.stats()
    assert stats.proxy is ProxyState.BUILT and stats.proxy_frames == frames.frame_count == len(originals)
    assert stats.proxy_bytes > 0
    assert len(proxy_files(temp_dir)) == 1  # in the system temp dir, not beside the video
    for served, index in enumerate(JUMPS, 1):
        jpeg = frames.jpeg(index)
        image = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert_is_frame(image, originals, index, JPEG_GREY, JPEG_NEIGHBOUR_SHARE)
        assert frames.stats().from_proxy == served
    assert frames.stats().from_original == 0
    frames.jpeg(JUMPS[0])
    assert frames.stats().from_cache == 1
    assert np.array_equal(frames.image(JUMPS[2]), originals[JUMPS[2]])  # exact: from the original
    assert frames.stats().from_original == 1
    frames.close()
    assert proxy_files(temp_dir) == []


def test_pause_holds_the_build_and_close_stops_it(clip: Path, temp_dir: Path) -> None:
    with FrameServer(clip, FrameSettings(fill=False)) as frames:
        frames.pause()
        frames.start()
        assert not frames.wait_proxy(HELD_S)
        assert frames.stats().proxy is ProxyState.WAITING and frames.stats().proxy_frames == 0
        frames.jpeg(5)
        assert frames.stats().from_original == 1  # no proxy: the original serves
        frames.resume()
        assert frames.wait_proxy(BUILD_TIMEOUT_S)
    with FrameServer(clip, FrameSettings(fill=False)) as frames:
        frames.pause()
        frames.start()
    assert frames.stats().proxy is ProxyState.STOPPED
    assert proxy_files(temp_dir) == []


def test_no_proxy_where_keyframes_are_already_dense(originals, tmp_path: Path, temp_dir: Path) -> None:
    video = tmp_path / "dense.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"g": str(DENSE_GOP)})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for image in originals:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    with FrameServer(video, FrameSettings(fill=False)) as frames:
        assert len(frames.keyframes) == FRAMES // DENSE_GOP
        frames.start()
        assert not frames.wait_proxy(0)
        assert frames.stats().proxy is ProxyState.SKIPPED
    assert proxy_files(temp_dir) == []


def test_no_proxy_where_the_temp_folder_lacks_room(clip: Path, temp_dir: Path) -> None:
    room = shutil.disk_usage(temp_dir).free
    settings = FrameSettings(fill=False, proxy_space=2 * room / clip.stat().st_size)
    with FrameServer(clip, settings) as frames:
        frames.start()
        assert not frames.wait_proxy(0)
        assert frames.stats().proxy is ProxyState.SKIPPED
    assert proxy_files(temp_dir) == []


def test_no_proxy_when_the_cache_holds_every_frame(clip: Path, temp_dir: Path) -> None:
    with FrameServer(clip) as frames:
        frames.start()
        assert not frames.wait_proxy(BUILD_TIMEOUT_S)
        assert len(frames.cache) == FRAMES
        assert frames.stats().proxy is ProxyState.SKIPPED
    assert proxy_files(temp_dir) == []


def test_a_failed_build_deletes_its_file_and_frames_come_from_the_original(
    clip: Path, temp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self: SeekProxy) -> None:
        assert proxy_files(temp_dir) == [self.path]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(SeekProxy, "finish", disk_full)
    with FrameServer(clip, FrameSettings(fill=False)) as frames:
        frames.start()
        assert not frames.wait_proxy(BUILD_TIMEOUT_S)
        assert frames.stats().proxy is ProxyState.FAILED
        assert proxy_files(temp_dir) == []
        frames.jpeg(9)
        assert frames.stats().from_original == 1 and frames.stats().from_proxy == 0
