"""IBFPTracker: crop, run the network, post-process, keep the online state."""

from __future__ import annotations

import contextlib
import functools
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..boxes import Box, iou
from ..config import LossConfig, TrackerConfig, from_dict, overridden
from ..errors import IBFPError
from ..model.ibfp import IBFP, Prediction, Template
from ..model.labels import gaussian_labels
from ..model.online import fit_filter
from ..model.xcorr import trim_kernel
from .backends import Backend, network, pick_backend
from .contract import TrackerOutput
from .crop import CropWindow, context_window
from .distractors import DistractorMemory
from .identity import certainty, colour_distance, colour_signature, reassign
from .neighbours import merge_losers, neighbour_mask
from .threads import one_torch_thread
from .weights import load_model, resolve_weights

CPU_THREADS_MAX = 4  # beyond this, per-frame work is too small for more threads to help
AUGMENT_SHIFT = 0.3  # first-frame copies shifted by up to 0.3 target sizes (spec 4)
AUGMENT_SCALE = 0.1  # ... and scaled by up to +-10%
AUGMENT_BLUR_SIGMA = 1.0  # ... one blurred copy, one flipped copy


def pick_device(device: str = "auto") -> torch.device:
    """'auto' is CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise IBFPError("--device cuda asked for, but torch sees no CUDA GPU")
    if device not in ("cpu", "cuda"):
        raise IBFPError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


@functools.lru_cache(maxsize=2)
def _shared_model(path: Path, device: str) -> tuple[IBFP, dict]:
    """One loaded network per weights file and device, shared by every object's tracker
    (inference only, so sharing is safe)."""
    with one_torch_thread():
        return load_model(path, device)


class StageTimes:
    """Seconds spent per stage of `update` (crop, backbone, fusion+head, post, online).

    With `sync` (CUDA), each stage waits for the GPU so its time is its own.
    """

    def __init__(self, sync: bool) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.frames = 0
        self.sync = sync

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if self.sync:
            torch.cuda.synchronize()
        self.seconds[stage] += time.perf_counter() - start

    def reset(self) -> None:
        """Forget what was timed so far."""
        self.seconds.clear()
        self.frames = 0


@dataclass
class OnlineMemory:
    """Bounded memory of (adapted feature, label, cell weights) samples; the first frame's are kept."""

    capacity: int
    features: list[torch.Tensor] = field(default_factory=list)  # each (D, H16, W16)
    labels: list[torch.Tensor] = field(default_factory=list)  # each (1, H16, W16)
    weights: list[torch.Tensor] = field(default_factory=list)  # each (1, H16, W16), 1 but on neighbours
    permanent: int = 0

    def add(
        self, feature: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None = None, permanent: bool = False
    ) -> None:
        if len(self.features) >= self.capacity:
            del self.features[self.permanent], self.labels[self.permanent], self.weights[self.permanent]
        self.features.append(feature)
        self.labels.append(label)
        self.weights.append(torch.ones_like(label) if weight is None else weight)
        self.permanent += int(permanent)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """X (N, D, H16, W16), Y (N, 1, H16, W16) and cell weights (N, 1, H16, W16), each sample's
        weights 1 / N but on its neighbours' cells."""
        X, Y, W = torch.stack(self.features), torch.stack(self.labels), torch.stack(self.weights)
        return X, Y, W / len(X)


@dataclass(frozen=True)
class Peak:
    """The network's answer on one search crop: the box decoded at the score peak (frame
    pixels), the peak's score clipped to [0, 1], and its size-change penalty."""

    box: Box
    confidence: float
    penalty: float
    rival: Box | None = None
    """The box at the strongest cell outside `box` (frame pixels), when asked for."""
    rival_score: float = 0.0


