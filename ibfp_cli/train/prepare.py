"""`ibfp train prepare`: a compact crop cache of every training target, one H.264 video per source.

Each annotated frame is cropped around its target with enough context for shift and scale
augmentation and stored as a frame of its source's video (consecutive crops compress well),
with the box in crop pixels in `index.csv`. The videos are read back with OpenCV alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..boxes import Box
from ..errors import IBFPError
from ..tracking.crop import context_window
from .data import Source

VAL_SPLIT_FILE = Path(__file__).with_name("val_split.txt")
# weights/TRAINING.md: tracker settings are tuned on every 3rd training sequence by name (21 of
# the 62 in ../shared/data), a third of the training footage, no validation sequence
TUNING_EVERY = 3
INDEX_FILE = "index.csv"
META_FILE = "meta.json"
SOT_FOLDERS = ("sot", "sot-train")
"""Folders of annotated videos (`<name>.mp4` + `<name>.gt.csv`) under the data folder."""
SOURCES_FILE = "sources.csv"
"""Beside the videos, optional: `name` and `object_class` ("person (pedestrian)") per video."""
INDEX_COLUMNS = ["source", "kind", "item", "frame", "x", "y", "w", "h", "category"]
MIN_TARGET_PX = 12.0  # smaller targets carry too little texture to learn from


@dataclass(frozen=True)
class CacheConfig:
    """Crop cache geometry and compression."""

    crop_size: int = 320  # measured: 320 px crops keep the 64 MiB bound with frame_step 2
    context: float = 7.0  # crop side in target sizes: room for +-1 target of shift, x1.4 zoom
    frame_step: int = 2  # every 2nd annotated video frame (neighbours are near duplicates)
    crf: int = 26  # H.264 quality (lower is better); measured cost in weights/MODEL_CARD.md
    fps: float = 30.0


def val_sequences() -> set[str]:
    """Names in the validation split file."""
    lines = VAL_SPLIT_FILE.read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


def tuning_sequences(names: Iterable[str]) -> list[str]:
    """The tuning split of `names`: every TUNING_EVERY-th name outside the validation split, in
    name order (training footage to tune tracker settings on, so that validation stays unseen)."""
    val = val_sequences()
    return sorted(name for name in set(names) if name not in val)[::TUNING_EVERY]


def read_gt(path: Path) -> dict[int, Box]:
    """This project's `<name>.gt.csv` (frame,x,y,w,h; empty = absent) as frame -> Box."""
    gt = pd.read_csv(path).dropna()
    return {int(r.frame): Box(r.x, r.y, r.w, r.h) for r in gt.itertuples()}


def category_of(object_class: str) -> str:
    """The category an object class names: "person (pedestrian)" and "person" are both "person",
    "horse+rider" is "horse"."""
    return object_class.split("(")[0].split("+")[0].strip().lower()


def _video_categories(folder: Path) -> dict[str, str]:
    """Video name -> category, from the folder's sources.csv where it has one."""
    path = folder / SOURCES_FILE
    if not path.is_file():
        return {}
    table = pd.read_csv(path)
    if not {"name", "object_class"} <= set(table.columns):
        return {}
    named = table.dropna(subset=["object_class"])
    return {str(r.name): category_of(str(r.object_class)) for r in named.itertuples()}


Item = tuple[int, np.ndarray, Box, str]
"""A training target: its frame (or its photo's number), the image, its box, its category."""


def _sot_items(path: Path, gt: dict[int, Box], step: int, category: str) -> Iterator[Item]:
    from ..media.video import read_video

    with read_video(path) as video:
        for frame in video:
            box = gt.get(frame.index)
            if box is not None and frame.index % step == 0 and min(box.w, box.h) >= MIN_TARGET_PX:
                yield frame.index, frame.image, box, category


def _det_items(folder: Path) -> Iterator[Item]:
    table = pd.read_csv(folder / "boxes.csv")
    has_category = "category" in table.columns
    for photo, (name, rows) in enumerate(table.groupby("image", sort=True)):
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is None:
            continue
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        for r in rows.itertuples():
            if min(r.w, r.h) >= MIN_TARGET_PX:
                category = category_of(str(r.category)) if has_category and isinstance(r.category, str) else ""
                yield photo, image, Box(r.x, r.y, r.w, r.h), category


