"""The weights shipped in weights/ load and track a generated clip (issue 5)."""

from __future__ import annotations

import numpy as np
import pytest

from ibfp_cli.boxes import Box, ious
from ibfp_cli.synthetic import SyntheticSpec, render_synthetic
from ibfp_cli.tracker import IBFPTracker
from ibfp_cli.weights import read_checkpoint, shipped_weights

SHIPPED = shipped_weights()
MAX_SHIPPED_BYTES = 40 * 10**6  # issue 5: at most 40 MB


@pytest.mark.skipif(not SHIPPED, reason="no weights shipped yet")
def test_shipped_weights_are_fp16_with_metadata():
    path = SHIPPED[-1]
    assert path.stat().st_size <= MAX_SHIPPED_BYTES
    data = read_checkpoint(path)
    floats = [v for v in data["state_dict"].values() if v.is_floating_point()]
    assert floats and all(str(v.dtype) == "torch.float16" for v in floats)
    assert {"data", "steps", "date", "train_config", "tracker"} <= set(data["meta"])


@pytest.mark.skipif(not SHIPPED, reason="no weights shipped yet")
def test_shipped_weights_track_a_generated_clip():
    frames, gt = render_synthetic(SyntheticSpec(width=320, height=240, frames=60, object_size=(48, 36), seed=5))
    tracker = IBFPTracker(device="cpu")
    tracker.init(frames[0], Box(*gt[0]))
    pred = np.array([tracker.update(f).box.xywh() for f in frames[1:]])
    assert ious(pred, gt[1:]).mean() > 0.6