class IBFPTracker:
    """The IBFP tracker behind the SingleObjectTracker contract.

    `device`: auto (CUDA when torch sees a GPU), cpu or cuda. `backend`: how the network runs,
    onnx (ONNX Runtime, CPU only), torch, or auto (onnx on the CPU when onnxruntime is
    installed, else torch); see ibfp_cli.tracking.backends.
    """

    name = "ibfp"

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "auto",
        config: TrackerConfig | None = None,
        model: IBFP | None = None,
        profile: bool = False,
        backend: Backend = "auto",
    ) -> None:
        self.device = pick_device(device)
        self.backend = pick_backend(backend, self.device)
        self.times = StageTimes(sync=profile and self.device.type == "cuda")
        if self.device.type == "cpu" and torch.get_num_threads() > CPU_THREADS_MAX:
            torch.set_num_threads(CPU_THREADS_MAX)  # lower settings (a parallel runner's 1) stay
        if model is None:
            model, self.meta = _shared_model(resolve_weights(weights).resolve(), str(self.device))
        else:
            self.meta = {}
        self.model = model.to(self.device).eval()
        self.network = network(self.model, self.backend, self.device)
        self.config = config or from_dict(TrackerConfig, self.meta.get("tracker", {}))
        self.loss = LossConfig()
        mc = self.model.config
        self.size8 = mc.input_size // mc.strides[0]
        hann = torch.hann_window(self.size8 + 2, periodic=False, device=self.device)[1:-1]
        self.window = torch.outer(hann, hann)
        self.template: Template | None = None

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def init(self, frame: np.ndarray, box: Box) -> None:
        """Compute the template once and fit the online template on augmented first-frame copies."""
        cfg, mc = self.config, self.model.config
        self.frame_size = (frame.shape[1], frame.shape[0])
        self.box = box
        self.search_growth = 1.0
        self.frames_since_update = 0
        self.lost = False
        self.signature = colour_signature(frame, box)
        self.distractors = DistractorMemory(cfg.distractor_frames, cfg.distractor_forget)
        window = context_window(box, cfg.search_area_scale, mc.input_size)
        crop_box = window.to_crop(box)
        z = self.network.features(window.crop(frame)[None])
        boxes = torch.tensor([crop_box.xywh()], device=self.device)
        with self._autocast(), self._small_work():
            t = self.model.template(z, boxes)
        # T8 meets the search feature only through "same" correlation, so its zero border can go
        # (same output, less work). T16 and T32 first pass through CSCS, whose biased 1x1
        # convolutions fill that border: they keep the padded size they were trained with.
        self.template = Template(trim_kernel(t.T8.float()), t.T16.float(), t.T32.float(), t.online_filter.float())
        self.memory = OnlineMemory(cfg.online_memory)
        self.bias = (0.0, 0.0)
        if not (cfg.use_online or cfg.first_frame_bias):
            return
        crops, crop_boxes = self._augmented(frame, box)
        x = self.network.features(crops)
        if cfg.first_frame_bias:
            size, aspect = self._first_frame_bias(x, [Box(*b) for b in crop_boxes])
            self.bias = (cfg.first_frame_bias * size, cfg.first_frame_bias * aspect)
        if cfg.use_online:
            with self._small_work():
                with self._autocast():
                    feats = self.model.online(x[1]).float()
                labels = self._online_labels(
                    torch.tensor(crop_boxes, device=self.device, dtype=torch.float32), feats.shape[-1]
                )
                for f, y in zip(feats, labels):
                    self.memory.add(f, y, permanent=True)
                self._fit(cfg.online_init_steps)

    def _small_work(self) -> contextlib.AbstractContextManager:
        """On the CPU, the tracker's own torch work (not the network's) runs on one thread."""
        return one_torch_thread() if self.device.type == "cpu" else contextlib.nullcontext()

    def _first_frame_bias(self, x: tuple[torch.Tensor, ...], truths: list[Box]) -> tuple[float, float]:
        """(log size, log aspect) of the head's boxes over the true ones on the first frame's
        copies (median over copies): this target's own box bias, which later frames share."""
        pred = self.network.predict(Template.stack([self.template] * len(truths)), x)
        size, aspect = [], []
        for n, truth in enumerate(truths):
            own = pred.select(n)
            ltrb = own.ltrb[0].float()
            with self._small_work():
                idx = torch.argmax(own.centre[0, 0].float() * self._size_penalty(ltrb, truth))
            l, t, r, b = ltrb.flatten(1)[:, idx].tolist()
            w, h = max(l + r, 1e-3), max(t + b, 1e-3)
            size.append(0.5 * np.log(w * h / (truth.w * truth.h)))
            aspect.append(np.log((w / h) / (truth.w / truth.h)))
        return float(np.median(size)), float(np.median(aspect))

    def _augmented(self, frame: np.ndarray, box: Box) -> tuple[np.ndarray, list[tuple[float, ...]]]:
        """First-frame copies: the plain crop, shifted and scaled ones, a flip and a blur."""
        cfg, size = self.config, self.model.config.input_size
        rng = np.random.default_rng(0)
        crops, boxes = [], []
        base = context_window(box, cfg.search_area_scale, size)
        for i in range(cfg.online_init_augments):
            dx, dy = (rng.uniform(-AUGMENT_SHIFT, AUGMENT_SHIFT, 2) * [box.w, box.h]) if i else (0.0, 0.0)
            scale = float(np.exp(rng.uniform(-AUGMENT_SCALE, AUGMENT_SCALE))) if i else 1.0
            window = CropWindow(base.cx + dx, base.cy + dy, base.side * scale, size)
            crop, crop_box = window.crop(frame), window.to_crop(box)
            if i == 1:  # horizontal flip
                crop = crop[:, ::-1]
                crop_box = Box(size - crop_box.x2, crop_box.y, crop_box.w, crop_box.h)
            if i == 2:
                crop = cv2.GaussianBlur(crop, (0, 0), AUGMENT_BLUR_SIGMA)
            crops.append(crop)
            boxes.append(crop_box.xywh())
        return np.stack(crops), boxes

    def _online_labels(self, boxes: torch.Tensor, size: int) -> torch.Tensor:
        return gaussian_labels(boxes, size, self.model.config.online_stride, self.loss.sigma)

    def _fit(self, steps: int) -> None:
        X, Y, w = self.memory.tensors()
        f = fit_filter(self.template.online_filter, X, Y, w, steps, self.config.online_regularization, self.loss.tau)
        self.template.online_filter = f
        self.frames_since_update = 0

    @torch.inference_mode()
    def update(self, frame: np.ndarray) -> TrackerOutput:
        """Search around the last position; decode, smooth and clamp the box; update online."""
        return IBFPTracker.update_many([self], frame)[0]

    @staticmethod
    @torch.inference_mode()
    def update_many(trackers: Sequence[IBFPTracker], frame: np.ndarray) -> list[TrackerOutput]:
        """`update` for several objects on one frame: the search crops of trackers that share a
        network go through it (backbone, fusion, head) as one batch, on every backend and device."""
        groups: dict[int, list[int]] = defaultdict(list)
        for i, tracker in enumerate(trackers):
            if tracker.template is None:
                raise IBFPError("IBFPTracker.update called before init")
            groups[id(tracker.network)].append(i)
        outputs: dict[int, TrackerOutput] = {}
        for members in groups.values():
            group = [trackers[i] for i in members]
            outputs.update(zip(members, IBFPTracker._update_group(group, frame)))
        return [outputs[i] for i in range(len(trackers))]

    @staticmethod
    def _update_group(group: list[IBFPTracker], frame: np.ndarray) -> list[TrackerOutput]:
        """Trackers sharing one network (the objects of one video): one batch through the
        backbone, fusion and head, then each object's own post-processing and online step.
        With `use_neighbours`, each object's peak is chosen away from the other found objects'
        last boxes, of two found boxes on one target the lower-scoring gives way, and the online
        refits take the others' boxes as hard negatives. Shared stages are timed on the first."""
        lead = group[0]
        for tracker in group:
            tracker.times.frames += 1
        windows = [tracker._search_window() for tracker in group]
        with lead.times("crop"):
            crops = np.stack([w.crop(frame) for w in windows])  # (N, S, S, 3) uint8
        with lead.times("backbone"):
            x = lead.network.features(crops)  # (N, c, S/s, S/s) per stride
        with lead.times("fusion+head"):
            pred = lead.network.predict(Template.stack([t.template for t in group]), x)
        previous = [tracker.box for tracker in group]
        found_before = [not tracker.lost for tracker in group]
        outputs = []
        with lead._small_work():
            for n, (tracker, window) in enumerate(zip(group, windows)):
                with tracker.times("post"):
                    outputs.append(tracker._locate(pred.select(n), window, _others(group, n, previous, found_before)))
            changed: set[int] = set()
            agreement = [out.score for out in outputs]
            if len(group) > 1 and lead.config.use_identity:
                with lead.times("post"):
                    changed = _keep_identities(group, frame, windows, outputs)
                    agreement = _doubt_contested(group, frame, outputs)
            if len(group) > 1 and lead.config.use_neighbours:
                with lead.times("post"):
                    found = [not out.lost for out in outputs]
                    for n in merge_losers([o.box for o in outputs], agreement, found, lead.config.merge_iou):
                        outputs[n] = group[n]._give_way(previous[n], outputs[n].score)
            found = [not out.lost for out in outputs]
            current = [out.box for out in outputs]
            for n, (tracker, window, out) in enumerate(zip(group, windows, outputs)):
                if tracker.config.use_online and not out.lost and n not in changed:
                    own = pred.select(n)
                    with tracker.times("online"):
                        feature, response = own.online_feature[0].float(), own.online[0, 0].float()
                        tracker._online_step(feature, response, window, out.score, _others(group, n, current, found))
        return outputs

    def _search_window(self) -> CropWindow:
        """The context window around the last box, grown while the object is lost."""
        base = context_window(self.box, self.config.search_area_scale, self.model.config.input_size)
        return CropWindow(base.cx, base.cy, base.side * self.search_growth, base.out_size)

    def _locate(self, pred: Prediction, window: CropWindow, neighbours: Sequence[Box] = ()) -> TrackerOutput:
        """Pick the peak (away from `neighbours`, other objects' boxes in frame pixels), decode it,
        then smooth and clamp the box (or flag the object lost)."""
        cfg = self.config
        damped = [*neighbours, *self.distractors.active()] if cfg.use_distractors else neighbours
        peak = self._peak(pred, window, neighbours=damped, rival=cfg.use_distractors)
        self.lost = peak.confidence < cfg.lost_threshold
        if self.lost:
            self.distractors.clear()
            self._grow_search()
            return TrackerOutput(self.box, peak.confidence, True)
        if cfg.use_distractors:
            strong = peak.rival_score >= cfg.distractor_ratio * peak.confidence
            self.distractors.observe(peak.rival if strong else None)
        self.search_growth = 1.0
        lr = peak.penalty * peak.confidence * cfg.size_lr
        w = self.box.w * (1 - lr) + peak.box.w * lr
        h = self.box.h * (1 - lr) + peak.box.h * lr
        self.box = self._clamp(Box.from_center(peak.box.cx, peak.box.cy, w, h))
        return TrackerOutput(self.box, peak.confidence, False)

    def _grow_search(self) -> None:
        cfg = self.config
        self.search_growth = min(self.search_growth * cfg.lost_search_growth, cfg.lost_search_max)

    def _take(self, output: TrackerOutput) -> TrackerOutput:
        """Another track's found box is this object's: hold it from here."""
        self.box, self.lost, self.search_growth = output.box, False, 1.0
        return output

    def _give_way(self, previous: Box, score: float) -> TrackerOutput:
        """Another object's box holds this target: keep the last box and count as lost."""
        self.box, self.lost = previous, True
        self._grow_search()
        return TrackerOutput(previous, score, True)

    def _peak(
        self,
        pred: Prediction,
        window: CropWindow,
        unbias: bool = True,
        neighbours: Sequence[Box] = (),
        rival: bool = False,
    ) -> Peak:
        """Mix the maps, penalise size change, damp the cells of `neighbours` (frame pixels), pick
        the peak and decode its box (frame pixels); `unbias`: with the first frame's box bias
        taken out; `rival`: also the strongest undamped cell outside the peak's box."""
        cfg, mc = self.config, self.model.config
        centre = pred.centre[0, 0].float()
        score = centre
        if cfg.use_online:
            online = F.interpolate(pred.online.float(), size=centre.shape, mode="bilinear", align_corners=False)[0, 0]
            score = cfg.offline_weight * centre + cfg.online_weight * online
        ltrb = self._unbiased(pred.ltrb[0].float()) if unbias else pred.ltrb[0].float()  # (4, H, W) crop pixels
        penalty = self._size_penalty(ltrb, window.to_crop(self.box))
        pscore = score * penalty
        pscore = pscore * (1 - cfg.window_influence) + self.window * cfg.window_influence
        undamped = pscore
        damped = self._neighbour_cells(window, neighbours, self.size8, mc.strides[0])
        if damped is not None:
            pscore = torch.where(damped, pscore * (1 - cfg.neighbour_damping), pscore)
        idx = torch.argmax(pscore)
        # one device-to-host copy per frame: peak index, its score, penalty and l, t, r, b
        values = torch.stack([idx.float(), score.flatten()[idx], penalty.flatten()[idx], *ltrb.flatten(1)[:, idx]])
        flat, raw_score, peak_penalty, l, t, r, b = values.tolist()
        iy, ix = divmod(int(flat), score.shape[1])
        stride = mc.strides[0]
        px, py = (ix + 0.5) * stride, (iy + 0.5) * stride
        own = Box.from_xyxy(px - l, py - t, px + r, py + b)  # crop pixels
        peak = Peak(window.to_frame(own), min(max(raw_score, 0.0), 1.0), peak_penalty)
        if not rival:
            return peak
        centres = (torch.arange(score.shape[0], device=score.device, dtype=torch.float32) + 0.5) * stride
        ys, xs = centres[:, None], centres[None, :]
        inside = (xs >= own.x) & (xs <= own.x2) & (ys >= own.y) & (ys <= own.y2)
        other = torch.argmax(torch.where(inside, float("-inf"), undamped))
        values = torch.stack([other.float(), score.flatten()[other], *ltrb.flatten(1)[:, other]])
        flat, rival_score, l, t, r, b = values.tolist()
        iy, ix = divmod(int(flat), score.shape[1])
        px, py = (ix + 0.5) * stride, (iy + 0.5) * stride
        found = window.to_frame(Box.from_xyxy(px - l, py - t, px + r, py + b))
        return replace(peak, rival=found, rival_score=min(max(rival_score, 0.0), 1.0))

    def _neighbour_cells(
        self, window: CropWindow, neighbours: Sequence[Box], size: int, stride: int
    ) -> torch.Tensor | None:
        """(size, size) bool map of the search crop's cells that belong to `neighbours`
        (`neighbours.neighbour_mask`), None when none of them reaches into the crop."""
        inside = [
            b
            for b in (window.to_crop(n) for n in neighbours)
            if b.x2 > 0 and b.y2 > 0 and b.x < window.out_size and b.y < window.out_size
        ]
        if not inside:
            return None
        return neighbour_mask(window.to_crop(self.box), inside, size, stride).to(self.device)

    @torch.inference_mode()
    def measure(self, frame: np.ndarray, box: Box, growth: float = 1.0) -> Peak:
        """The network's own box for an object whose true box is known: the search crop is
        centred on `box` at its scale (`growth` times wider, as after lost frames), and nothing
        is smoothed or refitted (the tracker's box becomes `box`, so the size penalty compares
        with the truth)."""
        if self.template is None:
            raise IBFPError("IBFPTracker.measure called before init")
        self.box, self.search_growth = box, growth
        window = self._search_window()
        pred = self.network.predict(self.template, self.network.features(window.crop(frame)[None]))
        return self._peak(pred, window, unbias=False)

    def _unbiased(self, ltrb: torch.Tensor) -> torch.Tensor:
        """(4, H, W) l, t, r, b with each cell's box resized about its centre to undo self.bias."""
        size, aspect = self.bias
        if size == 0.0 and aspect == 0.0:
            return ltrb
        fw, fh = np.exp(-size - aspect / 2), np.exp(-size + aspect / 2)
        cx, cy = (ltrb[2] - ltrb[0]) / 2, (ltrb[3] - ltrb[1]) / 2  # box centre from the cell
        w, h = (ltrb[0] + ltrb[2]) * fw / 2, (ltrb[1] + ltrb[3]) * fh / 2
        return torch.stack([w - cx, h - cy, w + cx, h + cy])

    def _size_penalty(self, ltrb: torch.Tensor, last: Box) -> torch.Tensor:
        """exp(-k (r_c s_c - 1)): scale and aspect change of each cell's box against the last
        box, `last` in crop pixels (SiamRPN++)."""
        w, h = ltrb[0] + ltrb[2], ltrb[1] + ltrb[3]

        def change(r: torch.Tensor) -> torch.Tensor:
            return torch.maximum(r, 1.0 / r)

        def sz(w_: torch.Tensor | float, h_: torch.Tensor | float) -> torch.Tensor:
            pad = (w_ + h_) * 0.5
            return torch.sqrt(torch.as_tensor((w_ + pad) * (h_ + pad)))

        s_c = change(sz(w, h) / sz(last.w, last.h))
        r_c = change((last.w / last.h) / (w / h).clamp(min=1e-6))
        return torch.exp(-(r_c * s_c - 1) * self.config.size_penalty_k)

    def _clamp(self, box: Box) -> Box:
        """Centre inside the frame, size within [min_size, frame size]."""
        fw, fh = self.frame_size
        cx, cy = min(max(box.cx, 0.0), fw), min(max(box.cy, 0.0), fh)
        w = min(max(box.w, self.config.min_size), fw)
        h = min(max(box.h, self.config.min_size), fh)
        return Box.from_center(cx, cy, w, h)

    def _online_step(
        self,
        feature: torch.Tensor,
        response: torch.Tensor,
        window: CropWindow,
        confidence: float,
        neighbours: Sequence[Box] = (),
    ) -> None:
        """Memorise a confident frame, `neighbours`' cells weighted as hard negatives; refit every
        `online_interval` frames or on a hard negative."""
        cfg = self.config
        self.frames_since_update += 1
        if confidence >= cfg.online_min_score:
            size = feature.shape[-1]
            crop_box = torch.tensor([window.to_crop(self.box).xywh()], device=self.device, dtype=torch.float32)
            label = self._online_labels(crop_box, size)[0]  # (1, H16, W16)
            weight = None
            negatives = self._neighbour_cells(window, neighbours, size, self.model.config.online_stride)
            if negatives is not None:
                weight = 1 + cfg.neighbour_negative_weight * negatives[None].float()  # (1, H16, W16)
            self.memory.add(feature, label, weight)
        if self.frames_since_update >= cfg.online_interval or self._hard_negative(response):
            self._fit(cfg.online_update_steps)

    def _hard_negative(self, response: torch.Tensor) -> bool:
        """A second peak, away from the first, at least hard_negative_ratio as strong."""
        peak = float(response.max())
        if peak <= 0:
            return False
        iy, ix = divmod(int(torch.argmax(response)), response.shape[1])
        r = self.config.hard_negative_exclusion
        masked = response.clone()
        masked[max(iy - r, 0) : iy + r + 1, max(ix - r, 0) : ix + r + 1] = float("-inf")
        return float(masked.max()) >= self.config.hard_negative_ratio * peak


