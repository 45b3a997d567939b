"""int8 versions of the two ONNX graphs: ONNX Runtime's static quantization, calibrated on
generated clips, cached beside the fp32 graphs.

What is quantized was chosen by measurement (README, "Speed"): in the backbone every layer
whose output is at stride 8 or coarser (the first, high-resolution layers stay fp32: quantized,
they move the stride-8 features by 28% RMS and boxes by up to 17 px); in the head graph the
convolutions with fixed weights (the correlations with the templates, the transposed
convolutions and the GroupNorms stay fp32). Calibration runs the fp32 graphs on generated clips
(`media.synthetic`), so it needs no data set, is the same on every machine and never sees a
validation sequence; it takes a few seconds once per weights file.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import shape_inference

from ..boxes import Box
from ..media.synthetic import SyntheticSpec, render_synthetic
from ..model.ibfp import IBFP, Template
from ..model.xcorr import trim_kernel
from .crop import CropWindow, context_window
from .onnx_export import BACKBONE_INPUTS, GRAPHS, HEAD_INPUTS, cache_dir, cached_graphs, exported_graphs, model_key


@dataclass(frozen=True)
class QuantConfig:
    """How the int8 graphs are calibrated and which layers stay fp32."""

    clips: int = 8  # generated 640x480 clips, one template each: 8 x 4 = 32 search crops
    frames: int = 31  # frames per clip; a search crop every `frame_step`-th after the first
    frame_step: int = 10
    distractors: int = 2  # look-alikes in each clip, so calibration sees their responses too
    shift: float = 0.3  # search crops shifted by up to 0.3 target sizes, as while tracking
    search_area_scale: float = 5.0  # TrackerConfig's default context (spec 1)
    float_stride: int = 4  # measured: backbone layers with output stride <= 4 stay fp32 (see above)
    per_channel: bool = True  # measured: per-tensor weights move the features 3-8x more
    # 7-bit weights: ONNX Runtime's uint8 x int8 kernels on x86 CPUs without VNNI sum pairs of
    # products in int16, which 8-bit weights can saturate (its quantization docs); measured here
    # (a VNNI CPU): the features move 6.3% RMS at stride 8 instead of 5.7%
    reduce_range: bool = True
    seed: int = 0


QUANT = QuantConfig()
_CODE = (Path(__file__), Path(__file__).with_name("crop.py"), Path(__file__).parents[1] / "media" / "synthetic.py")
"""Source files whose change changes the calibration or the quantized graphs."""


def quantized_graphs(model: IBFP, cfg: QuantConfig = QUANT) -> dict[str, bytes]:
    """The model's int8 graphs as ONNX bytes: read from the cache, else calibrated and cached."""
    key = hashlib.sha256(f"{model_key(model)} {cfg} {_ort_version()}".encode())
    for path in _CODE:
        key.update(path.read_bytes())
    files = {name: cache_dir() / f"ibfp-{key.hexdigest()[:24]}-{name}-int8.onnx" for name in GRAPHS}
    return cached_graphs(files, lambda: quantize_graphs(model, exported_graphs(model), cfg))


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__


def quantize_graphs(model: IBFP, graphs: dict[str, bytes], cfg: QuantConfig = QUANT) -> dict[str, bytes]:
    """Both graphs quantized (QDQ, uint8 activations, int8 weights), calibrated on `calibration_feeds`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    backbone_feeds, head_feeds = calibration_feeds(model, graphs, cfg)
    feeds = {"backbone": backbone_feeds, "head": head_feeds}
    out = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, graph in graphs.items():
            (tmp / f"{name}.onnx").write_bytes(graph)
            quant_pre_process(tmp / f"{name}.onnx", tmp / f"{name}-pre.onnx", skip_symbolic_shape=True)
            prepared = onnx.load(tmp / f"{name}-pre.onnx")
            nodes = (
                _backbone_nodes(prepared, model.config.input_size, cfg) if name == "backbone" else _head_nodes(prepared)
            )
            quantize_static(
                str(tmp / f"{name}-pre.onnx"),
                str(tmp / f"{name}-int8.onnx"),
                _Reader(feeds[name]),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=cfg.per_channel,
                reduce_range=cfg.reduce_range,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_quantize=nodes,
            )
            out[name] = (tmp / f"{name}-int8.onnx").read_bytes()
    return out


def _backbone_nodes(graph: onnx.ModelProto, input_size: int, cfg: QuantConfig) -> list[str]:
    """Nodes whose outputs are at stride float_stride * 2 or coarser (their spatial size known)."""
    inferred = shape_inference.infer_shapes(graph)
    sizes = {}
    for value in (*inferred.graph.value_info, *inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[2].HasField("dim_value"):
            sizes[value.name] = dims[2].dim_value
    coarse = input_size // (2 * cfg.float_stride)
    return [n.name for n in graph.graph.node if n.output and 0 < sizes.get(n.output[0], 0) <= coarse]


def _head_nodes(graph: onnx.ModelProto) -> list[str]:
    """Convolutions with fixed weights (not the correlations, whose weights are the templates)."""
    fixed = {i.name for i in graph.graph.initializer}
    return [n.name for n in graph.graph.node if n.op_type == "Conv" and n.input[1] in fixed]


class _Reader:
    """ONNX Runtime's CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def calibration_feeds(
    model: IBFP, graphs: dict[str, bytes], cfg: QuantConfig = QUANT
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """Backbone and head inputs from generated clips: per clip, a template cut as the tracker
    cuts it on the first frame, and search crops near the true box on later frames."""
    import onnxruntime as ort

    backbone = ort.InferenceSession(graphs["backbone"], providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(cfg.seed)
    size = model.config.input_size
    backbone_feeds, head_feeds = [], []
    for frames, boxes in _clips(cfg):
        first = context_window(Box(*boxes[0]), cfg.search_area_scale, size)
        crops = [first.crop(frames[0])]
        for i in range(cfg.frame_step, cfg.frames, cfg.frame_step):
            crops.append(_shifted(Box(*boxes[i]), size, cfg, rng).crop(frames[i]))
        backbone_feeds += [{BACKBONE_INPUTS[0]: crop[None]} for crop in crops]
        features = [backbone.run(None, feed) for feed in backbone_feeds[-len(crops) :]]
        template = _template(model, features[0], first.to_crop(Box(*boxes[0])))
        kernels = [t.numpy() for t in (template.T8, template.T16, template.T32, template.online_filter)]
        head_feeds += [dict(zip(HEAD_INPUTS, [*x, *kernels])) for x in features[1:]]
    return backbone_feeds, head_feeds


def _clips(cfg: QuantConfig) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for k in range(cfg.clips):
        yield render_synthetic(SyntheticSpec(frames=cfg.frames, distractors=cfg.distractors, seed=cfg.seed + k))


def _shifted(box: Box, size: int, cfg: QuantConfig, rng: np.random.Generator) -> CropWindow:
    """The tracker's search window around `box`, shifted at random as the last box would be."""
    window = context_window(box, cfg.search_area_scale, size)
    dx, dy = rng.uniform(-cfg.shift, cfg.shift, 2) * [box.w, box.h]
    return CropWindow(window.cx + dx, window.cy + dy, window.side, size)


def _template(model: IBFP, features: list[np.ndarray], crop_box: Box) -> Template:
    """The template the tracker keeps (IBFPTracker.init, before its online fit)."""
    with torch.inference_mode():
        t = model.template(tuple(torch.from_numpy(f) for f in features), torch.tensor([crop_box.xywh()]))
    return Template(trim_kernel(t.T8.float()), t.T16.float(), t.T32.float(), t.online_filter.float())
