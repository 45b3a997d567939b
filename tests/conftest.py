"""Shared fixtures: a small generated video and the optional real data folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ibfp_cli.synthetic import SyntheticSpec, write_synthetic_video

REPO_ROOT = Path(__file__).resolve().parents[1]
SOT_DIR = REPO_ROOT.parent / "shared" / "data" / "sot"
"""Real single-object tracking clips (read-only), present on development machines only."""

SMALL_SPEC = SyntheticSpec(width=160, height=120, frames=40, object_size=(32, 24), seed=7)
"""The clip behind `small_video`; render it again with `render_synthetic` to get its frames."""


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
