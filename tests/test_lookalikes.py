"""Look-alike negatives in training (issue 26.2): items know their category, and a share of the
negative pairs is drawn from the template's own category, never from its video or its photo."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import write_sequence

from ibfp_cli.media.synthetic import SyntheticSpec
from ibfp_cli.train.campaign import TRIALS
from ibfp_cli.train.data import PairSampler, SamplingConfig, Source
from ibfp_cli.train.prepare import category_of, load_crop_cache, prepare_crop_cache


@pytest.mark.parametrize(
    ("object_class", "category"),
    [("person (pedestrian)", "person"), ("Person", "person"), ("horse+rider", "horse"), ("plastic bag", "plastic bag")],
)
def test_object_classes_name_their_category(object_class, category):
    assert category_of(object_class) == category


def _source(name: str, kind: str, categories: list[str], photos: list[int] | None = None) -> Source:
    n = len(categories)
    return Source(
        name,
        kind,  # type: ignore[arg-type]
        np.zeros((n, 8, 8, 3), np.uint8),
        np.tile(np.float32([1, 1, 4, 4]), (n, 1)),
        np.array(photos if photos is not None else range(n)),
        np.array(categories),
    )


SOURCES = [
    _source("walk", "sot", ["person"] * 5),
    _source("street", "sot", ["car"] * 5),
    _source("crowd", "sot", ["person"] * 5),
    # photos 0 and 1 hold two people each, photo 2 one dog
    _source("det_set", "det", ["person", "person", "person", "person", "dog"], [0, 0, 1, 1, 2]),
    _source("syn000", "syn", [""] * 5),
]


def _negatives(cfg: SamplingConfig, draws: int = 2000) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    sampler = PairSampler(SOURCES, cfg, seed=1)
    pairs = [sampler.sample() for _ in range(draws)]
    return [(p.template, p.search) for p in pairs if not p.positive]


def test_lookalike_negatives_are_another_object_of_the_same_category():
    negatives = _negatives(SamplingConfig(negative_fraction=1.0, lookalike_fraction=1.0))
    same_category = 0
    for (s, i), (o, j) in negatives:
        template, search = SOURCES[s], SOURCES[o]
        if template.category(i) == search.category(j) and template.category(i):
            same_category += 1
            assert not (o == s and template.kind != "det"), "a look-alike from the template's own video"
            assert not (o == s and template.index[i] == template.index[j]), "a look-alike from the same photo"
        else:  # only where the category has no other object: the dog, the generated clip, a "car" alone
            assert template.category(i) in ("dog", "car", "")
    with_peers = sum(SOURCES[s].category(i) == "person" for (s, i), _ in negatives)
    assert same_category == with_peers > 0.3 * len(negatives)
    # people from the still images are look-alikes of people in videos, and the other way round
    assert any(SOURCES[s].kind == "sot" and SOURCES[o].kind == "det" for (s, _), (o, _) in negatives)
    assert any(SOURCES[s].kind == "det" and SOURCES[o].kind == "sot" for (s, _), (o, _) in negatives)


def test_without_lookalikes_every_negative_comes_from_another_source():
    negatives = _negatives(SamplingConfig(negative_fraction=1.0, lookalike_fraction=0.0))
    assert negatives and all(s != o for (s, _), (o, _) in negatives)


def test_half_lookalikes_mixes_both_kinds_of_negative():
    negatives = _negatives(SamplingConfig(negative_fraction=1.0, lookalike_fraction=0.5))
    people = [(t, q) for t, q in negatives if SOURCES[t[0]].category(t[1]) == "person"]
    lookalike = sum(SOURCES[q[0]].category(q[1]) == "person" for _, q in people) / len(people)
    assert 0.5 < lookalike < 0.85  # half drawn as look-alikes, plus people met by chance among the rest


def test_prepare_keeps_each_items_category_and_its_photo(tmp_path: Path):
    data = tmp_path / "data"
    write_sequence(data / "sot", "clip", SyntheticSpec(width=160, height=120, frames=6, seed=2))
    (data / "sot" / "sources.csv").write_text("name,object_class\nclip,person (pedestrian)\n")
    det = data / "det" / "set"
    (det / "images").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(det / "images" / name), np.full((100, 120, 3), 90, np.uint8))
    (det / "boxes.csv").write_text(
        "image,x,y,w,h,category\n"
        "images/a.jpg,10,10,30,40,person\nimages/a.jpg,60,20,30,40,Dog\nimages/b.jpg,20,20,40,30,person\n"
    )
    index = prepare_crop_cache(data, tmp_path / "crops")
    clip, stills = index[index.source == "clip"], index[index.source == "det_set"]
    assert set(clip.category) == {"person"} and len(clip) == 3  # every 2nd of 6 frames
    assert list(stills.category) == ["person", "dog", "person"]
    assert list(stills.frame) == [0, 0, 1]  # the photo each crop was cut from
    sources = {s.name: s for s in load_crop_cache(tmp_path / "crops")}
    assert [sources["det_set"].category(i) for i in range(3)] == ["person", "dog", "person"]
    assert sources["clip"].category(0) == "person"


def test_distractors_are_pasted_into_positive_pairs_only_from_the_same_category():
    sampler = PairSampler(SOURCES, SamplingConfig(negative_fraction=0.2, distractor_fraction=1.0), seed=3)
    pairs = [sampler.sample() for _ in range(2000)]
    people = [p for p in pairs if p.positive and SOURCES[p.template[0]].category(p.template[1]) == "person"]
    assert people and all(p.distractor is not None for p in people)
    for p in people:
        s, (o, j) = p.template[0], p.distractor
        assert SOURCES[o].category(j) == "person"
        assert not (o == s and SOURCES[s].kind != "det"), "a distractor from the target's own video"
    assert all(p.distractor is None for p in pairs if not p.positive)
    # the dog and the generated clip have no other object of their kind: nothing to paste
    assert all(p.distractor is None for p in pairs if SOURCES[p.template[0]].category(p.template[1]) in ("dog", ""))


def test_without_distractors_the_draws_are_those_of_the_sampler_before_them():
    def draws(cfg: SamplingConfig) -> list[tuple]:
        sampler = PairSampler(SOURCES, cfg, seed=5)
        return [(p.template, p.search, p.positive, p.distractor) for p in (sampler.sample() for _ in range(300))]

    plain = draws(SamplingConfig(lookalike_fraction=0.5))
    assert plain == draws(SamplingConfig(lookalike_fraction=0.5, distractor_fraction=0.0))
    assert all(d is None for *_, d in plain)
    assert plain != draws(SamplingConfig(lookalike_fraction=0.5, distractor_fraction=0.5))


@pytest.mark.parametrize(("trial", "det_share"), [("control", 0.3), ("stills", 0.5)])
def test_a_trials_kind_weights_decide_where_positive_pairs_come_from(trial, det_share):
    """Trial `stills` draws half its pairs from still images, the recipe 30 %, whatever the sources' sizes."""
    cfg = replace(TRIALS[trial].sampling, negative_fraction=0.0)
    sources = [_source("walk", "sot", ["person"] * 50), _source("photos", "det", ["car"] * 5)]
    sources.append(_source("syn000", "syn", [""] * 20))
    sampler = PairSampler(sources, cfg, seed=0)
    kinds = [sources[sampler.sample().template[0]].kind for _ in range(4000)]
    assert kinds.count("det") / len(kinds) == pytest.approx(det_share, abs=0.03)
