"""Where the IBFP network runs: PyTorch (CUDA, training, the fallback) or ONNX Runtime (CPU).

Both backends offer the same two calls, the NanoTrack-style split of the Siamese net:
`features(crops)` (the backbone, for template and search crops alike) and
`predict(template, features)` (fusion, head and online maps, one template per sample).
Template kernels are cut and the online filter is fitted in torch on either backend.
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
import weakref
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from ..errors import IBFPError
from ..model.backbone import Features
from ..model.ibfp import IBFP, Prediction, Template

Backend = Literal["auto", "torch", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx", "onnx-int8")
ONNX_BACKENDS = ("onnx", "onnx-int8")  # fp32 graphs; int8 graphs (tracking.quantize)
ONNX_HINT = "pip install onnxruntime onnx"


def onnx_available() -> bool:
    """Whether ONNX Runtime and the onnx package (the exporter needs it) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def pick_backend(backend: str, device: torch.device) -> str:
    """'auto' is ONNX Runtime's fp32 graphs on the CPU where it is installed, else torch (always
    on CUDA). The int8 graphs ('onnx-int8') are asked for by name: with the 0.4.0 weights they
    lost 0.014 validation AUC (paired, 90% -0.037..+0.005; a look-alike sequence flipped)."""
    if backend not in BACKENDS:
        raise IBFPError(f"unknown backend {backend!r}; use {', '.join(BACKENDS)}")
    if backend == "auto":
        return "onnx" if device.type == "cpu" and onnx_available() else "torch"
    if backend in ONNX_BACKENDS and device.type != "cpu":
        raise IBFPError(f"the {backend} backend runs on the CPU; use --device cpu, or --backend torch for CUDA")
    if backend in ONNX_BACKENDS and not onnx_available():
        raise IBFPError(f"the {backend} backend needs ONNX Runtime: {ONNX_HINT}")
    return backend


def frozen_backbone(model: IBFP) -> Callable[[torch.Tensor], Features]:
    """The model's backbone traced and frozen for the CPU (BatchNorm folded into the convs):
    the same features, about 2x faster on 2 cores. Traced on one crop, it takes any batch size."""
    size = model.config.input_size
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warns about its own limits, none apply
        traced = torch.jit.trace(model.backbone.eval(), torch.zeros(1, 3, size, size))
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


class TorchNetwork:
    """The network in PyTorch. On the CPU the head's branches are fused (IBFP.for_inference) and
    the backbone is traced and frozen (BatchNorm folded into the convs, about 2x faster on 2
    cores); on CUDA the network runs as trained, in fp16 autocast."""

    name = "torch"

    def __init__(self, model: IBFP, device: torch.device) -> None:
        self.model = model.for_inference() if device.type == "cpu" else weakref.proxy(model)
        self.device = device
        self.backbone = frozen_backbone(model) if device.type == "cpu" else model.backbone

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def features(self, crops: np.ndarray) -> Features:
        """(N, S, S, 3) uint8 RGB crops -> projected features (N, c, S/s, S/s) per stride."""
        t = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device, non_blocking=True)
        with self._autocast():
            return self.model.project(self.backbone(self.model.normalize(t.permute(0, 3, 1, 2).float())))

    def predict(self, template: Template, x: Features) -> Prediction:
        """Fusion, head and online maps for a batch of search features and their templates."""
        with self._autocast():
            return self.model(template, x)


class OnnxNetwork:
    """The network's two exported graphs (see onnx_export), fp32 or `int8` (see quantize), in
    ONNX Runtime sessions."""

    def __init__(self, model: IBFP, threads: int, int8: bool = False) -> None:
        import onnxruntime as ort

        from .onnx_export import exported_graphs
        from .quantize import quantized_graphs

        self.name = "onnx-int8" if int8 else "onnx"
        self.device = torch.device("cpu")
        self.threads = threads
        self.graphs = quantized_graphs(model) if int8 else exported_graphs(model)
        options = session_options(threads)
        self.sessions = {
            name: ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
            for name, graph in self.graphs.items()
        }

    def features(self, crops: np.ndarray) -> Features:
        """(N, S, S, 3) uint8 RGB crops -> projected features (N, c, S/s, S/s) per stride."""
        outputs = self.sessions["backbone"].run(None, {"crops": np.ascontiguousarray(crops, dtype=np.uint8)})
        return tuple(torch.from_numpy(o) for o in outputs)  # type: ignore[return-value]

    def predict(self, template: Template, x: Features) -> Prediction:
        """Fusion, head and online maps for a batch of search features and their templates."""
        from .onnx_export import HEAD_INPUTS

        tensors = (*x, template.T8, template.T16, template.T32, template.online_filter)
        feed = {name: t.float().contiguous().numpy() for name, t in zip(HEAD_INPUTS, tensors)}
        return Prediction(*(torch.from_numpy(o) for o in self.sessions["head"].run(None, feed)))


def session_options(threads: int):  # noqa: ANN201 (onnxruntime is imported on demand)
    """ONNX Runtime settings: `threads` threads that sleep when idle, all graph optimisations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # measured on a busy 2-core machine: spinning threads made the head 2.3x slower, and they would
    # take CPU from other processes (batch workers, decoding) for no work of their own
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no notes about unused initialisers
    return options


Network = TorchNetwork | OnnxNetwork
_NETWORKS: weakref.WeakKeyDictionary[IBFP, dict[tuple[str, str, int], Network]] = weakref.WeakKeyDictionary()


def network(model: IBFP, backend: str, device: torch.device) -> Network:
    """The model's network on a resolved backend ('torch', 'onnx' or 'onnx-int8'), one per model,
    backend, device and thread count, so the trackers of one model share it (and batch through it)."""
    threads = torch.get_num_threads()
    key = (backend, str(device), threads)
    made = _NETWORKS.setdefault(model, {})
    if key not in made:
        if backend in ONNX_BACKENDS:
            made[key] = OnnxNetwork(model, threads, int8=backend == "onnx-int8")
        else:
            made[key] = TorchNetwork(model, device)
    return made[key]
