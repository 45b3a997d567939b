"""Square crops with context around a target, and box mapping between frame and crop."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..boxes import Box


@dataclass(frozen=True, slots=True)
class CropWindow:
    """A square frame region (centre cx, cy and side, frame pixels) resized to out_size."""

    cx: float
    cy: float
    side: float
    out_size: int

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel."""
        return self.out_size / self.side

    def to_crop(self, box: Box) -> Box:
        a = self.scale
        return Box((box.x - self.cx + self.side / 2) * a, (box.y - self.cy + self.side / 2) * a, box.w * a, box.h * a)

    def to_frame(self, box: Box) -> Box:
        a = self.scale
        return Box(box.x / a + self.cx - self.side / 2, box.y / a + self.cy - self.side / 2, box.w / a, box.h / a)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The window resampled to (out_size, out_size, 3); outside the frame is the mean colour."""
        a = self.scale
        x0, y0 = self.cx - self.side / 2, self.cy - self.side / 2
        # continuous coordinates (pixel centres at k + 0.5): u = a * (x - x0)
        m = np.array([[a, 0.0, a * (0.5 - x0) - 0.5], [0.0, a, a * (0.5 - y0) - 0.5]])
        fill = cv2.mean(image)[: image.shape[-1]]
        interp = cv2.INTER_AREA if a < 1 else cv2.INTER_LINEAR
        return cv2.warpAffine(
            image, m, (self.out_size, self.out_size), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
        )


def context_window(box: Box, area_scale: float, out_size: int) -> CropWindow:
    """The square window of side area_scale * sqrt(w * h) centred on the box (spec 1)."""
    side = area_scale * float(np.sqrt(max(box.w, 1.0) * max(box.h, 1.0)))
    return CropWindow(box.cx, box.cy, side, out_size)
