"""Shared fixtures: a small generated video and the optional real data folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ibfp_cli.batch.runner import run_batch
from ibfp_cli.formats import read_annotations
from ibfp_cli.media.synthetic import SyntheticSpec, write_synthetic_video

REPO_ROOT = Path(__file__).resolve().parents[1]
SOT_DIR = REPO_ROOT.parent / "shared" / "data" / "sot"
"""Real single-object tracking clips (read-only), present on development machines only."""

SHARED_MODELS = REPO_ROOT.parent / "shared" / "models"
"""NanoTrack's and VitTrack's ONNX files (read-only), present on development machines and in CI."""
needs_nano = pytest.mark.skipif(
    not all((SHARED_MODELS / f).is_file() for f in ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx")),
    reason="no NanoTrack ONNX files in ../shared/models",
)

SMALL_SPEC = SyntheticSpec(width=160, height=120, frames=40, object_size=(32, 24), seed=7)
"""The clip behind `small_video`; render it again with `render_synthetic` to get its frames."""


BATCH_VIDEOS = ("v1.mp4", "v2.mp4", "v3.mp4", "v4.mp4")
"""The four generated clips of `batch_videos` (SMALL_SPEC's size and length, seeds 1..4)."""


def sot_dir() -> Path | None:
    """The real SOT data folder, or None where it is absent."""
    return SOT_DIR if SOT_DIR.is_dir() else None


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported ONNX graphs go to a folder of this test session, not the user's cache
    (the CLI's subprocesses inherit the setting)."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("onnx_cache")
        patch.setenv("IBFP_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 160x120, 40-frame synthetic H.264 video and its (40, 4) xywh ground-truth boxes."""
    path = tmp_path_factory.mktemp("small_video") / "small.mp4"
    return path, write_synthetic_video(path, SMALL_SPEC)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real SOT data folder; skips the test where it is absent."""
    folder = sot_dir()
    if folder is None:
        pytest.skip(f"real data folder {SOT_DIR} is absent")
    return folder


@pytest.fixture(scope="session")
def batch_videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder with BATCH_VIDEOS (four different 160x120, 40-frame clips) and a seeds file
    with each clip's true box on frame 0."""
    folder = tmp_path_factory.mktemp("batch_videos")
    videos = folder / "videos"
    videos.mkdir()
    rows = ["video,frame,x,y,w,h"]
    for seed, name in enumerate(BATCH_VIDEOS, start=1):
        truth = write_synthetic_video(videos / name, replace(SMALL_SPEC, seed=seed))
        rows.append(f"{name},0,{','.join(f'{v:g}' for v in truth[0])}")
    seeds = folder / "seeds.csv"
    seeds.write_text("\n".join(rows) + "\n")
    return videos, seeds


@pytest.fixture(scope="session")
def batch_reference(batch_videos, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """IBFP's boxes for each of BATCH_VIDEOS from a plain batch (one video after another, on
    the CPU, in this process): what parallel and cluster runs must reproduce."""
    import torch

    videos, seeds = batch_videos
    out = tmp_path_factory.mktemp("batch_reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker runs; OpenMP threads crawl on a CPU others keep busy
    try:
        results = run_batch(videos, seeds, out, tracker="ibfp", device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert [r.status for r in results] == ["done"] * len(BATCH_VIDEOS)
    return batch_boxes(out)


def with_corrupt_video(batch_videos: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A folder with the batch videos plus bad.mp4 (a truncated copy), and a seeds file that
    seeds bad.mp4 last."""
    videos, seeds = batch_videos
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in BATCH_VIDEOS:
        (folder / name).symlink_to(videos / name)
    (folder / "bad.mp4").write_bytes((videos / BATCH_VIDEOS[0]).read_bytes()[:3000])
    more = tmp_path / "seeds.csv"
    more.write_text(seeds.read_text() + "bad.mp4,0,10,10,20,20\n")
    return folder, more


def batch_boxes(out_dir: Path) -> dict[str, np.ndarray]:
    """Each CSV output's boxes as an (N, 4) array, keyed by video stem."""
    return {
        path.stem: np.array([r.box.xywh() for r in read_annotations(path).records])
        for path in sorted(out_dir.glob("v*.csv"))
    }


def write_sequence(folder: Path, name: str, spec: SyntheticSpec) -> np.ndarray:
    """A generated clip in the project layout: `<name>.mp4` and `<name>.gt.csv` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = write_synthetic_video(folder / f"{name}.mp4", spec)
    rows = ["frame,x,y,w,h"] + [f"{i},{','.join(f'{v:g}' for v in b)}" for i, b in enumerate(truth)]
    (folder / f"{name}.gt.csv").write_text("\n".join(rows) + "\n")
    return truth