def _others(group: Sequence[IBFPTracker], n: int, boxes: Sequence[Box], found: Sequence[bool]) -> list[Box]:
    """The boxes of the found objects other than `n`, when object `n` takes its neighbours into account."""
    if not group[n].config.use_neighbours:
        return []
    return [box for m, (box, ok) in enumerate(zip(boxes, found)) if m != n and ok]


def _keep_identities(
    group: Sequence[IBFPTracker], frame: np.ndarray, windows: Sequence[CropWindow], outputs: list[TrackerOutput]
) -> set[int]:
    """Give boxes held by the wrong tracks back by colour (`identity.reassign`); `outputs` is
    changed in place. The indices of the tracks whose box changed, which skip this frame's
    online step (their search crop was not around that box)."""
    found = [not out.lost for out in outputs]
    colours = [colour_signature(frame, out.box) if ok else None for out, ok in zip(outputs, found)]
    count = len(group)
    distance = np.ones((count, count))  # (tracks, boxes); a lost track's column is never read
    near = np.zeros((count, count), dtype=bool)  # [k, i]: box i inside track k's search window
    for i, colour in enumerate(colours):
        if colour is None:
            continue
        box = outputs[i].box
        for k, (tracker, window) in enumerate(zip(group, windows)):
            distance[k, i] = colour_distance(tracker.signature, colour)
            near[k, i] = abs(box.cx - window.cx) <= window.side / 2 and abs(box.cy - window.cy) <= window.side / 2
    change = reassign(distance, found, near, group[0].config.identity_margin)
    for i, k in change.swaps:
        outputs[i], outputs[k] = group[i]._take(outputs[k]), group[k]._take(outputs[i])
    for holder, owner in change.handovers:
        given = outputs[holder]
        outputs[owner] = group[owner]._take(given)
        outputs[holder] = group[holder]._give_way(given.box, given.score)
    return {t for pair in change.swaps + change.handovers for t in pair}


