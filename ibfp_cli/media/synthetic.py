"""Generated clips with exact ground truth: a textured object moving over a textured background.

Used by the tests, by `ibfp demo` and as a training data source. Everything comes from
seeded generators, so a spec always gives the same frames and boxes. The object is
drawn at integer positions and sizes and its ground-truth box is exactly what is drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ..boxes import MIN_BOX_SIZE
from ..errors import IBFPError

UINT8_MAX = 255
BACKGROUND_CELLS = (8, 6)
"""Random values on this coarse grid, smoothly upsampled, give the background's large blobs."""
BACKGROUND_LEVELS = (60.0, 190.0)
"""Background grey levels stay mid-range, away from the object's saturated colours."""
BACKGROUND_GRADIENT = 40.0
"""Largest brightness change of the background's linear ramp across the frame."""
TEXTURE_SIZE = 128
"""Object textures are drawn once at this size, then resized to each frame's box."""
CHECKER_CELLS = 4
OBJECT_BLOBS = 6
BLOB_RADIUS = (0.08, 0.2)
"""Blob radii as a fraction of the texture size."""
OBJECT_SATURATION = (170, 256)
OBJECT_VALUE = (140, 256)
"""HSV saturation and value ranges of object colours: vivid, unlike the background."""
PATH_FREQUENCIES = (1, 2, 3)
"""Lissajous frequencies of the object paths: closed, smooth loops."""
PATH_SAMPLES = 4096
OCCLUDER_RGB = (70, 70, 70)
OCCLUDER_MARGIN = 0.25
"""The occluder bar overhangs the target by this fraction of its width on each side."""
NOISE_BANK_FRAMES = 2
"""Per-frame noise is a random window into a bank this many frames long, drawn once."""
LOOKALIKE_HUE_SHIFT = (4, 12)
"""A look-alike wears the target's texture with every hue turned by this many OpenCV hue units
(of 180) either way: the same pattern, a shade off, as two people in similar clothes."""

# Independent random streams, so that changing one option keeps the rest of the clip.
_BACKGROUND, _TARGET, _NOISE, _DISTRACTORS, _LOOKALIKE = range(5)


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. Defaults: a 10 s VGA clip at 30 fps with one mid-sized object."""

    width: int = 640
    height: int = 480
    frames: int = 300
    fps: float = 30.0
    object_size: tuple[int, int] = (80, 60)
    """Object width and height on the first frame."""
    scale_amplitude: float = 0.2
    """Relative size change: the size follows 1 + a * sin over the clip."""
    speed: float = 4.0
    """Object speed in px/frame along a closed Lissajous path inside the frame."""
    noise: float = 12.0
    """Standard deviation of the Gaussian pixel noise added to every frame."""
    distractors: int = 0
    """Look-alike objects (same texture family, another pattern) moving on their own paths."""
    lookalike: bool = False
    """Distractors wear the target's own pattern, a shade off in hue (LOOKALIKE_HUE_SHIFT)."""
    occlusion: tuple[int, int] | None = None
    """Frames [a, b) on which a bar hides the target (its box stays the true position)."""
    seed: int = 0

    def __post_init__(self) -> None:
        w, h = self.object_size
        largest = 1 + abs(self.scale_amplitude)
        smallest = 1 - abs(self.scale_amplitude)
        if self.frames < 1 or self.width < 1 or self.height < 1:
            raise IBFPError("a synthetic clip needs at least one frame of at least 1x1 px")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise IBFPError(f"frame rate {self.fps} must be a positive number")
        if min(w, h) * smallest < MIN_BOX_SIZE:
            raise IBFPError(f"object {w}x{h} shrinks below {MIN_BOX_SIZE:g} px")
        if w * largest > self.width or h * largest > self.height:
            raise IBFPError(
                f"object {w}x{h} grown by {self.scale_amplitude:.0%} does not fit the {self.width}x{self.height} frame"
            )
        if self.speed < 0 or self.noise < 0 or self.distractors < 0:
            raise IBFPError("speed, noise and distractors must not be negative")
        if self.occlusion is not None and not 0 <= self.occlusion[0] < self.occlusion[1]:
            raise IBFPError(f"occlusion {self.occlusion} must be frames [a, b) with 0 <= a < b")


@dataclass(frozen=True)
class _Sprite:
    texture: np.ndarray
    boxes: np.ndarray
    """(frames, 4) integer x, y, w, h of the texture on each frame."""


