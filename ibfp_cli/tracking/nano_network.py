"""NanoTrack v2's network run directly, not through OpenCV: its box for a template and a search window.

Two uses, neither needed to track: the network check measures NanoTrack's boxes on the same
frames and windows as IBFP's (`ibfp eval --network-check` with `nano` among the trackers), and
the campaign's teacher (`train/teacher.py`) reads its box on each training pair. Its windows
are cut as its own tracker cuts them (pysot convention): a template window of side
sqrt((w + c (w + h)) (h + c (w + h))) around the box, resized to 127 pixels, and a search window
255/127 times that around the box's centre, resized to 255.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..boxes import Box
from ..errors import TrackerUnavailable
from .contract import TrackerOutput
from .denormals import denormal_mode_kept
from .opencv_trackers import MODELS_ENV, NANO_BACKBONE, NANO_HEAD


@dataclass(frozen=True)
class NanoGeometry:
    """NanoTrack v2's crops and grid (its tracker's configuration)."""

    exemplar: int = 127  # template crop side (pysot EXEMPLAR_SIZE)
    instance: int = 255  # search crop side (pysot INSTANCE_SIZE)
    stride: int = 16  # its POINT.STRIDE
    score_size: int = 16  # (instance - exemplar) // stride + 1 + its BASE_SIZE 7
    context: float = 0.5  # pysot CONTEXT_AMOUNT: the template window's margin, a share of w + h

    def points(self) -> torch.Tensor:
        """Each score cell's offset from the search window's centre, its pixels: (score_size,)."""
        return (torch.arange(self.score_size, dtype=torch.float32) - self.score_size // 2) * self.stride

    def template_side(self, sizes: torch.Tensor) -> torch.Tensor:
        """Side of the template window around boxes of sizes (B, 2) w, h -> (B,)."""
        margin = self.context * sizes.sum(1)
        return torch.sqrt((sizes[:, 0] + margin) * (sizes[:, 1] + margin))


@dataclass(frozen=True)
class NanoPick:
    """How the peak is chosen on its score map: its tracker's cosine window and size-change
    penalty (OpenCV's TrackerNano, NanoTrack v2's settings), or neither (RAW_PEAK)."""

    window_influence: float = 0.455  # its WINDOW_INFLUENCE
    penalty_k: float = 0.15  # its PENALTY_K


RAW_PEAK = NanoPick(0.0, 0.0)


def windows(images: torch.Tensor, centres: torch.Tensor, sides: torch.Tensor, out: int) -> torch.Tensor:
    """Square windows of `images` (B, 3, H, W), centred at `centres` (B, 2) x, y with sides
    `sides` (B,) in their pixels, resized to out x out; outside the image, each image's mean
    colour (pysot pads with it). -> (B, 3, out, out)."""
    height, width = images.shape[-2:]
    mean = images.mean(dim=(2, 3), keepdim=True)
    theta = torch.zeros(len(images), 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = sides / width, sides / height
    theta[:, 0, 2], theta[:, 1, 2] = 2 * centres[:, 0] / width - 1, 2 * centres[:, 1] / height - 1
    grid = F.affine_grid(theta, [len(images), 3, out, out], align_corners=False)
    return F.grid_sample(images - mean, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + mean


def models_folder(models_dir: Path | None) -> Path:
    """The first of `models_dir` and $IBFP_OPENCV_MODELS that holds NanoTrack's two files."""
    candidates = [models_dir, Path(os.environ[MODELS_ENV]) if os.environ.get(MODELS_ENV) else None]
    for folder in candidates:
        if folder is not None and all((folder / f).is_file() for f in (NANO_BACKBONE, NANO_HEAD)):
            return folder
    raise TrackerUnavailable(
        f"NanoTrack's network needs {NANO_BACKBONE} and {NANO_HEAD}: pass their folder or name it in ${MODELS_ENV}"
    )


