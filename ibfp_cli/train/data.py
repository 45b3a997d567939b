"""Training sources and template/search pair sampling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from ..boxes import Box
from ..media.synthetic import SyntheticSpec, render_synthetic
from .augment import AugmentConfig, sample_view

Kind = Literal["sot", "det", "syn"]
KINDS: tuple[Kind, ...] = ("sot", "det", "syn")


@dataclass
class Source:
    """Images of one video (or one set of still-image crops) with one box per image.

    frames: (N, H, W, 3) RGB uint8; boxes: (N, 4) x, y, w, h in those images' pixels;
    index: each image's frame number in its video (pairs are drawn within a frame gap), or for
    still images (kind "det") the number of the photo it was cut from (one photo may hold several
    objects); every still-image crop is its own object: pairs use one crop twice.
    categories: (N,) each item's object category ("person", "fish"), "" where unknown.
    """

    name: str
    kind: Kind
    frames: np.ndarray
    boxes: np.ndarray
    index: np.ndarray
    categories: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))

    def category(self, item: int) -> str:
        """Item `item`'s category, "" where unknown."""
        return str(self.categories[item]) if len(self.categories) else ""


@dataclass(frozen=True)
class SamplingConfig:
    """Where pairs come from (issue 5: sampling weights configurable)."""

    weights: tuple[float, float, float] = (0.5, 0.3, 0.2)  # measured: sot, det, syn
    negative_fraction: float = 0.2  # issue 5: about 20% negative pairs
    max_frame_gap: int = 100  # SiamRPN++ practice for video pairs
    # DaSiamRPN (Zhu et al. 2018): negatives of the template's own category ("semantic
    # negatives") teach the network to tell one instance from its look-alikes; this share of the
    # negatives is drawn so, the rest from any other source. 0: every negative from any source
    lookalike_fraction: float = 0.0
    lookalike_tries: int = 8  # draws of a same-category item before falling back to any source
    # this share of the positive pairs has another object of the target's category pasted into the
    # search view beside the target (DaSiamRPN's distractor-aware training, with the look-alike in
    # the same view as the target, where the tracker meets it): only the target is labelled, so the
    # network learns to rank its own object above a neighbour of its kind. 0: no pasting
    distractor_fraction: float = 0.0


@dataclass
class Pair:
    template: tuple[int, int]  # (source, item)
    search: tuple[int, int]
    positive: bool
    distractor: tuple[int, int] | None = None  # (source, item) pasted into the search view


class PairSampler:
    """Draws (template, search, positive) item pairs across sources by kind weights."""

    def __init__(self, sources: list[Source], cfg: SamplingConfig, seed: int) -> None:
        if not sources:
            raise ValueError("no training sources")
        self.sources, self.cfg = sources, cfg
        self.rng = np.random.default_rng(seed)
        by_kind = {k: [i for i, s in enumerate(sources) if s.kind == k] for k in KINDS}
        self.kinds = [k for k in KINDS if by_kind[k]]
        w = np.array([cfg.weights[KINDS.index(k)] for k in self.kinds], dtype=float)
        self.kind_p = w / w.sum()
        self.by_kind = by_kind
        pairs: dict[str, list[tuple[int, int]]] = {}
        for s, source in enumerate(sources):
            for i in range(len(source.categories)):
                if source.category(i):
                    pairs.setdefault(source.category(i), []).append((s, i))
        self.by_category = {c: np.array(p) for c, p in pairs.items() if len(p) > 1}  # (M, 2) source, item

    def _item_in(self, kind: Kind) -> tuple[int, int]:
        members = self.by_kind[kind]
        sizes = np.array([len(self.sources[i].boxes) for i in members], dtype=float)
        s = members[int(self.rng.choice(len(members), p=sizes / sizes.sum()))]
        return s, int(self.rng.integers(len(self.sources[s].boxes)))

    def sample(self) -> Pair:
        kind = self.kinds[int(self.rng.choice(len(self.kinds), p=self.kind_p))]
        s, i = self._item_in(kind)
        if len(self.sources) > 1 and self.rng.random() < self.cfg.negative_fraction:
            lookalike = self._lookalike(s, i) if self.rng.random() < self.cfg.lookalike_fraction else None
            if lookalike is not None:
                return Pair((s, i), lookalike, False)
            other = s
            while other == s:
                other = int(self.rng.integers(len(self.sources)))
            return Pair((s, i), (other, int(self.rng.integers(len(self.sources[other].boxes)))), False)
        src = self.sources[s]
        if src.kind == "det":
            search = (s, i)
        else:
            near = np.flatnonzero(np.abs(src.index - src.index[i]) <= self.cfg.max_frame_gap)
            search = (s, int(self.rng.choice(near)))
        if self.cfg.distractor_fraction and self.rng.random() < self.cfg.distractor_fraction:
            return Pair((s, i), search, True, self._lookalike(s, i))
        return Pair((s, i), search, True)

    def _lookalike(self, s: int, i: int) -> tuple[int, int] | None:
        """Another object of item (s, i)'s category: from another video, or from another photo
        of the same still-image set (a crop of the same photo could show the template's object)."""
        members = self.by_category.get(self.sources[s].category(i))
        if members is None:
            return None
        for _ in range(self.cfg.lookalike_tries):
            o, j = (int(v) for v in members[int(self.rng.integers(len(members)))])
            same_video = o == s and self.sources[s].kind != "det"
            same_photo = o == s and self.sources[s].index[j] == self.sources[s].index[i]
            if not (same_video or same_photo):
                return o, j
        return None


