"""IBFP configuration: frozen dataclasses whose defaults are the paper's values.

Sources: "paper" is Pi et al., "Instance-based Feature Pyramid for Visual Object Tracking";
"spec N" is open point N of shared/docs/IBFP-SPEC.md; "measured" is a choice made on the
dev split, with the figures in weights/MODEL_CARD.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, TypeVar

from .errors import SettingError

ConfigT = TypeVar("ConfigT")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")

BackboneName = Literal["resnet18", "mobilenetv2"]
Trainable = Literal["all", "box"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the IBFP network."""

    backbone: BackboneName = "resnet18"  # paper: ImageNet ResNet18, shared by both branches
    input_size: int = 288  # paper: template and search crops both resized to 288x288
    # Channel widths fused at strides (8, 16, 32): ResNet18 layer2/layer3/layer4 (paper Sec. III).
    channels: tuple[int, int, int] = (128, 256, 512)
    strides: tuple[int, int, int] = (8, 16, 32)  # paper: 36x36, 18x18, 9x9 maps at 288 input
    cscs_eta: float = 0.5  # paper: CSCS compression ratio eta
    head_layers: int = 5  # paper: each prediction branch has 5 conv layers
    head_hidden: int = 256  # paper: 256 hidden channels in the head
    online_layers: int = 4  # paper: online branch of 4 conv layers (3 adapt + 1 filter, spec 4)
    online_hidden: int = 256  # paper: 256 hidden channels in the online branch
    online_dim: int = 64  # spec 4: width of the adapted feature the online filter sees
    online_filter_size: int = 5  # spec 4: odd filter covering a 5x-context target at stride 16
    # Spec 2: template kernels are cropped to the target's extent, odd, at least 3 cells, and
    # at most these many cells per level (a bound that keeps kernels batchable in training).
    template_min_cells: int = 3
    template_max_cells: tuple[int, int, int] = (17, 9, 5)
    norm_groups: int = 0  # spec 3: 0 = BatchNorm, > 0 = GroupNorm with that many groups

    @property
    def online_stride(self) -> int:
        """The online branch reads the stride-16 feature (torchvision layer3, paper's layer4)."""
        return self.strides[1]


PAPER_MODEL = ModelConfig()
"""The paper's architecture (ResNet18, 256-wide head)."""

MOBILE_MODEL = ModelConfig(
    backbone="mobilenetv2",
    # measured: narrower fusion and head keep 640x480 tracking above 25 frames/s on 2 CPU cores
    channels=(64, 96, 128),
    head_hidden=64,
    online_hidden=64,
    online_dim=32,
    norm_groups=8,
)
"""MobileNetV2 variant: ImageNet taps at strides 8/16/32 projected to narrower widths."""

MODEL_PRESETS: dict[str, ModelConfig] = {"paper": PAPER_MODEL, "mobile": MOBILE_MODEL}