class NanoNetwork:
    """NanoTrack v2's two ONNX graphs, run one pair at a time (their shapes are fixed to one)."""

    def __init__(self, models_dir: Path | None = None, geometry: NanoGeometry | None = None) -> None:
        import onnxruntime as ort

        folder = models_folder(models_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        with denormal_mode_kept():  # session creation turns the training thread's flushing off
            self.backbone = ort.InferenceSession(_any_side(folder / NANO_BACKBONE), options, ["CPUExecutionProvider"])
            self.head = ort.InferenceSession(str(folder / NANO_HEAD), options, ["CPUExecutionProvider"])
        self.geometry = geometry or NanoGeometry()

    def raw(self, template: torch.Tensor, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Its outputs on its own crops: template (B, 3, 127, 127) and search (B, 3, 255, 255), RGB
        0..255 -> foreground probability (B, 16, 16) and l, t, r, b (B, 4, 16, 16), its pixels."""
        scores, boxes = [], []
        for z, x in zip(_bgr(template), _bgr(search)):
            (fz,) = self.backbone.run(None, {"input": z[None]})
            (fx,) = self.backbone.run(None, {"input": x[None]})
            cls, loc = self.head.run(None, {"input1": fz, "input2": fx})
            scores.append(torch.from_numpy(cls[0]).softmax(0)[1])
            boxes.append(torch.from_numpy(loc[0]))
        return torch.stack(scores), torch.stack(boxes)

    @torch.no_grad()
    def boxes(
        self,
        templates: torch.Tensor,
        template_boxes: torch.Tensor,
        searches: torch.Tensor,
        search_boxes: torch.Tensor,
        growth: float = 1.0,
        pick: NanoPick = RAW_PEAK,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Its box on each search image, cut around search_boxes (B, 4) x, y, w, h as its tracker
        cuts around its last box (`growth` times wider), with the template cut around
        template_boxes (B, 4) from templates (B, 3, H, W); images RGB 0..255.
        -> boxes (B, 4) x, y, w, h in the search images' pixels, and their scores (B,)."""
        g = self.geometry
        side_z = g.template_side(template_boxes[:, 2:])
        side_x = g.template_side(search_boxes[:, 2:]) * g.instance / g.exemplar * growth
        centres_z = template_boxes[:, :2] + template_boxes[:, 2:] / 2
        centres_x = search_boxes[:, :2] + search_boxes[:, 2:] / 2
        score, ltrb = self.raw(
            windows(templates, centres_z, side_z, g.exemplar), windows(searches, centres_x, side_x, g.instance)
        )
        scale = side_x / g.instance  # image pixels per pixel of its search window
        last = search_boxes[:, 2:] / scale[:, None]  # the box its window was cut for, its pixels
        peak = self._peaks(score, ltrb, last, pick)
        row, col = peak // g.score_size, peak % g.score_size
        every = torch.arange(len(peak))
        left, top, right, bottom = ltrb[every, :, row, col].unbind(1)
        px, py = g.points()[col], g.points()[row]
        found = torch.stack([px - left, py - top, left + right, top + bottom], 1) * scale[:, None]
        found[:, :2] += centres_x
        return found, score.flatten(1)[every, peak]

    def _peaks(self, score: torch.Tensor, ltrb: torch.Tensor, last: torch.Tensor, pick: NanoPick) -> torch.Tensor:
        """Flat index of the chosen cell of each score map (B, 16, 16): score x size-change penalty
        against `last` (B, 2) w, h, blended with a cosine window (SiamRPN++'s choice, NanoTrack's)."""
        chosen = score
        if pick.penalty_k:
            w, h = ltrb[:, 0] + ltrb[:, 2], ltrb[:, 1] + ltrb[:, 3]
            lw, lh = last[:, 0].view(-1, 1, 1), last[:, 1].view(-1, 1, 1)

            def padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
                return torch.sqrt((a + (a + b) / 2) * (b + (a + b) / 2))

            def change(r: torch.Tensor) -> torch.Tensor:
                return torch.maximum(r, 1 / r)

            s_c = change(padded(w, h) / padded(lw, lh))
            r_c = change((lw / lh) / (w / h).clamp(min=1e-6))
            chosen = chosen * torch.exp(-(r_c * s_c - 1) * pick.penalty_k)
        if pick.window_influence:
            hann = torch.from_numpy(np.outer(*[np.hanning(self.geometry.score_size)] * 2)).float()
            chosen = chosen * (1 - pick.window_influence) + hann * pick.window_influence
        return chosen.flatten(1).argmax(1)


class NanoMeasurer:
    """NanoTrack's network as the network check's box measurer (`evaluate.boxfit.BoxMeasurer`):
    its template cut on the first frame, its box for a window cut around a known box, chosen as
    its tracker chooses (cosine window, size-change penalty), nothing smoothed."""

    def __init__(self, network: NanoNetwork, pick: NanoPick | None = None) -> None:
        self.network, self.pick = network, pick or NanoPick()
        self.template: tuple[torch.Tensor, torch.Tensor] | None = None

    def init(self, frame: np.ndarray, box: Box) -> None:
        """Keep the first frame (RGB uint8) and its box as the template."""
        self.template = (_image(frame), torch.tensor([box.xywh()], dtype=torch.float32))

    def measure(self, frame: np.ndarray, box: Box, growth: float = 1.0) -> TrackerOutput:
        """Its box on `frame` for a window cut around `box`, `growth` times wider."""
        if self.template is None:
            raise TrackerUnavailable("NanoMeasurer.measure called before init")
        found, score = self.network.boxes(
            *self.template, _image(frame), torch.tensor([box.xywh()], dtype=torch.float32), growth, self.pick
        )
        return TrackerOutput(Box(*found[0].tolist()), float(score[0]), lost=False)


def _image(frame: np.ndarray) -> torch.Tensor:
    """An RGB uint8 frame (H, W, 3) as a float batch of one (1, 3, H, W)."""
    return torch.from_numpy(frame).permute(2, 0, 1)[None].float()


def _bgr(images: torch.Tensor) -> np.ndarray:
    """RGB 0..255 float crops (B, 3, S, S) as NanoTrack reads them: BGR, float32, not normalised."""
    return np.ascontiguousarray(images.flip(1).numpy(), dtype=np.float32)


def _any_side(path: Path) -> bytes:
    """The backbone graph with its input's height and width left free (its file fixes them to the
    search crop's 255; OpenCV, which it was written for, runs the template crop through it too)."""
    import onnx

    model = onnx.load(str(path))
    del model.graph.value_info[:]  # shapes inferred for 255 only
    for value in (*model.graph.input, *model.graph.output):
        for axis in (2, 3):
            dim = value.type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_value")
            dim.dim_param = f"{value.name}_{axis}"
    return model.SerializeToString()
