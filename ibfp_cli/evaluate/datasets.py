"""Tracking benchmarks on disk: this project's video + CSV layout, OTB, GOT-10k and LaSOT.

Every reader gives `Sequence`s whose ground truth is 0-based x, y, w, h float pixels with
NaN rows (and `absent` True) where the target is absent. OTB's 1-based MATLAB coordinates
are shifted by -1; GOT-10k and LaSOT boxes are kept as their files give them, as their
toolkits do.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from ..errors import FormatError, VideoError
from ..media.video import read_video

GT_CSV_SUFFIX = ".gt.csv"
GT_CSV_COLUMNS = ("frame", "x", "y", "w", "h")
GT_CSV_OBJECT_COLUMNS = ("frame", "id", "x", "y", "w", "h")
"""Several objects in one ground truth: an `id` column (as in `ibfp track`'s CSV and MOT)."""
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

OTB_GT_GLOB = "groundtruth_rect*.txt"
OTB_IMAGE_FOLDER = "img"
OTB_COORDINATE_BASE = 1.0
"""OTB ground truth is in 1-based (MATLAB) pixel coordinates."""
OTB_FIRST_IMAGE = {"david": 300}
"""OTB-2015 sequences whose ground truth starts after img/0001.jpg (the benchmark's startFrame)."""

GOT_GT_FILE = "groundtruth.txt"
GOT_ABSENCE_FILE = "absence.label"
GOT_COVER_FILE = "cover.label"
"""GOT-10k's toolkit scores only frames with cover > 0 (target at least partly visible)."""

LASOT_FLAG_FILES = ("full_occlusion.txt", "out_of_view.txt")

DATASET_SEARCH_DEPTH = 3
"""Folder levels searched: the given folder, its sub-folders and theirs.

LaSOT nests its sequences as <root>/<class>/<class>-<n>/."""

LOOKED_FOR = (
    f"<name>.mp4 + <name>{GT_CSV_SUFFIX}; OTB <seq>/img/*.jpg + <seq>/groundtruth_rect.txt; "
    f"GOT-10k <seq>/*.jpg + <seq>/{GOT_GT_FILE}; LaSOT <seq>/img/*.jpg + <seq>/{GOT_GT_FILE} "
    f"+ <seq>/{LASOT_FLAG_FILES[0]}"
)

_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True, eq=False)
class Sequence:
    """One annotated sequence: frames from a video file or an ordered list of image files.

    gt: (N, 4) float x, y, w, h, 0-based, NaN rows where absent; absent: (N,) bool. A ground
    truth with several objects (`GT_CSV_OBJECT_COLUMNS`) also gives `objects`: (M, N, 4), every
    object's boxes in `object_ids` order, NaN where absent; `gt` is the lowest-id object annotated
    on the first frame. `start`: the source frame this sequence begins at (`starting_at`).
    """

    name: str
    frames_source: Path | tuple[Path, ...]
    gt: np.ndarray
    absent: np.ndarray
    objects: np.ndarray | None = None
    object_ids: tuple[int, ...] = ()
    start: int = 0

    def __post_init__(self) -> None:
        if len(self.gt) == 0:
            raise FormatError(f"sequence {self.name} has no ground truth")
        if self.absent[0]:
            raise FormatError(f"sequence {self.name} has no ground-truth box on its first frame")

    def __len__(self) -> int:
        return len(self.gt)

    def frames(self) -> Iterator[np.ndarray]:
        """The sequence's frames as RGB uint8 arrays, exactly len(self) of them."""
        if isinstance(self.frames_source, Path):
            with read_video(self.frames_source) as reader:
                yield from self._first_frames(frame.image for frame in reader)
        else:
            yield from self._first_frames(_read_image(path) for path in self.frames_source)

    def starting_at(self, frame: int) -> Sequence:
        """The same sequence from `frame` on (a later start of a temporal robustness evaluation),
        its target alone; `frame` must have a ground-truth box."""
        later = slice(frame - self.start, None)
        return Sequence(self.name, self.frames_source, self.gt[later], self.absent[later], start=frame)

    def _first_frames(self, images: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        count = 0
        for count, image in enumerate(islice(images, self.start, self.start + len(self)), start=1):  # noqa: B007
            yield image
        if count < len(self):
            raise VideoError(
                f"sequence {self.name}: {_source_name(self.frames_source)} has {self.start + count} frames, "
                f"its ground truth has {self.start + len(self)}"
            )


def temporal_starts(sequence: Sequence, count: int) -> list[int]:
    """Its first frame and count - 1 later ones spread evenly over `sequence` (OTB's temporal
    robustness evaluation, Wu et al. 2013), each moved on to the next frame with a ground-truth
    box; a later start with no frame after it to track is left out."""
    starts = [sequence.start]
    for i in range(1, count):
        offset = i * len(sequence) // count
        present = offset + np.flatnonzero(~sequence.absent[offset:])
        if len(present) and present[0] < len(sequence) - 1:
            starts.append(sequence.start + int(present[0]))
    return list(dict.fromkeys(starts))


def open_dataset(path: str | Path) -> list[Sequence]:
    """All sequences under `path`, sorted by name, whatever the layout (see LOOKED_FOR)."""
    path = Path(path)
    if not path.exists():
        raise FormatError(f"dataset {path} does not exist")
    if path.is_file():
        sequences = [_read_project_sequence(_gt_csv_for(path))]
    else:
        sequences = _read_folder(path, DATASET_SEARCH_DEPTH)
    if not sequences:
        raise FormatError(f"no tracking sequences found in {path}; looked for {LOOKED_FOR}")
    names = [s.name for s in sequences]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FormatError(f"dataset {path} has several sequences named {', '.join(duplicates)}")
    return sorted(sequences, key=lambda s: s.name)


def read_gt_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """This project's ground truth: `frame,x,y,w,h` rows, 0-based frames, empty box = absent;
    of a file with several objects (`frame,id,x,y,w,h`), the first object's.

    The sequence ends at the last listed frame; frames not listed are absent.
    """
    _, gt, absent = read_gt_objects(path)
    return gt[0], absent[0]


def read_gt_objects(path: Path) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Every object of a ground-truth CSV: ids (ascending), boxes (M, N, 4) NaN where absent and
    absent (M, N), N up to the last frame listed for any object. A file without an `id` column
    holds one object, id 1."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = [(reader.line_num, row) for row in reader]
            header = tuple(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FormatError(f"cannot read ground truth {path}: {e}") from None
    if header not in (GT_CSV_COLUMNS, GT_CSV_OBJECT_COLUMNS) or not rows:
        raise FormatError(
            f"{path} must have the header {','.join(GT_CSV_COLUMNS)} (or {','.join(GT_CSV_OBJECT_COLUMNS)}) and rows"
        )
    boxes: dict[int, dict[int, list[float]]] = {}
    for line, row in rows:
        frame, values = _parse_csv_row(path, line, row)
        track = _parse_id(path, line, row) if "id" in header else 1
        if frame in boxes.setdefault(track, {}):
            raise FormatError(
                f"{path} line {line}: frame {frame} is listed twice" + (f" for id {track}" if "id" in header else "")
            )
        boxes[track][frame] = values
    ids = tuple(sorted(boxes))
    frames = max(max(b) for b in boxes.values()) + 1
    gt = np.full((len(ids), frames, 4), np.nan)
    absent = np.zeros((len(ids), frames), dtype=bool)
    for m, track in enumerate(ids):
        for frame, values in boxes[track].items():
            gt[m, frame] = values
        gt[m], absent[m] = _mark_absent(gt[m], absent[m])
    return ids, gt, absent


def _parse_id(path: Path, line: int, row: dict[str, str]) -> int:
    text = (row.get("id") or "").strip()
    try:
        return int(text)
    except ValueError:
        raise FormatError(f"{path} line {line}: expected a whole-number object id, got {text!r}") from None


def _parse_csv_row(path: Path, line: int, row: dict[str, str]) -> tuple[int, list[float]]:
    cells = [(row.get(c) or "").strip() for c in GT_CSV_COLUMNS]
    try:
        frame = int(cells[0])
        if frame < 0:
            raise ValueError
        if not any(cells[1:]):
            return frame, [np.nan] * 4
        return frame, [float(c) for c in cells[1:]]
    except ValueError:
        raise FormatError(
            f"{path} line {line}: expected a frame number >= 0 and four numbers (or none), got {','.join(cells)}"
        ) from None


def _read_number_rows(path: Path, columns: int) -> np.ndarray:
    """A text file of `columns` numbers per line, separated by commas, tabs or spaces."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"cannot read {path}: {e}") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        fields = [f for f in _SEPARATORS.split(line.strip()) if f]
        if not fields:
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            values = []
        if len(values) != columns:
            raise FormatError(f"{path} line {number}: expected {columns} numbers, got {line.strip()!r}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, columns)


def _read_folder(folder: Path, depth: int) -> list[Sequence]:
    own = _read_sequence_folder(folder)
    if own:
        return own
    sequences = [_read_project_sequence(p) for p in sorted(folder.glob(f"*{GT_CSV_SUFFIX}"))]
    if depth > 1:
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            sequences += _read_folder(child, depth - 1)
    return sequences


def _read_sequence_folder(folder: Path) -> list[Sequence]:
    """The sequences of one OTB, LaSOT or GOT-10k sequence folder; [] if it is none of them."""
    images = folder / OTB_IMAGE_FOLDER
    if images.is_dir() and any(folder.glob(OTB_GT_GLOB)):
        return _read_otb(folder)
    if images.is_dir() and (folder / GOT_GT_FILE).is_file():
        return [_read_lasot(folder)]
    if (folder / GOT_GT_FILE).is_file() and _image_files(folder):
        return [_read_got10k(folder)]
    return []


def _read_project_sequence(gt_csv: Path) -> Sequence:
    stem = gt_csv.name[: -len(GT_CSV_SUFFIX)]
    videos = [gt_csv.with_name(stem + s) for s in VIDEO_SUFFIXES]
    video = next((v for v in videos if v.is_file()), None)
    if video is None:
        raise FormatError(f"no video for {gt_csv} (looked for {', '.join(v.name for v in videos)})")
    ids, gt, absent = read_gt_objects(gt_csv)
    if len(ids) == 1:
        return Sequence(stem, video, gt[0], absent[0])
    present = np.flatnonzero(~absent[:, 0])  # objects annotated on the first frame
    first = int(present[0]) if len(present) else 0  # none: Sequence says so in one line
    return Sequence(stem, video, gt[first], absent[first], objects=gt, object_ids=ids)


def _gt_csv_for(video: Path) -> Path:
    gt_csv = video.with_name(video.stem + GT_CSV_SUFFIX)
    if video.suffix.lower() not in VIDEO_SUFFIXES or not gt_csv.is_file():
        raise FormatError(f"{video} is not a video with its ground truth {gt_csv.name} beside it")
    return gt_csv


def _read_otb(folder: Path) -> list[Sequence]:
    """OTB: img/*.jpg and groundtruth_rect.txt, or one groundtruth_rect.<k>.txt per target k.

    Target k of a folder <seq> becomes the sequence <seq>-<k> (OTB's Jogging-1, Jogging-2).
    """
    images = _image_files(folder / OTB_IMAGE_FOLDER)
    first = OTB_FIRST_IMAGE.get(folder.name.lower(), 1) - 1
    sequences = []
    for gt_file in sorted(folder.glob(OTB_GT_GLOB)):
        target = gt_file.name[len("groundtruth_rect") : -len(".txt")].strip(".")
        name = f"{folder.name}-{target}" if target else folder.name
        gt = _read_number_rows(gt_file, 4)
        gt[:, :2] -= OTB_COORDINATE_BASE
        frames = _frames_for(folder, images[first:], gt)
        sequences.append(Sequence(name, frames, *_mark_absent(gt, np.zeros(len(gt), dtype=bool))))
    return sequences


def _read_got10k(folder: Path) -> Sequence:
    """GOT-10k: *.jpg, groundtruth.txt, and optional absence.label / cover.label per frame."""
    gt = _read_number_rows(folder / GOT_GT_FILE, 4)
    absent = np.zeros(len(gt), dtype=bool)
    if (folder / GOT_ABSENCE_FILE).is_file():
        absent |= _read_flags(folder / GOT_ABSENCE_FILE, len(gt)) != 0
    if (folder / GOT_COVER_FILE).is_file():
        absent |= _read_flags(folder / GOT_COVER_FILE, len(gt)) == 0
    images = _frames_for(folder, _image_files(folder), gt)
    return Sequence(folder.name, images, *_mark_absent(gt, absent))


def _read_lasot(folder: Path) -> Sequence:
    """LaSOT: img/*.jpg, groundtruth.txt, full_occlusion.txt and out_of_view.txt (0/1 flags)."""
    gt = _read_number_rows(folder / GOT_GT_FILE, 4)
    absent = np.zeros(len(gt), dtype=bool)
    for flags in LASOT_FLAG_FILES:
        if (folder / flags).is_file():
            absent |= _read_flags(folder / flags, len(gt)) != 0
    images = _frames_for(folder, _image_files(folder / OTB_IMAGE_FOLDER), gt)
    return Sequence(folder.name, images, *_mark_absent(gt, absent))


def _read_flags(path: Path, count: int) -> np.ndarray:
    """Per-frame integer flags, one per line or comma separated on one line."""
    try:
        text = path.read_text()
        flags = np.array([int(float(f)) for f in _SEPARATORS.split(text.strip()) if f])
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"cannot read per-frame flags {path}: {e}") from None
    if len(flags) != count:
        raise FormatError(f"{path} has {len(flags)} flags for {count} ground-truth boxes")
    return flags


def _mark_absent(gt: np.ndarray, absent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flag rows that are NaN or empty too, and blank every absent row to NaN."""
    absent = absent | ~np.all(np.isfinite(gt), axis=1) | (gt[:, 2] <= 0) | (gt[:, 3] <= 0)
    gt = gt.copy()
    gt[absent] = np.nan
    return gt, absent


def _image_files(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))


def _frames_for(folder: Path, images: tuple[Path, ...], gt: np.ndarray) -> tuple[Path, ...]:
    """The first len(gt) images (benchmarks ship extra images past the annotated ones)."""
    if len(images) < len(gt):
        raise FormatError(f"{folder} has {len(images)} images for {len(gt)} ground-truth boxes")
    return images[: len(gt)]


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _source_name(source: Path | tuple[Path, ...]) -> str:
    return str(source) if isinstance(source, Path) else f"{source[0].parent} ({len(source)} images)"
