"""Wide views (trial `wide-views`): a share of the search views cut as the tracker cuts its crop
after losing the target, 1.5 to 3 times wider, so the target is that much smaller in the crop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ibfp_cli.boxes import Box
from ibfp_cli.config import TrackerConfig
from ibfp_cli.train.augment import NO_AUGMENT, sample_view

IMAGE = np.zeros((400, 400, 3), np.uint8)
BOX = Box(180, 170, 40, 60)
SIZE, AREA = 128, TrackerConfig().search_area_scale


def _sizes(probability: float, draws: int = 400) -> np.ndarray:
    """The target's size in each view, as a share of its size in a plain view."""
    aug = dataclasses.replace(NO_AUGMENT, wide_probability=probability)
    rng = np.random.default_rng(4)
    plain = sample_view(IMAGE, BOX, rng, AREA, SIZE, NO_AUGMENT)[1]
    return np.array([sample_view(IMAGE, BOX, rng, AREA, SIZE, aug)[1].w / plain.w for _ in range(draws)])


def test_every_wide_view_shows_the_target_1_5_to_3_times_smaller_and_still_whole():
    sizes = _sizes(1.0)
    low, high = NO_AUGMENT.wide_growth
    assert sizes.min() >= 1 / high - 1e-6 and sizes.max() <= 1 / low + 1e-6
    assert np.quantile(sizes, 0.1) < 0.45 and np.quantile(sizes, 0.9) > 0.55  # spread over the range
    tracker = TrackerConfig()
    assert NO_AUGMENT.wide_growth == (tracker.lost_search_growth, tracker.lost_search_max)


def test_the_shift_grows_with_the_view_as_a_lost_target_moves_further():
    aug = dataclasses.replace(NO_AUGMENT, shift=0.6, wide_probability=1.0)
    rng = np.random.default_rng(2)
    offsets = []  # in target sizes
    for _ in range(300):
        _, b = sample_view(IMAGE, BOX, rng, AREA, SIZE, aug)
        offsets.append(abs(b.cx - SIZE / 2) / b.w)
    assert max(offsets) <= 0.6 * NO_AUGMENT.wide_growth[1] + 1e-6
    assert max(offsets) > 1.2  # beyond any plain view's 0.6


@pytest.mark.parametrize("probability", [0.0, 0.25])
def test_the_share_of_wide_views_is_the_configured_one(probability):
    wide = (_sizes(probability) < 0.99).mean()
    assert wide == pytest.approx(probability, abs=0.06)
