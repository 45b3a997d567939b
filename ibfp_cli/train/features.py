"""CPU path: backbone features of jittered views cached once, so training skips the backbone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..boxes import Box
from ..errors import IBFPError
from ..model.ibfp import IBFP
from ..tracking.backends import frozen_backbone
from .augment import AugmentConfig, sample_view
from .data import PairSampler, Source

VIEWS_FILE = "views.csv"
TAP_FILES = ("taps8.npy", "taps16.npy", "taps32.npy")
BACKBONE_BATCH = 32
TEMPLATE_VIEW = 0
"""View 0 of each item is cut as the tracker cuts its template; the others as search crops."""


def build_feature_cache(
    sources: list[Source],
    model: IBFP,
    out_dir: Path,
    *,
    views: int,
    area_scale: float,
    aug: AugmentConfig,
    template_aug: AugmentConfig,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Run the (frozen) backbone on one template view (`template_aug`, near-centred as the
    tracker's template) and `views` search views (`aug`) of every source item; store fp16 taps."""
    out_dir.mkdir(parents=True, exist_ok=True)
    size = model.config.input_size
    rng = np.random.default_rng(seed)
    rows = [(s, i, v) for s, src in enumerate(sources) for i in range(len(src.boxes)) for v in range(views + 1)]
    backbone = frozen_backbone(model)
    with torch.inference_mode():
        probe = backbone(model.normalize(torch.zeros(1, 3, size, size)))
    taps = [
        np.lib.format.open_memmap(out_dir / name, mode="w+", dtype=np.float16, shape=(len(rows), *t.shape[1:]))
        for name, t in zip(TAP_FILES, probe)
    ]
    boxes = np.zeros((len(rows), 4), np.float32)
    model.eval()
    for start in range(0, len(rows), BACKBONE_BATCH):
        chunk = rows[start : start + BACKBONE_BATCH]
        crops = []
        for k, (s, i, v) in enumerate(chunk):
            view_aug = template_aug if v == TEMPLATE_VIEW else aug
            crop, box = sample_view(sources[s].frames[i], Box(*sources[s].boxes[i]), rng, area_scale, size, view_aug)
            crops.append(crop)
            boxes[start + k] = box.xywh()
        with torch.inference_mode():
            feats = backbone(model.normalize(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()))
        for store, f in zip(taps, feats):
            store[start : start + len(chunk)] = f.numpy().astype(np.float16)
        if progress:
            progress(start + len(chunk), len(rows))
    for store in taps:
        store.flush()
    table = pd.DataFrame(rows, columns=["source", "item", "view"])
    table[["x", "y", "w", "h"]] = boxes
    table["source_name"] = [sources[s].name for s in table.source]
    table["kind"] = [sources[s].kind for s in table.source]
    table["frame"] = [int(sources[s].index[i]) for s, i in zip(table.source, table["item"])]
    table.to_csv(out_dir / VIEWS_FILE, index=False)
    return table


@dataclass
class FeatureBatch:
    """Raw backbone taps (fp32) for template and search views, boxes in crop pixels."""

    template: tuple[torch.Tensor, ...]
    template_boxes: torch.Tensor
    search: tuple[torch.Tensor, ...]
    search_boxes: torch.Tensor
    positive: torch.Tensor


class FeatureCache:
    """A built feature cache, memory-mapped; batches follow a PairSampler's pairs."""

    def __init__(self, cache_dir: Path) -> None:
        if not (cache_dir / VIEWS_FILE).is_file():
            raise IBFPError(f"{cache_dir} is not a feature cache; run `ibfp train features`")
        self.views = pd.read_csv(cache_dir / VIEWS_FILE)
        self.taps = [np.load(cache_dir / name, mmap_mode="r") for name in TAP_FILES]
        self.rows: dict[tuple[int, int], np.ndarray] = {
            key: group.sort_values("view").index.to_numpy() for key, group in self.views.groupby(["source", "item"])
        }
        self.boxes = self.views[["x", "y", "w", "h"]].to_numpy(np.float32)

    def batch(self, sampler: PairSampler, batch_size: int) -> FeatureBatch:
        t_rows, s_rows, positive = [], [], []
        for _ in range(batch_size):
            pair = sampler.sample()
            t_views = self.rows[pair.template]
            s_views = self.rows[pair.search]
            t_rows.append(int(t_views[TEMPLATE_VIEW]))
            s_rows.append(int(sampler.rng.choice(s_views[TEMPLATE_VIEW + 1 :])))
            positive.append(pair.positive)

        def gather(rows: list[int]) -> tuple[torch.Tensor, ...]:
            order = np.argsort(rows)  # sorted reads are faster on a memory map
            out = []
            for taps in self.taps:
                data = taps[np.asarray(rows)[order]]
                out.append(torch.from_numpy(data[np.argsort(order)]).float())
            return tuple(out)

        return FeatureBatch(
            gather(t_rows),
            torch.from_numpy(self.boxes[t_rows]),
            gather(s_rows),
            torch.from_numpy(self.boxes[s_rows]),
            torch.tensor(positive),
        )

    def sources(self) -> list[Source]:
        """Stand-in sources (no images) that let a PairSampler index this cache's items."""
        out = []
        for _, group in self.views.groupby("source", sort=True):
            items = group.drop_duplicates("item").sort_values("item")
            out.append(
                Source(
                    str(items.source_name.iloc[0]),
                    items.kind.iloc[0],
                    np.empty((0,)),
                    items[["x", "y", "w", "h"]].to_numpy(np.float32),
                    items.frame.to_numpy(),
                )
            )
        return out