def prepare_crop_cache(
    data_dir: Path, out_dir: Path, cfg: CacheConfig = CacheConfig(), progress: Callable[[str], None] | None = None
) -> pd.DataFrame:
    """Write the crop cache of the training sequences of every SOT_FOLDERS folder (val split
    excluded) and of the still images."""
    from ..media.video import VideoWriter

    sot_dirs = [data_dir / name for name in SOT_FOLDERS if (data_dir / name).is_dir()]
    det = data_dir / "det"
    if not sot_dirs and not det.is_dir():
        raise IBFPError(f"{data_dir} has none of {', '.join(SOT_FOLDERS)}, det/")
    out_dir.mkdir(parents=True, exist_ok=True)
    val = val_sequences()
    jobs: list[tuple[str, str, Iterator[Item]]] = []
    categories = {name: c for folder in sot_dirs for name, c in _video_categories(folder).items()}
    for video in sorted(v for folder in sot_dirs for v in folder.glob("*.mp4")):
        name = video.name[: -len(".mp4")]
        if name not in val:
            gt = read_gt(video.with_name(f"{name}.gt.csv"))
            jobs.append((name, "sot", _sot_items(video, gt, cfg.frame_step, categories.get(name, ""))))
    for folder in sorted(p for p in det.iterdir() if (p / "boxes.csv").is_file()) if det.is_dir() else []:
        jobs.append((f"det_{folder.name}", "det", _det_items(folder)))
    if not jobs:
        videos = [v for folder in sot_dirs for v in folder.glob("*.mp4")]
        held_out = sum(v.name[: -len(".mp4")] in val for v in videos)
        raise IBFPError(
            f"no training sources in {data_dir}: {held_out} of {len(videos)} videos are validation sequences "
            f"({VAL_SPLIT_FILE.name}, never trained on) and det/ has no <set>/boxes.csv"
        )
    rows = []
    for name, kind, items in jobs:
        if progress:
            progress(name)
        with VideoWriter(out_dir / f"{name}.mp4", cfg.crop_size, cfg.crop_size, cfg.fps, crf=cfg.crf) as writer:
            for item, (frame, image, box, category) in enumerate(items):
                window = context_window(box, cfg.context, cfg.crop_size)
                writer.write(window.crop(image))
                b = window.to_crop(box)
                rows.append((name, kind, item, frame, b.x, b.y, b.w, b.h, category))
    if not rows:
        raise IBFPError(
            f"no target of {len(jobs)} training sources is at least {MIN_TARGET_PX:g} px on its shorter side"
        )
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    index.to_csv(out_dir / INDEX_FILE, index=False)
    (out_dir / META_FILE).write_text(json.dumps({"crop_size": cfg.crop_size, "context": cfg.context}))
    return index


def load_crop_cache(cache_dir: Path) -> list[Source]:
    """Decode a crop cache into memory, one Source per video (OpenCV only)."""
    index_path = cache_dir / INDEX_FILE
    if not index_path.is_file():
        raise IBFPError(f"{cache_dir} is not a crop cache (no {INDEX_FILE}); run `ibfp train prepare`")
    index = pd.read_csv(index_path)
    sources = []
    for name, rows in index.groupby("source", sort=True):
        capture = cv2.VideoCapture(str(cache_dir / f"{name}.mp4"))
        frames = []
        while len(frames) < len(rows):
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        capture.release()
        if len(frames) != len(rows):
            raise IBFPError(f"{name}.mp4 in {cache_dir} has {len(frames)} frames, index lists {len(rows)}")
        rows = rows.sort_values("item")
        sources.append(
            Source(
                str(name),
                rows.kind.iloc[0],
                np.stack(frames),
                rows[["x", "y", "w", "h"]].to_numpy(np.float32),
                rows.frame.to_numpy(),
                _categories(rows.category) if "category" in rows else np.array([], dtype=str),
            )
        )
    return sources


def _categories(column: pd.Series) -> np.ndarray:
    """Category names, "" where none (a column pandas read as all-empty numbers included)."""
    return np.where(column.notna(), column.astype(str), "")
