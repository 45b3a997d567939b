"""Pasted look-alikes (trial `distractors`): another object blended into a search view beside the
target, at about its size, never hiding most of it, with faded edges; the labels stay the target's."""

from __future__ import annotations

import numpy as np
import pytest

from ibfp_cli.boxes import Box
from ibfp_cli.train.augment import NO_AUGMENT, AugmentConfig, paste_distractor, sample_view
from ibfp_cli.train.data import ImageBatch, PairSampler, SamplingConfig, Source, image_batch, object_pixels

SIZE = 128
TARGET = Box(48, 48, 32, 32)
PATCH = np.full((40, 20, 3), 200, np.uint8)  # a tall bright object


def _pasted(seed: int, aug: AugmentConfig = NO_AUGMENT) -> np.ndarray:
    return paste_distractor(np.zeros((SIZE, SIZE, 3), np.uint8), TARGET, PATCH, np.random.default_rng(seed), aug)


@pytest.mark.parametrize("seed", range(20))
def test_the_paste_keeps_its_aspect_near_the_targets_area_and_most_of_the_target_visible(seed):
    out = _pasted(seed)
    ys, xs = np.nonzero(out[..., 0])
    assert len(ys), "nothing pasted on an empty view"
    w, h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert 1.6 < h / w < 2.4  # the patch's own shape (2:1), not the target's
    scale = np.exp(NO_AUGMENT.distractor_scale)
    assert TARGET.w * TARGET.h / scale**2 * 0.8 <= w * h <= TARGET.w * TARGET.h * scale**2 * 1.2
    x, y, x2, y2 = (int(v) for v in (TARGET.x, TARGET.y, TARGET.x2, TARGET.y2))
    target = out[y:y2, x:x2, 0]
    assert (target > 0).mean() <= NO_AUGMENT.distractor_cover + 0.01


def test_the_paste_is_solid_inside_and_fades_at_its_edges():
    out = _pasted(0).astype(int)[..., 0]
    ys, xs = np.nonzero(out)
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    assert out[cy, cx] == 200
    assert 0 < out[cy, xs.min()] < 100 and 0 < out[ys.min(), cx] < 100  # faded, not a hard seam


def test_nothing_is_pasted_where_every_place_would_hide_the_target():
    whole = Box(0, 0, SIZE, SIZE)
    crop = np.zeros((SIZE, SIZE, 3), np.uint8)
    assert not paste_distractor(crop, whole, PATCH, np.random.default_rng(0), NO_AUGMENT).any()


def test_a_search_view_with_a_distractor_keeps_the_target_box_and_colours_the_paste_with_the_view():
    image = np.zeros((200, 200, 3), np.uint8)
    box = Box(80, 80, 40, 40)
    image[80:120, 80:120] = 120
    colour = AugmentConfig(0.0, 0.0, 0.0, 0.5, 0.0, (0.0, 0.0), 0.0, 0.0)
    plain, b = sample_view(image, box, np.random.default_rng(1), 5.0, SIZE, colour)
    pasted, b2 = sample_view(image, box, np.random.default_rng(1), 5.0, SIZE, colour, PATCH)
    assert b == b2
    changed = np.any(pasted != plain, axis=2)
    assert changed.sum() > 50
    # the colour jitter applies to the pasted object too (after it): no pixel keeps the patch's 200s
    assert not np.all(pasted == 200, axis=2).any()


def test_object_pixels_are_the_items_box_clipped_to_its_image():
    frames = np.zeros((2, 50, 60, 3), np.uint8)
    frames[0, 10:30, 5:25] = 7
    source = Source("s", "sot", frames, np.float32([[5, 10, 20, 20], [55, 45, 20, 20]]), np.arange(2))
    assert object_pixels(source, 0).shape == (20, 20, 3) and (object_pixels(source, 0) == 7).all()
    assert object_pixels(source, 1).shape == (5, 5, 3)  # clipped at the right and bottom edges


def test_a_batch_with_distractors_has_more_than_its_target_in_the_search_views():
    frames = np.zeros((4, 120, 120, 3), np.uint8)
    frames[:, 40:80, 40:80] = 90
    boxes = np.tile(np.float32([40, 40, 40, 40]), (4, 1))
    sources = [Source(name, "sot", frames.copy(), boxes, np.arange(4), np.array(["person"] * 4)) for name in ("a", "b")]
    sources[1].frames[:, 40:80, 40:80] = 250  # the look-alike is brighter

    def batch(fraction: float) -> ImageBatch:
        sampler = PairSampler(sources, SamplingConfig(negative_fraction=0.0, distractor_fraction=fraction), seed=2)
        return image_batch(sampler, 8, 5.0, 96, NO_AUGMENT, NO_AUGMENT)

    plain, pasted = batch(0.0), batch(1.0)
    assert bool((plain.search_boxes == pasted.search_boxes).all())  # the labels stay the target's

    def both_objects(view) -> bool:
        return bool((view == 90).any() and (view == 250).any())

    assert not any(both_objects(v) for v in plain.search)
    assert all(both_objects(v) for v in pasted.search)  # each view: its own object and the other's
