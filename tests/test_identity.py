"""Objects tracked together keep their own identity by colour (issue 28): the signature, which
boxes change track, how sure a contested box is, and the tracker on a generated crossing; a
single object's remembered look-alikes (issue 28.3)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from ibfp_cli.boxes import Box
from ibfp_cli.evaluate.identities import confident, identity_counts
from ibfp_cli.media.synthetic import LOOKALIKE_CLIP, synthetic_objects
from ibfp_cli.model.ibfp import Prediction
from ibfp_cli.tracking.crop import CropWindow
from ibfp_cli.tracking.distractors import DistractorMemory
from ibfp_cli.tracking.identity import (
    HUE_BINS,
    SATURATION_BINS,
    Reassignment,
    certainty,
    colour_distance,
    colour_signature,
    reassign,
)
from ibfp_cli.tracking.tracker import IBFPTracker
from ibfp_cli.tracking.weights import shipped_weights


def _patterned(hue: int, seed: int = 0) -> np.ndarray:
    """(120, 160, 3) RGB frame: grey background, a 60x80 striped object of OpenCV hue `hue` at
    (50, 20), the same stripes whatever the hue, plus a little noise."""
    rng = np.random.default_rng(seed)
    hsv = np.zeros((120, 160, 3), np.uint8)
    hsv[..., 2] = 128  # grey: saturation 0
    stripes = np.where((np.arange(60) // 6) % 2 == 0, 230, 140).astype(np.uint8)
    hsv[20:100, 50:110, 0] = hue
    hsv[20:100, 50:110, 1] = 200
    hsv[20:100, 50:110, 2] = stripes[None, :]
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.int16)
    return np.clip(rgb + rng.integers(-6, 7, rgb.shape), 0, 255).astype(np.uint8)


OBJECT = Box(50, 20, 60, 80)


def test_a_signature_is_a_histogram_that_tells_hues_apart_not_noise() -> None:
    red = colour_signature(_patterned(0), OBJECT)
    assert red.shape == (HUE_BINS * SATURATION_BINS,)
    assert red.sum() == pytest.approx(1.0) and (red >= 0).all()
    again = colour_signature(_patterned(0, seed=1), Box(52, 19, 60, 80))  # new noise, a nudged box
    shifted = colour_signature(_patterned(30), OBJECT)  # the same stripes in another hue
    assert colour_distance(red, red) == pytest.approx(0.0, abs=1e-9)
    assert colour_distance(red, again) < 0.1
    assert colour_distance(red, shifted) > 0.8
    assert colour_distance(red, shifted) == pytest.approx(colour_distance(shifted, red))


def test_a_box_off_the_frame_has_the_uniform_signature() -> None:
    off = colour_signature(_patterned(0), Box(500, 500, 20, 20))
    assert off == pytest.approx(np.full(HUE_BINS * SATURATION_BINS, 1 / (HUE_BINS * SATURATION_BINS)))


def test_two_found_tracks_swap_boxes_only_when_colours_agree_better_by_the_margin() -> None:
    # [track, box]: each box matches the other track's signature
    crossed = np.array([[0.6, 0.1], [0.1, 0.6]])
    near = np.ones((2, 2), dtype=bool)
    assert reassign(crossed, [True, True], near, margin=0.1) == Reassignment(swaps=((0, 1),))
    assert reassign(crossed, [True, True], near, margin=1.0) == Reassignment()  # gain 1.0 is not more
    assert reassign(crossed, [True, True], np.eye(2, dtype=bool), margin=0.1) == Reassignment()  # out of reach
    assert reassign(crossed[::-1], [True, True], near, margin=0.1) == Reassignment()  # each holds its own


def test_a_box_goes_to_the_lost_object_it_matches_better_than_its_holder() -> None:
    distance = np.array([[0.7, 1.0], [0.2, 1.0]])  # box 0 matches lost track 1 better
    near = np.ones((2, 2), dtype=bool)
    assert reassign(distance, [True, False], near, margin=0.1) == Reassignment(handovers=((0, 1),))
    assert reassign(distance, [True, False], near, margin=0.6) == Reassignment()
    near[1, 0] = False  # the box lies outside the lost track's search window
    assert reassign(distance, [True, False], near, margin=0.1) == Reassignment()


def test_each_track_takes_part_in_one_change_at_most_the_largest_gain_first() -> None:
    distance = np.array([[0.5, 0.1, 0.3], [0.1, 0.5, 0.5], [0.1, 0.5, 0.5]])
    change = reassign(distance, [True, True, True], np.ones((3, 3), dtype=bool), margin=0.1)
    assert change == Reassignment(swaps=((0, 1),))  # gain 0.8 beats (0, 2)'s 0.6; 2 has no one left


def test_a_contested_box_is_as_sure_as_its_colours_are_its_own() -> None:
    assert certainty(0.3, [], doubt=0.5) == 1.0  # overlapping no one: not contested
    assert certainty(0.1, [0.7, 0.9], doubt=0.5) == 1.0  # its own colours by far
    assert certainty(0.2, [0.45], doubt=0.5) == pytest.approx(0.5)  # half the margin
    assert certainty(0.4, [0.3], doubt=0.5) == 0.0  # the rival's colours
    assert certainty(0.2, [0.9, 0.3], doubt=0.5) == pytest.approx(0.2)  # the closest rival counts


CROSSING = replace(LOOKALIKE_CLIP, distractors=1, seed=104)
"""Two look-alikes (one pattern, a shade apart in hue) whose paths cross: on it the tracker
that knows its neighbours but not their colours switches identities."""


def _counts(identity: bool) -> tuple[int, int, int]:
    frames, truth = synthetic_objects(CROSSING)
    frames = list(frames)
    trackers = [IBFPTracker(device="cpu") for _ in truth]
    for tracker, boxes in zip(trackers, truth):
        tracker.config = replace(tracker.config, use_identity=identity)
        tracker.init(frames[0], Box(*boxes[0]))
    boxes = np.empty((len(truth), len(frames), 4))
    scores, lost = np.ones((len(truth), len(frames))), np.zeros((len(truth), len(frames)), dtype=bool)
    boxes[:, 0] = truth[:, 0]
    for i, frame in enumerate(frames[1:], 1):
        for k, out in enumerate(IBFPTracker.update_many(trackers, frame)):
            boxes[k, i], scores[k, i], lost[k, i] = out.box.xywh(), out.score, out.lost
    counts = identity_counts(boxes, confident(scores, lost), truth)
    return counts.switches, counts.merged_frames, counts.wrong_frames


@pytest.mark.skipif(not shipped_weights(), reason="no weights shipped yet")
def test_colours_keep_crossing_lookalikes_on_their_own_objects() -> None:
    without = _counts(identity=False)
    switches, merged, wrong = _counts(identity=True)
    assert without[0] > 0  # the neighbours alone lose an identity here
    assert merged == 0
    assert switches < without[0] and wrong < without[2]


def test_a_rival_seen_on_enough_frames_is_damped_until_missed_for_long() -> None:
    memory = DistractorMemory(after=3, forget=2)
    rival = Box(100, 50, 40, 60)
    for moved in range(3):
        assert memory.active() == []
        memory.observe(Box(100 + 4 * moved, 50, 40, 60))
    assert memory.active() == [Box(108, 50, 40, 60)]  # followed as it moves, its last box
    memory.observe(Box(300, 50, 40, 60))  # another rival elsewhere: new, not yet active
    memory.observe(None)
    assert memory.active() == [Box(108, 50, 40, 60)]  # missed twice: still remembered
    memory.observe(None)
    assert memory.active() == []  # missed a third time: forgotten, the newer one too
    memory.observe(rival)
    memory.clear()
    assert memory.rivals == []


@pytest.mark.skipif(not shipped_weights(), reason="no weights shipped yet")
def test_the_rival_is_the_strongest_cell_outside_the_peaks_box() -> None:
    stride, size = 8, 36  # the stride-8 score map of a 288 px search crop
    tracker = IBFPTracker(device="cpu", backend="torch")
    tracker.box, tracker.bias = Box(100, 100, 40, 40), (0.0, 0.0)
    tracker.config = replace(tracker.config, use_online=False)
    window = CropWindow(144.0, 144.0, 288.0, 288)  # crop pixels = frame pixels
    centre = torch.zeros(1, 1, size, size)
    centre[0, 0, 15, 15] = 0.8  # the target, at its last box's centre
    centre[0, 0, 15, 16] = 0.7  # the target's own shoulder, inside its box: no rival
    centre[0, 0, 15, 25] = 0.5  # a look-alike 80 px to the right
    ltrb = torch.full((1, 4, size, size), 20.0)
    pred = Prediction(centre, ltrb, torch.zeros(1, 1, size // 2, size // 2), torch.zeros(1, 1, size // 2, size // 2))
    peak = tracker._peak(pred, window, rival=True)
    assert peak.box.cx == pytest.approx(15.5 * stride) and peak.confidence == pytest.approx(0.8)
    assert peak.rival.cx == pytest.approx(25.5 * stride) and peak.rival_score == pytest.approx(0.5)
    # damped as a remembered distractor, it is still reported (from the undamped map)
    damped = tracker._peak(pred, window, neighbours=[peak.rival], rival=True)
    assert damped.rival_score == pytest.approx(0.5)
    assert tracker._peak(pred, window).rival is None  # not asked for
