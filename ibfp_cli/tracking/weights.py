"""IBFP weight files: plain-data checkpoints, found by option, environment or in `weights/`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from ..config import ModelConfig, from_dict, to_dict
from ..errors import WeightsError
from ..model.ibfp import IBFP

ARCH = "ibfp"
FORMAT_VERSION = 1  # bump when the state-dict layout changes incompatibly
WEIGHTS_ENV = "IBFP_WEIGHTS"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "weights"
_VERSION_RE = re.compile(r"ibfp-(\d+(?:\.\d+)*)\.pt$")
TRAIN_HINT = "train some with `ibfp train run` (see README, Training) or pass --weights"


def save_weights(path: str | Path, model: IBFP, meta: dict[str, Any], half: bool = True) -> None:
    """Write {"arch", "version", "config", "state_dict", "meta"} (fp16 tensors by default)."""
    state = {k: (v.half() if half and v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()}
    torch.save(
        {"arch": ARCH, "version": FORMAT_VERSION, "config": to_dict(model.config), "state_dict": state, "meta": meta},
        path,
    )


def shipped_weights() -> list[Path]:
    """Weight files in the project's `weights/` folder, oldest version first."""
    found = [p for p in SHIPPED_DIR.glob("ibfp-*.pt") if _VERSION_RE.search(p.name)]
    return sorted(found, key=lambda p: tuple(int(v) for v in _VERSION_RE.search(p.name).group(1).split(".")))


def resolve_weights(weights: str | Path | None = None) -> Path:
    """The weights to use: the argument, else $IBFP_WEIGHTS, else the newest shipped file."""
    if weights is None and os.environ.get(WEIGHTS_ENV):
        weights = os.environ[WEIGHTS_ENV]
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"weights file {path} not found")
        return path
    shipped = shipped_weights()
    if not shipped:
        raise WeightsError(f"no IBFP weights found in {SHIPPED_DIR}; {TRAIN_HINT}")
    return shipped[-1]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A weights file's contents, checked for architecture and version."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a file that is not a checkpoint
        raise WeightsError(f"{path} is not a readable IBFP weights file ({type(e).__name__})") from None
    if not isinstance(data, dict) or data.get("arch") != ARCH:
        raise WeightsError(
            f"{path} is not an IBFP weights file (arch {data.get('arch') if isinstance(data, dict) else None!r})"
        )
    if data.get("version") != FORMAT_VERSION:
        raise WeightsError(f"{path} has format version {data.get('version')}; this ibfp reads version {FORMAT_VERSION}")
    return data


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[IBFP, dict[str, Any]]:
    """The IBFP network of a weights file, in eval mode and fp32 on `device`, and its metadata."""
    data = read_checkpoint(path)
    try:
        config = from_dict(ModelConfig, data["config"])
        model = IBFP(config)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()})
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise WeightsError(f"{path} does not match this IBFP architecture: {str(e).splitlines()[0]}") from None
    return model.to(device).eval(), data.get("meta", {})