@dataclass(frozen=True)
class TrackerConfig:
    """Inference settings of the IBFP tracker."""

    search_area_scale: float = 5.0  # spec 1: square crop of side 5 * sqrt(w * h), as DiMP-18
    offline_weight: float = 0.3  # paper: s = 0.3 * s_offline + 0.7 * s_online
    online_weight: float = 0.7  # paper
    window_influence: float = 0.2  # spec 5 (SiamCAR's cosine window); measured: 0.2 > 0.35 by 0.03 AUC
    size_penalty_k: float = 0.04  # spec 5: scale / aspect change penalty (SiamRPN++ form)
    # spec 5: box size smoothing rate, scaled by the peak score. pysot's 0.4 let the shipped
    # weights' noisy sizes through; measured on six training sequences: 0.05 > 0.1 > 0.2 > 0.4
    size_lr: float = 0.05
    min_size: float = 4.0  # spec 5: smallest box side kept after decoding, pixels
    # issue 11: the head's size and aspect bias is mostly the target's own (on training sequences
    # the bias on two early frames correlates 0.65 / 0.80 with the later frames'): it is measured on
    # the first frame's copies and this share of it taken out of every later box. 0: the paper
    first_frame_bias: float = 0.0
    lost_threshold: float = 0.1  # spec 6; measured: 0.22 froze boxes on found targets (-0.07 AUC)
    lost_search_growth: float = 1.5  # spec 6: search area multiplier per lost frame
    lost_search_max: float = 3.0  # spec 6: bound on that growth relative to the normal area
    online_interval: int = 10  # paper: online template updated every 10 frames
    hard_negative_ratio: float = 0.5  # paper: a second peak this strong triggers an update
    hard_negative_exclusion: int = 3  # cells around the main peak ignored when seeking it
    online_memory: int = 50  # spec 4: bounded sample memory (first-frame samples kept)
    online_init_augments: int = 8  # spec 4: augmented copies of the first frame
    online_init_steps: int = 10  # spec 4: descent steps when the online template starts
    online_update_steps: int = 2  # spec 4: descent steps at each update
    online_learning_rate: float = 0.5  # spec 4: step length of the filter's gradient descent
    online_regularization: float = 0.1  # spec 4: weight decay of the filter
    online_min_score: float = 0.4  # spec 4: frames below this score are not memorised
    label_sigma: float = 0.25  # spec/losses: Gaussian label sigma, in target sizes over the stride
    use_online: bool = True  # paper: the online branch is part of IBFP
    # issue 28: objects tracked in one video know each other (DaSiamRPN's distractors, KeepTrack's
    # candidate association); off, each object is tracked as if alone (as before issue 28)
    use_neighbours: bool = True
    # issue 28: share of the search score taken away inside another found object's box before the
    # peak is chosen (cells nearer that object's centre than one's own). measured on generated
    # look-alike clips: 0.5 and 0.9 gave the same identity counts (MODEL_CARD, objects together)
    neighbour_damping: float = 0.5
    # issue 28: extra weight of another object's region (a hard negative) in the online refits;
    # not tuned: such cells weigh twice the rest
    neighbour_negative_weight: float = 1.0
    # issue 28: two found boxes overlapping more than this are one target: the one whose colours
    # agree less with its object's (`use_identity`; else the lower score) gives way (reported lost,
    # box kept where it was). With the colours, 0.3 beat PASCAL's 0.5 and 0.2 on generated
    # look-alike clips other than the benchmark's (37 / 40 / 40 switches; MODEL_CARD)
    merge_iou: float = 0.3
    # issue 28: objects tracked together keep their identity by colour (`tracking.identity`): two
    # tracks trade boxes, or a lost track takes its box back, when the colours agree better so
    use_identity: bool = True
    # issue 28: how much better (summed 1 - Bhattacharyya distance) the colours must agree before
    # boxes change tracks; tuned on generated look-alike clips other than the benchmark's
    identity_margin: float = 0.1
    # issue 28: a found box overlapping another object's box keeps its score only where its colours
    # match its own object's better than that other's by this much, less in proportion: crossing
    # look-alikes go to review, not to a guess. Tuned on generated look-alike clips other than the
    # benchmark's (12 clips, 30 crossings: 0.1 / 0.2 / 0.3 / 0.5 / 0.8 -> 33 / 29 / 26 / 18 / 4
    # switches, 64 / 53 / 45 / 40 / 103 wrong frames); 0.5 for the fewest wrong frames
    identity_doubt: float = 0.5
    # issue 28.3: a single object's look-alikes: the strongest peak away from the target, when it
    # scores at least `distractor_ratio` of the target's on `distractor_frames` frames, is damped
    # (as another object's box, `neighbour_damping`) until missed on more than `distractor_forget`
    # frames in a row. Off: it did not help with 0.4.0 (62 training sequences, paired AUC at ratio
    # 0.6 / 0.4 / 0.3 and 2 frames: -0.0003 / +0.0027 / -0.0002, each interval across 0; validation
    # at 0.4: -0.0035, 90% -0.0101..+0.0001; MODEL_CARD); measure again with new weights
    use_distractors: bool = False
    distractor_ratio: float = 0.6  # DaSiamRPN keeps distractors scoring above a share of the target's
    distractor_frames: int = 3  # "competes for several frames" (issue 28.3)
    distractor_forget: int = 5  # a look-alike hidden for a few frames is still the same one


