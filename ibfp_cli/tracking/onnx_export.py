"""The IBFP network as two ONNX graphs, exported from the torch model at first use and cached.

Split as OpenCV's NanoTrack splits its Siamese net: the backbone graph turns crops into
features (template branch, once per object; search branch, every frame), and the head graph
takes the search features plus each object's template kernels as inputs, so one graph serves
every object and any number of them (the batch axis is left open). The cache is keyed by a
hash of the weights, the architecture and the code that defines the graphs, so the weights
file stays the single source of truth: new weights or new code export anew.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..config import to_dict
from ..errors import IBFPError
from ..media.atomic import atomic_output
from ..model.backbone import Features
from ..model.ibfp import IBFP, Template
from .threads import one_torch_thread

CACHE_ENV = "IBFP_CACHE_DIR"
"""Environment variable naming the folder for exported graphs (default: the user cache folder)."""
OPSET = 17  # run by every ONNX Runtime from 1.14 on; GroupNorm exports as InstanceNormalization
GRAPH_FORMAT = 1  # bump when a graph's inputs or outputs change, so old cache entries are not read
BACKBONE_INPUTS = ("crops",)
BACKBONE_OUTPUTS = ("s8", "s16", "s32")
HEAD_INPUTS = ("s8", "s16", "s32", "t8", "t16", "t32", "online_filter")
HEAD_OUTPUTS = ("centre", "ltrb", "online", "online_feature")
GRAPHS = ("backbone", "head")
_CODE = [*sorted((Path(__file__).parents[1] / "model").glob("*.py")), Path(__file__)]
"""Source files whose change changes the exported graphs."""


class BackboneGraph(nn.Module):
    """Crops (N, S, S, 3) uint8 RGB -> projected features at strides 8, 16, 32."""

    def __init__(self, model: IBFP) -> None:
        super().__init__()
        self.model = model

    def forward(self, crops: torch.Tensor) -> Features:
        return self.model.project(self.model.backbone_features(crops.permute(0, 3, 1, 2).float()))


class HeadGraph(nn.Module):
    """Projected search features and one template per sample -> centre, l t r b, online maps."""

    def __init__(self, model: IBFP) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s8, s16, s32, t8, t16, t32, online_filter = inputs
        p = self.model(Template(t8, t16, t32, online_filter), (s8, s16, s32))
        return p.centre, p.ltrb, p.online, p.online_feature


def cache_dir() -> Path:
    """$IBFP_CACHE_DIR, else $XDG_CACHE_HOME/ibfp, else ~/.cache/ibfp."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ibfp"


def model_key(model: IBFP) -> str:
    """Hash of the model's weights and architecture, the graph code, and the torch that exports."""
    h = hashlib.sha256(f"{GRAPH_FORMAT} {OPSET} {torch.__version__}".encode())
    h.update(json.dumps(to_dict(model.config), sort_keys=True).encode())
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    for path in _CODE:
        h.update(path.read_bytes())
    return h.hexdigest()[:24]


def graph_files(model: IBFP) -> dict[str, Path]:
    """Where the model's graphs are cached, by graph name."""
    key = model_key(model)
    return {name: cache_dir() / f"ibfp-{key}-{name}.onnx" for name in GRAPHS}


def exported_graphs(model: IBFP) -> dict[str, bytes]:
    """The model's graphs as ONNX bytes: read from the cache, else exported and cached."""
    return cached_graphs(graph_files(model), lambda: export_graphs(model))


def cached_graphs(files: dict[str, Path], make: Callable[[], dict[str, bytes]]) -> dict[str, bytes]:
    """Graphs read from `files`, else made and written there. A cache folder that cannot be
    written only costs making them again on the next run (with a warning)."""
    if all(path.is_file() for path in files.values()):
        return {name: path.read_bytes() for name, path in files.items()}
    with one_torch_thread():
        graphs = make()
    try:
        files["head"].parent.mkdir(parents=True, exist_ok=True)
        for name, path in files.items():
            with atomic_output(path) as tmp:  # concurrent processes each write whole files
                tmp.write_bytes(graphs[name])
    except (OSError, IBFPError) as e:
        warnings.warn(f"cannot cache the ONNX graphs in {files['head'].parent}: {e}", stacklevel=3)
    return graphs


def export_graphs(model: IBFP) -> dict[str, bytes]:
    """Export the backbone and head graphs of a CPU fp32 copy of the model, head branches fused."""
    cpu = IBFP(model.config)
    cpu.load_state_dict({k: v.float().cpu() for k, v in model.state_dict().items()})
    cpu = cpu.for_inference()
    mc = cpu.config
    size = mc.input_size
    crops = torch.zeros(1, size, size, 3, dtype=torch.uint8)
    with torch.no_grad():
        features = BackboneGraph(cpu)(crops)
    kernel_sizes = (*mc.template_max_cells, mc.online_filter_size)
    widths = (*mc.channels, mc.online_dim)
    kernels = tuple(torch.rand(1, c, k, k) for c, k in zip(widths, kernel_sizes))
    batch = {0: "objects"}
    head_axes = {name: dict(batch) for name in (*HEAD_INPUTS, *HEAD_OUTPUTS)}
    head_axes["t8"] = {0: "objects", 2: "k", 3: "k"}  # T8 is trimmed to each target's extent
    return {
        "backbone": _export(BackboneGraph(cpu), (crops,), BACKBONE_INPUTS, BACKBONE_OUTPUTS, batch),
        "head": _export(HeadGraph(cpu), (*features, *kernels), HEAD_INPUTS, HEAD_OUTPUTS, head_axes),
    }


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    axes: dict[str, dict[int, str]] | dict[int, str],
) -> bytes:
    """One graph through the TorchScript exporter (the torch.export one needs onnxscript)."""
    if all(isinstance(k, int) for k in axes):
        axes = {name: dict(axes) for name in (*inputs, *outputs)}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice and tracer notes
        torch.onnx.export(
            module.eval(),
            args,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=axes,
        )
    return buffer.getvalue()