def _doubt_contested(group: Sequence[IBFPTracker], frame: np.ndarray, outputs: list[TrackerOutput]) -> list[float]:
    """Scale each found box's score by `identity.certainty` against the objects whose boxes it
    overlaps (`outputs` changed in place). Each track's colour agreement with its box (1 - colour
    distance), by which of two boxes on one target the other gives way."""
    doubt = group[0].config.identity_doubt
    agreement = [0.0] * len(group)
    for i, out in enumerate(outputs):
        if out.lost:
            continue
        colour = colour_signature(frame, out.box)
        own = colour_distance(group[i].signature, colour)
        rivals = [
            colour_distance(other.signature, colour)
            for k, other in enumerate(group)
            if k != i and iou(out.box, other.box) > 0
        ]
        outputs[i] = TrackerOutput(out.box, out.score * certainty(own, rivals, doubt), False)
        agreement[i] = 1.0 - own
    return agreement


def create(
    device: str = "auto",
    weights: str | Path | None = None,
    backend: Backend = "auto",
    tracker_config: dict[str, Any] | None = None,
    **_: object,
) -> IBFPTracker:
    """Registry factory for "ibfp" (other trackers' options are ignored). `tracker_config`:
    TrackerConfig fields set over the weights' own settings (`config.parse_settings`)."""
    tracker = IBFPTracker(weights=weights, device=device, backend=backend)
    tracker.config = overridden(tracker.config, tracker_config or {})
    return tracker