@dataclass(frozen=True)
class LossConfig:
    """Training losses (paper Sec. III-D)."""

    alpha: float = 0.9  # paper: weight of the hinge on negative points
    gamma: float = 0.1  # paper: focal exponent on positive labels
    tau: float = 0.05  # paper: label value separating positives from negatives
    sigma: float = 0.25  # measured: Gaussian label sigma relative to target size per stride
    box_region: float = 0.25  # paper Table II: box loss within 0.25 w x 0.25 h of the centre
    centre_weight: float = 1.0  # paper: centre and box losses summed
    box_weight: float = 1.0  # paper: centre and box losses summed
    # issue 11: GIoU on the same cells as the L1 (SiamCAR, FCOS use an IoU loss); 0 is the paper's
    # loss alone. 1.0: both terms are about 0.3 on the 0.2.1 weights, so neither dominates
    giou_weight: float = 1.0
    online_weight: float = 1.0  # spec 4: the online branch's hinge MSE added to the total
    # issue 26.4, distillation: NanoTrack's box at its peak (train/teacher.py) as a second box target
    # on the same cells as the truth, with this weight against the truth's 1 (L1 and GIoU alike);
    # 0: no teacher. Only where the teacher's box overlaps the truth by distill_found_iou (IoU)
    distill_weight: float = 0.0
    distill_found_iou: float = 0.5  # the usual "found" overlap (OTB's success at 0.5)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (paper Sec. IV-A), scaled down to the data and hardware at hand."""

    model: ModelConfig = field(default_factory=lambda: MOBILE_MODEL)
    loss: LossConfig = field(default_factory=LossConfig)
    batch_size: int = 16  # paper: 128 on 4 GPUs; the shipped CPU run used 16
    learning_rate: float = 1e-3  # Adam on the new modules (shipped CPU run)
    backbone_lr_scale: float = 0.1  # spec 7: backbone layers train 10x slower
    weight_decay: float = 1e-4  # common Siamese-training value (pysot)
    # False: Adam with L2 weight decay (the shipped runs'); True: AdamW's decoupled decay (Loshchilov &
    # Hutter 2019), which does not drive a channel that has stopped receiving gradient to zero at the
    # learning rate's pace (weights/TRAINING.md, dead channels)
    decoupled_weight_decay: bool = False
    warmup_steps: int = 100  # paper: 5 of 60 epochs of warm-up (1/12), scaled to the run
    decay_every: int = 600  # paper: learning rate x0.2 every 15 of 60 epochs, scaled to the run
    decay_factor: float = 0.2  # paper
    max_steps: int = 1300  # about an hour of 2 CPU cores on the feature cache (shipped run)
    negative_fraction: float = 0.2  # issue 5: about 20% negative pairs
    max_frame_gap: int = 100  # SiamRPN++-style: template and search at most 100 frames apart
    freeze_backbone: bool = True  # spec 7 (CPU path: the whole backbone, features cached)
    freeze_bn: bool = True  # spec 7: keep ImageNet BatchNorm statistics (off for a backbone from scratch)
    # issue 11: on the cached-feature path, the backbone's last stage (stride 16 -> 32) still trains
    # (at backbone_lr_scale), recomputed from the cached stride-16 tap: the cheapest stage to tune on CPU
    tune_last_stage: bool = True
    # issue 11: "box" trains the head's box branch alone, from trained weights: the features, the
    # centre branch and the online branch (what keeps the target) stay exactly as they were
    trainable: Trainable = "all"
    grad_clip: float = 10.0  # measured: keeps early Adam steps stable
    seed: int = 0


def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON-able data (tuples become lists)."""
    return asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass; unknown keys are an error, tuples restored."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, list):
            value = tuple(value)
        if name == "model" and isinstance(value, dict):
            value = from_dict(ModelConfig, value)
        if name == "loss" and isinstance(value, dict):
            value = from_dict(LossConfig, value)
        values[name] = value
    return cls(**values)


def parse_settings(cls: type, items: Iterable[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings as the fields of config class `cls` they set, each value read as the
    type of that field's default (bool: true/false, yes/no, on/off, 1/0)."""
    defaults = {f.name: getattr(cls(), f.name) for f in fields(cls)}
    settings: dict[str, Any] = {}
    for item in items:
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise SettingError(f"setting {item!r} is not KEY=VALUE, e.g. size_lr=0.1")
        if key not in defaults:
            raise SettingError(f"{cls.__name__} has no setting {key!r}; it has {', '.join(defaults)}")
        settings[key] = _parsed(key, text, defaults[key])
    return settings


def overridden(config: ConfigT, settings: dict[str, Any]) -> ConfigT:
    """`config` with the fields in `settings` replaced (as `parse_settings` gives them)."""
    return replace(config, **settings) if settings else config  # type: ignore[type-var]


def _parsed(key: str, text: str, default: Any) -> Any:
    kind = type(default)
    if kind is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise SettingError(f"setting {key} takes true or false, not {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            wanted = "an integer" if kind is int else "a number"
            raise SettingError(f"setting {key} takes {wanted}, not {text!r}") from None
    if kind is str:
        return text
    raise SettingError(f"setting {key} ({kind.__name__}) cannot be set from the command line")
