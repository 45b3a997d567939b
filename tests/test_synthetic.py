"""Generated clips: boxes inside the frame and exactly on the drawn object, determinism, options."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SMALL_SPEC

from ibfp_cli.errors import IBFPError
from ibfp_cli.media.synthetic import (
    OCCLUDER_RGB,
    SyntheticSpec,
    render_synthetic,
    synthetic_objects,
    synthetic_sequence,
)

CLEAN = SyntheticSpec(width=160, height=120, frames=40, object_size=(32, 24), noise=0.0, seed=3)


def _outside(box: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.ones(shape[:2], bool)
    x, y, w, h = box.astype(int)
    mask[y : y + h, x : x + w] = False
    return mask


@pytest.mark.parametrize(
    "spec",
    [
        CLEAN,
        dataclasses.replace(CLEAN, speed=15.0, scale_amplitude=0.5, frames=60),
        dataclasses.replace(CLEAN, width=97, height=63, object_size=(40, 30), distractors=2),
    ],
)
def test_boxes_stay_inside_the_frame(spec: SyntheticSpec) -> None:
    frames, boxes = render_synthetic(spec)
    assert frames.shape == (spec.frames, spec.height, spec.width, 3)
    assert frames.dtype == np.uint8
    assert boxes.shape == (spec.frames, 4)
    x, y, w, h = boxes.T
    assert (x >= 0).all() and (y >= 0).all()
    assert (x + w <= spec.width).all() and (y + h <= spec.height).all()
    assert tuple(boxes[0, 2:]) == spec.object_size


def test_box_is_exactly_the_drawn_object() -> None:
    frames, boxes = render_synthetic(CLEAN)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    for i in (0, 13, 27):
        j = int(np.argmax(np.hypot(*(centres - centres[i]).T)))  # the frame where it is farthest
        changed = (frames[i] != frames[j]).any(axis=2) & _outside(boxes[j], frames[i].shape)
        ys, xs = np.nonzero(changed)
        drawn = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
        assert drawn == tuple(boxes[i])
        x, y, w, h = boxes[i].astype(int)
        assert changed[y : y + h, x : x + w].mean() > 0.9  # the object differs from the background


def test_size_follows_the_scale_sinusoid() -> None:
    spec = dataclasses.replace(CLEAN, scale_amplitude=0.25)
    _, boxes = synthetic_sequence(spec)
    w0, h0 = spec.object_size
    quarter = spec.frames // 4  # sin peaks a quarter of the way through the clip
    assert tuple(boxes[quarter, 2:]) == (np.rint(w0 * 1.25), np.rint(h0 * 1.25))
    assert tuple(boxes[3 * quarter, 2:]) == (np.rint(w0 * 0.75), np.rint(h0 * 0.75))


@pytest.mark.parametrize("speed", [0.0, 2.0, 6.0])
def test_object_moves_at_the_given_speed(speed: float) -> None:
    spec = SyntheticSpec(width=320, height=240, frames=100, object_size=(40, 30), speed=speed)
    _, boxes = synthetic_sequence(spec)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    steps = np.hypot(*np.diff(centres, axis=0).T)
    # Integer boxes put each centre within half a pixel of the true path.
    assert steps.mean() == pytest.approx(speed, abs=0.2 if speed else 0.5)
    if speed == 0:
        assert np.ptp(centres, axis=0).max() <= 1.0


def test_same_seed_same_clip_other_seed_other_clip() -> None:
    frames, boxes = render_synthetic(SMALL_SPEC)
    again, again_boxes = render_synthetic(SMALL_SPEC)
    np.testing.assert_array_equal(frames, again)
    np.testing.assert_array_equal(boxes, again_boxes)
    other, other_boxes = render_synthetic(dataclasses.replace(SMALL_SPEC, seed=SMALL_SPEC.seed + 1))
    assert not np.array_equal(boxes, other_boxes)
    assert np.abs(frames.astype(int) - other.astype(int)).mean() > 10


def test_frames_are_generated_lazily_in_order() -> None:
    frames, boxes = synthetic_sequence(CLEAN)
    first = next(frames)
    rendered, rendered_boxes = render_synthetic(CLEAN)
    np.testing.assert_array_equal(first, rendered[0])
    np.testing.assert_array_equal(np.stack([first, *frames]), rendered)
    np.testing.assert_array_equal(boxes, rendered_boxes)


def test_noise_has_the_given_strength_and_changes_every_frame() -> None:
    clean, _ = render_synthetic(dataclasses.replace(CLEAN, frames=3))
    noisy, _ = render_synthetic(dataclasses.replace(CLEAN, frames=3, noise=10.0))
    unclipped = (clean > 50) & (clean < 205)
    diff = noisy.astype(int) - clean.astype(int)
    assert diff[unclipped].std() == pytest.approx(10.0, rel=0.05)
    assert not np.array_equal(diff[0], diff[1])


def test_distractors_appear_away_from_the_target() -> None:
    alone, boxes = render_synthetic(CLEAN)
    crowded, crowded_boxes = render_synthetic(dataclasses.replace(CLEAN, distractors=2))
    np.testing.assert_array_equal(boxes, crowded_boxes)
    w, h = CLEAN.object_size
    for i, box in enumerate(boxes):
        x, y, bw, bh = box.astype(int)
        target = (slice(y, y + bh), slice(x, x + bw))
        np.testing.assert_array_equal(crowded[i][target], alone[i][target])  # drawn on top
        outside = _outside(box, alone[i].shape)
        differs = (crowded[i] != alone[i]).any(axis=2) & outside
        assert differs.sum() > w * h / 2


def test_occluder_hides_the_target_only_during_the_occlusion() -> None:
    a, b = 10, 20
    visible, boxes = render_synthetic(CLEAN)
    occluded, occluded_boxes = render_synthetic(dataclasses.replace(CLEAN, occlusion=(a, b)))
    np.testing.assert_array_equal(boxes, occluded_boxes)
    np.testing.assert_array_equal(occluded[:a], visible[:a])
    np.testing.assert_array_equal(occluded[b:], visible[b:])
    for i in range(a, b):
        x, y, w, h = boxes[i].astype(int)
        assert (occluded[i, y : y + h, x : x + w] == OCCLUDER_RGB).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"object_size": (600, 60)}, "does not fit"),
        ({"object_size": (2, 60)}, "shrinks below"),
        ({"occlusion": (30, 10)}, "occlusion"),
        ({"frames": 0}, "at least one frame"),
        ({"fps": 0.0}, "frame rate"),
        ({"speed": -1.0}, "negative"),
    ],
)
def test_impossible_specs_are_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(IBFPError, match=message):
        SyntheticSpec(**changes)  # type: ignore[arg-type]


def test_small_video_fixture_matches_its_spec(small_video: tuple[Path, np.ndarray]) -> None:
    path, boxes = small_video
    assert path.is_file()
    np.testing.assert_array_equal(boxes, synthetic_sequence(SMALL_SPEC)[1])


def test_a_vga_clip_is_generated_in_well_under_a_few_seconds() -> None:
    began = time.perf_counter()
    frames, _ = synthetic_sequence(SyntheticSpec(distractors=2, occlusion=(100, 130)))
    assert sum(1 for _ in frames) == 300
    assert time.perf_counter() - began < 5.0


def test_lookalikes_wear_the_targets_pattern_a_few_hues_off_on_their_own_paths() -> None:
    spec = dataclasses.replace(CLEAN, width=320, height=240, distractors=2, frames=3, seed=5)
    _, plain = synthetic_objects(spec)
    frames, alike = synthetic_objects(dataclasses.replace(spec, lookalike=True))
    assert alike.shape == (3, 3, 4)
    assert np.array_equal(plain, alike)  # the same paths and sizes, only the pattern changes
    assert np.array_equal(alike[0], synthetic_sequence(spec)[1])  # the target comes first
    frame = cv2.cvtColor(next(frames), cv2.COLOR_RGB2HSV).astype(int)
    target, other = (alike[k, 0].astype(int) for k in (0, 1))
    assert target[2:].tolist() == other[2:].tolist()  # one size on every frame
    patch = [frame[y : y + h, x : x + w] for x, y, w, h in (target, other)]
    assert np.abs(patch[0][..., 2] - patch[1][..., 2]).mean() < 8  # the same brightness pattern
    assert np.abs(patch[0][..., 0] - patch[1][..., 0]).mean() > 2  # in other hues