LOOKALIKE_CLIP = SyntheticSpec(
    width=320, height=240, frames=150, object_size=(36, 44), scale_amplitude=0.1, speed=3.0, noise=8.0, lookalike=True
)
"""People-shaped look-alikes of ~40 px on a small frame, so that paths cross often (issue 28's
clips: `distractors` and `seed` make each one)."""


def synthetic_sequence(spec: SyntheticSpec) -> tuple[Iterator[np.ndarray], np.ndarray]:
    """The clip's RGB uint8 frames (generated lazily) and the target's (frames, 4) xywh boxes."""
    frames, boxes = synthetic_objects(spec)
    return frames, boxes[0]


def synthetic_objects(spec: SyntheticSpec) -> tuple[Iterator[np.ndarray], np.ndarray]:
    """The clip's RGB uint8 frames (generated lazily) and every object's boxes, (objects,
    frames, 4) xywh: the target first, then the distractors. The target is drawn over the
    distractors, each distractor over the ones before it; a hidden object's box stays where it is."""
    background = _background(_rng(spec, _BACKGROUND), spec.width, spec.height)
    target = _sprite(_rng(spec, _TARGET), spec)
    distractors = [_sprite(_rng(spec, _DISTRACTORS, k), spec) for k in range(spec.distractors)]
    if spec.lookalike:
        distractors = [
            _lookalike(_rng(spec, _DISTRACTORS, k, _LOOKALIKE), target, d) for k, d in enumerate(distractors)
        ]
    frames = _frames(spec, background, [*distractors, target], target.boxes)
    boxes = np.stack([s.boxes for s in (target, *distractors)]).astype(np.float64)
    return frames, boxes