@dataclass
class ImageBatch:
    """Crops (B, 3, S, S) float 0..255 and boxes (B, 4) crop pixels; positive (B,) bool."""

    template: torch.Tensor
    template_boxes: torch.Tensor
    search: torch.Tensor
    search_boxes: torch.Tensor
    positive: torch.Tensor


def image_batch(
    sampler: PairSampler,
    batch_size: int,
    area_scale: float,
    size: int,
    template_aug: AugmentConfig,
    search_aug: AugmentConfig,
) -> ImageBatch:
    """Sample pairs and cut their crops (the end-to-end path, used on GPUs and in tests)."""
    parts: dict[str, list] = {k: [] for k in ("t", "tb", "s", "sb", "p")}
    for _ in range(batch_size):
        pair = sampler.sample()
        distractor = object_pixels(sampler.sources[pair.distractor[0]], pair.distractor[1]) if pair.distractor else None
        views = ((pair.template, template_aug, "t", None), (pair.search, search_aug, "s", distractor))
        for (src_i, item), aug, key, pasted in views:
            src = sampler.sources[src_i]
            image, box = src.frames[item], Box(*src.boxes[item])
            crop, box = sample_view(image, box, sampler.rng, area_scale, size, aug, pasted)
            parts[key].append(crop)
            parts[key + "b"].append(box.xywh())
        parts["p"].append(pair.positive)

    def images(xs: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float()

    return ImageBatch(
        images(parts["t"]),
        torch.tensor(parts["tb"], dtype=torch.float32),
        images(parts["s"]),
        torch.tensor(parts["sb"], dtype=torch.float32),
        torch.tensor(parts["p"]),
    )


def object_pixels(source: Source, item: int) -> np.ndarray | None:
    """The pixels inside item `item`'s box, (h, w, 3); None where the box is under 2 pixels in the image."""
    image = source.frames[item]
    x, y, w, h = source.boxes[item]
    x0, y0 = max(int(round(x)), 0), max(int(round(y)), 0)
    x1, y1 = min(int(round(x + w)), image.shape[1]), min(int(round(y + h)), image.shape[0])
    return image[y0:y1, x0:x1] if x1 - x0 >= 2 and y1 - y0 >= 2 else None


SYNTHETIC_SIZE = (320, 240)  # small frames: the crops are all training uses of them


def synthetic_sources(count: int, frames: int, seed: int) -> list[Source]:
    """Generated clips with distractors and occlusions (issue 5: synthetic sequences)."""
    rng = np.random.default_rng(seed)
    sources = []
    for i in range(count):
        w, h = (int(v) for v in rng.integers(24, 72, 2))
        start = int(rng.integers(0, frames // 2))
        spec = SyntheticSpec(
            width=SYNTHETIC_SIZE[0],
            height=SYNTHETIC_SIZE[1],
            frames=frames,
            object_size=(w, h),
            speed=float(rng.uniform(1, 6)),
            distractors=int(rng.integers(0, 3)),
            occlusion=(start, start + int(rng.integers(3, 10))) if rng.random() < 0.5 else None,
            seed=seed * 1000 + i,
        )
        imgs, boxes = render_synthetic(spec)
        index = np.arange(frames)
        visible = np.ones(frames, bool)
        if spec.occlusion:  # an occluded target is not a positive example
            visible[spec.occlusion[0] : spec.occlusion[1]] = False
        sources.append(Source(f"syn{i:03d}", "syn", imgs[visible], boxes[visible].astype(np.float32), index[visible]))
    return sources