def render_synthetic(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """All frames stacked as (N, H, W, 3) uint8, and the boxes; for small clips."""
    frames, boxes = synthetic_sequence(spec)
    return np.stack(list(frames)), boxes


def write_synthetic_video(path: str | os.PathLike[str], spec: SyntheticSpec) -> np.ndarray:
    """Write the clip as an H.264 video and return its (frames, 4) xywh boxes."""
    from .video import VideoWriter  # PyAV only where a clip is written: training renders them in memory

    frames, boxes = synthetic_sequence(spec)
    with VideoWriter(path, spec.width, spec.height, spec.fps) as writer:
        for frame in frames:
            writer.write(frame)
    return boxes


def _rng(spec: SyntheticSpec, *stream: int) -> np.random.Generator:
    return np.random.default_rng((spec.seed, *stream))


def _frames(
    spec: SyntheticSpec, background: np.ndarray, sprites: list[_Sprite], target_boxes: np.ndarray
) -> Iterator[np.ndarray]:
    noise_bank = _noise_bank(_rng(spec, _NOISE), spec.noise, background.size)
    for i in range(spec.frames):
        frame = background.copy()
        for sprite in sprites:
            x, y, w, h = sprite.boxes[i]
            frame[y : y + h, x : x + w] = cv2.resize(sprite.texture, (int(w), int(h)), interpolation=cv2.INTER_AREA)
        if spec.occlusion is not None and spec.occlusion[0] <= i < spec.occlusion[1]:
            x, _, w, _ = target_boxes[i]
            overhang = math.ceil(w * OCCLUDER_MARGIN)
            frame[:, max(x - overhang, 0) : x + w + overhang] = OCCLUDER_RGB
        if noise_bank is not None:
            offset = _rng(spec, _NOISE, i).integers(noise_bank.size - frame.size + 1)
            noise = noise_bank[offset : offset + frame.size].reshape(frame.shape)
            frame = cv2.add(frame, noise, dtype=cv2.CV_8U)
        yield frame


def _noise_bank(rng: np.random.Generator, std: float, size: int) -> np.ndarray | None:
    if std == 0:
        return None
    noise = rng.standard_normal(NOISE_BANK_FRAMES * size, dtype=np.float32) * std
    return np.rint(noise).astype(np.int16)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Smooth low-frequency colour blobs plus a linear brightness ramp."""
    cols, rows = BACKGROUND_CELLS
    coarse = rng.uniform(*BACKGROUND_LEVELS, size=(rows, cols, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (xs / max(width, 1)) * np.cos(angle) + (ys / max(height, 1)) * np.sin(angle)
    smooth += (BACKGROUND_GRADIENT * ramp)[..., None]
    return np.clip(np.rint(smooth), 0, UINT8_MAX).astype(np.uint8)


def _texture(rng: np.random.Generator) -> np.ndarray:
    """A vivid checkerboard of two colours overlaid with coloured discs."""
    colors = _vivid_colors(rng, 2 + OBJECT_BLOBS)
    cell = TEXTURE_SIZE // CHECKER_CELLS
    ys, xs = np.mgrid[0:TEXTURE_SIZE, 0:TEXTURE_SIZE]
    checker = ((ys // cell + xs // cell) % 2).astype(np.intp)
    texture = np.ascontiguousarray(colors[:2][checker])
    radii = rng.uniform(*BLOB_RADIUS, size=OBJECT_BLOBS) * TEXTURE_SIZE
    centers = rng.uniform(0, TEXTURE_SIZE, size=(OBJECT_BLOBS, 2))
    for color, radius, (cx, cy) in zip(colors[2:], radii, centers, strict=True):
        cv2.circle(texture, (int(cx), int(cy)), int(radius), color.tolist(), thickness=-1)
    return texture


def _vivid_colors(rng: np.random.Generator, count: int) -> np.ndarray:
    hsv = np.stack(
        [
            rng.integers(0, 180, count),  # OpenCV's 8-bit hue range is 0..179
            rng.integers(*OBJECT_SATURATION, size=count),
            rng.integers(*OBJECT_VALUE, size=count),
        ],
        axis=-1,
    ).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]


def _sprite(rng: np.random.Generator, spec: SyntheticSpec) -> _Sprite:
    """A texture with integer boxes: sinusoidal size along a Lissajous path at spec.speed."""
    texture = _texture(rng)
    w0, h0 = spec.object_size
    steps = np.arange(spec.frames)
    scale = 1 + spec.scale_amplitude * np.sin(2 * np.pi * steps / spec.frames)
    ws = np.maximum(np.rint(w0 * scale), MIN_BOX_SIZE).astype(np.int64)
    hs = np.maximum(np.rint(h0 * scale), MIN_BOX_SIZE).astype(np.int64)
    growth = 1 + abs(spec.scale_amplitude)
    cx, cy = _path(rng, spec, w0 * growth, h0 * growth)
    xs = np.clip(np.rint(cx - ws / 2), 0, spec.width - ws).astype(np.int64)
    ys = np.clip(np.rint(cy - hs / 2), 0, spec.height - hs).astype(np.int64)
    return _Sprite(texture, np.stack([xs, ys, ws, hs], axis=1))


def _lookalike(rng: np.random.Generator, target: _Sprite, own: _Sprite) -> _Sprite:
    """`own`'s path and sizes in `target`'s texture, every hue turned by LOOKALIKE_HUE_SHIFT."""
    shift = int(rng.integers(*LOOKALIKE_HUE_SHIFT)) * int(rng.choice([-1, 1]))
    hsv = cv2.cvtColor(target.texture, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int64) + shift) % 180).astype(np.uint8)  # 8-bit hue is 0..179
    return _Sprite(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), own.boxes)


def _path(rng: np.random.Generator, spec: SyntheticSpec, max_w: float, max_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres moving at spec.speed px/frame along a closed Lissajous curve.

    The curve keeps a max_w x max_h box inside the frame; it is sampled densely and
    walked by arc length so the speed is constant.
    """
    fx, fy = rng.choice(PATH_FREQUENCIES, size=2, replace=False)
    phase_x, phase_y, start = rng.uniform(0, 2 * np.pi, size=3)
    t = np.linspace(0, 2 * np.pi, PATH_SAMPLES + 1)
    curve_x = spec.width / 2 + (spec.width - max_w) / 2 * np.sin(fx * t + phase_x)
    curve_y = spec.height / 2 + (spec.height - max_h) / 2 * np.sin(fy * t + phase_y)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(curve_x), np.diff(curve_y)))])
    length = arc[-1]
    if length == 0:
        return np.full(spec.frames, curve_x[0]), np.full(spec.frames, curve_y[0])
    walked = (start / (2 * np.pi) * length + spec.speed * np.arange(spec.frames)) % length
    return np.interp(walked, arc, curve_x), np.interp(walked, arc, curve_y)
