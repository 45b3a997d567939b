"""The training campaign: one long run that resumes wherever it stopped, on any machine (issue 26).

Two places hold its state. The run folder (`$IBFP_RUNS/<name>`, default `~/.cache/ibfp/runs`)
has the full checkpoint (model, optimiser, random state), written atomically every few minutes.
The repository has the resume point (`weights/resume/<name>.pt`: model tensors in fp32 and the
run's counters, no optimiser), committed at the end of each stretch of training with its row in
`weights/TRAINING.md`, so that a machine that never saw the run continues it. A resume takes
whichever of the two has the later step.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from ..config import MOBILE_MODEL, LossConfig, ModelConfig, TrackerConfig, TrainConfig, to_dict
from ..errors import IBFPError
from ..media.atomic import atomic_output
from ..model.ibfp import IBFP
from ..tracking.tracker import pick_device
from ..tracking.weights import SHIPPED_DIR, load_model, read_checkpoint, save_weights
from .augment import AugmentConfig
from .data import PairSampler, SamplingConfig, image_batch
from .loop import CHECKPOINT, LOG, RunState, train
from .revive import revive_dead_channels
from .teacher import NanoTeacher

if TYPE_CHECKING:
    from ..evaluate.boxfit import NetworkCheck

RUNS_ENV = "IBFP_RUNS"
DEFAULT_RUNS = Path.home() / ".cache" / "ibfp" / "runs"
RESUME_DIR = SHIPPED_DIR / "resume"  # `ibfp` loads only weights/ibfp-*.pt, never these
TRAINING_LOG = SHIPPED_DIR / "TRAINING.md"
# the box head trained on every cell inside the box (half its width and height either side of the
# centre), as FCOS-style heads (NanoTrack, LightTrack, SiamCAR) train it, instead of the paper's
# central 0.25 w x 0.25 h (Table II): the peak of a moving target is rarely the centre cell
BOX_INSIDE = 0.5
DISTILL_WEIGHT = 8.0  # the teacher's box against the truth's (trials distill, TRAINING.md): eight times the truth's
ADAMW_DECAY = 1e-2  # AdamW's decoupled weight decay: PyTorch's default, as in timm's recipes
LOSS_ROWS = 25  # logged rows (every LOG_EVERY steps) averaged for a stretch's losses: its last 500 steps


@dataclass(frozen=True)
class Recipe:
    """What the campaign trains and how; a change of recipe is a row of weights/TRAINING.md."""

    # issue 26.5: BatchNorm in neck and head folds into the convs at inference (GroupNorm does not)
    model: ModelConfig = field(default_factory=lambda: replace(MOBILE_MODEL, norm_groups=0))
    # the shipped network's tensors start the campaign; its GroupNorm scales and shifts become
    # the BatchNorm ones (same names and shapes), whose statistics are learned from the first batches
    start_from: str = "ibfp-0.3.0.pt"
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            # 3e-4 (between the shipped run's 1e-3 and its 2e-4 fine-tuning rate) to step 32,200, where
            # the network check had stopped improving (IoU 0.703 -> 0.692); then a third (TRAINING.md);
            # from step 53,800 a fifth of that, the paper's decay factor (Sec. IV-A): trial `decayed`
            # against control from 52,600, network IoU +0.001 (90 % -0.003..+0.006) and as trackers
            # (three starts) AUC +0.005 (90 % -0.001..+0.012), with the lower training losses
            learning_rate=2e-5,
            warmup_steps=100,  # after every fresh optimiser (a resume point carries none)
            decay_every=10**9,  # a run without an end: a constant rate until a recipe row says otherwise
            max_steps=10**9,
            freeze_bn=True,  # the ImageNet backbone keeps its statistics
            # from step 33,400: the box loss on every cell inside the box (trial box-inside against
            # control, 1,200 steps each: network IoU +0.007, 90 % +0.001..+0.013, 14 of 21 better)
            # from step 55,200: NanoTrack's box at its peak as a second box target, as much weight as the
            # truth's (trial distill against control, 1,200 steps each: network IoU +0.039, 90 %
            # +0.030..+0.048, 20 of 21 better; train/teacher.py); from step 60,200 twice as much weight
            # as the truth's (trial distill against control, 1,000 steps each: network IoU +0.015,
            # 90 % +0.010..+0.020, 20 of 21 better); from step 61,200 four times (the same, 800 steps
            # each: +0.009, 90 % +0.006..+0.013, 18 of 21 better); from step 62,600 eight times (the
            # same: +0.004, 90 % +0.003..+0.006, 17 of 21 better)
            loss=replace(LossConfig(), box_region=BOX_INSIDE, distill_weight=DISTILL_WEIGHT),
        )
    )
    # issue 26: the shipped boxes are too small and the wrong shape: wider scale and aspect jitter
    # than the shipped run's (0.25, 0.1), so search views differ from the template in both
    search_aug: AugmentConfig = field(default_factory=lambda: AugmentConfig(scale=0.3, aspect=0.2))
    template_aug: AugmentConfig = field(
        default_factory=lambda: AugmentConfig(shift=0.1, scale=0.05, aspect=0.0, flip_probability=0.0)
    )
    synthetic: int = 16  # generated look-alike clips beside the crop cache (shipped run: 16)
    # a trial starts from the campaign's resume point; False: from `start_from` at step 0
    fork: bool = True
    # the fusion's and head's dead channels re-initialised where a run starts from a resume point
    revive: bool = False
    # issue 26.2, from step 10,000: half the negatives are another object of the template's category
    # (DaSiamRPN's semantic negatives; issue 28: IBFP loses targets to look-alikes)
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(lookalike_fraction=0.5))


RECIPE = Recipe()

# issue 26.4: short runs at equal pairs, each forked from the campaign's resume point, choose the
# recipe by the network check; "control" is the recipe as it stands, the baseline of every comparison
TRIALS: dict[str, Recipe] = {
    "control": RECIPE,  # CONTROL
    # the shipped boxes are too small and the wrong shape on unseen footage: scale and aspect
    # jitter of the search views widened again (campaign 0.3 / 0.2; SiamRPN++ 0.18 per side)
    "wide-jitter": replace(RECIPE, search_aug=AugmentConfig(scale=0.5, aspect=0.4)),
    # issue 26.4, the backbone's later stages trainable: its last stage (stride 16 -> 32, the one
    # the campaign tunes) at the heads' rate instead of spec 7's tenth
    "backbone-fast": replace(RECIPE, train=replace(RECIPE.train, backbone_lr_scale=1.0)),
    # issue 26.5: 224 px crops instead of the paper's 288 run 1.6x faster (benchmarks/lean.py); every
    # tensor is kept, so a short run says what the smaller crops cost in accuracy
    "search-224": replace(RECIPE, model=replace(RECIPE.model, input_size=224)),
    # issue 26.5: 224 px crops and head branches of 2 layers (one hidden, one prediction) instead of
    # 5: the only variant of benchmarks/lean.py at 0.5x NanoTrack (0.56x with int8, 2026-12-06)
    "lean": replace(RECIPE, model=replace(RECIPE.model, input_size=224, head_layers=2)),
    # the shipped 0.4.0 with only its box branch trained on (fresh views, box loss inside the box):
    # checkpoints of the whole network fit boxes better but lose targets to look-alikes that 0.4.0
    # keeps (steps 19,000 and 33,400, TRAINING.md); its features, centre and online branches, which
    # decide where the target is, stay exactly as shipped. At the campaign's main rate (3e-4)
    "box-040": replace(
        RECIPE, start_from="ibfp-0.4.0.pt", fork=False, train=replace(RECIPE.train, trainable="box", learning_rate=3e-4)
    ),
    # issue 28 / TRAINING.md: checkpoints lose validation targets to a neighbour of the same kind in
    # the search view, and no training pair had ever shown one beside the target: half the positive
    # pairs get another object of the target's category pasted into their search view
    "distractors": replace(RECIPE, sampling=replace(RECIPE.sampling, distractor_fraction=0.5)),
    # TRAINING.md, 2026-12-06: after a few lost frames the tracker searches a crop 3x wider (spec 6),
    # where no view had ever shown the target, and re-finds it there on a third of validation frames:
    # a quarter of the search views cut so (1.5x to 3x the window, the shift grown alike)
    "wide-views": replace(RECIPE, search_aug=replace(RECIPE.search_aug, wide_probability=0.25)),
    # TRAINING.md, 2026-12-06: from step 38,600 the tuning (training) sequences gain AUC while the
    # validation ones do not: the network learns the 62 training videos. The still images are the
    # most varied data there is (8,128 crops of thousands of objects against 8,984 crops of 62
    # videos): they take most of the generated clips' share (plain shapes the network finds at any
    # step) and some of the videos', so that each still is drawn a little more often than each
    # video frame (sot, det, syn: 0.5, 0.3, 0.2 in the recipe)
    "stills": replace(RECIPE, sampling=replace(RECIPE.sampling, weights=(0.45, 0.5, 0.05))),
    # TRAINING.md: the network check stayed at IoU 0.70-0.71 from step 34,600 to 51,000 at 1e-4,
    # its losses moving stretch to stretch by more than they fall: the paper's next decay step
    # (learning rate x0.2, Sec. IV-A) on the same data; adopted from 53,800, so now the step after it
    "decayed": replace(
        RECIPE, train=replace(RECIPE.train, learning_rate=RECIPE.train.learning_rate * RECIPE.train.decay_factor)
    ),
    # TRAINING.md, 2026-12-06: half of the deepest fusion conv's channels and a quarter of the centre
    # branch's are dead (constant, scale ~0), presumably killed by Adam's L2 decay: re-initialised at
    # the fork, and AdamW's decoupled decay (at its usual 1e-2, Loshchilov & Hutter 2019) from there
    "revive": replace(
        RECIPE, revive=True, train=replace(RECIPE.train, decoupled_weight_decay=True, weight_decay=ADAMW_DECAY)
    ),
    # issue 26.4, distillation from NanoTrack: on validation footage its network fits boxes better than
    # the campaign's (IoU 0.816 against 0.700), on training footage not (0.782 against 0.773,
    # TRAINING.md): the campaign's box branch learned the training videos. Adopted from step 55,200
    # at the truth's weight, doubled from 60,200, 61,200 and 62,600 (DISTILL_WEIGHT); so now doubled
    # again, the next step on that axis (the gains have halved with each doubling: +0.039 to +0.004)
    "distill": replace(
        RECIPE, train=replace(RECIPE.train, loss=replace(RECIPE.train.loss, distill_weight=2 * DISTILL_WEIGHT))
    ),
    # the recipe without its teacher: what the teacher still adds, and the recipe where its files are not at hand
    "undistilled": replace(RECIPE, train=replace(RECIPE.train, loss=replace(RECIPE.train.loss, distill_weight=0.0))),
    # TRAINING.md, 2026-12-07: the teacher's term multiplies the box terms' gradient by about 1 + its
    # weight, so on the layers the branches share (the backbone's last stage, neck and fusion) the
    # centre loss's is now about 1 % of theirs, and where the target is barely shapes those features
    # (the network ranks a neighbour above the target on otb_Bolt). The centre loss weighted by the
    # same 1 + the teacher's weight: the share it had in the undistilled recipe
    "centre-weighted": replace(
        RECIPE, train=replace(RECIPE.train, loss=replace(RECIPE.train.loss, centre_weight=1 + DISTILL_WEIGHT))
    ),
}
TRIAL_POINT = "resume.pt"  # a trial's resume point, in its run folder: `campaign save --from` adopts it
TRIAL_FORK = "fork.json"  # the counters of the resume point a trial forked from, in its run folder
TRIAL_CHECK = "check.json"  # a trial's network check, pooled and by sequence, in its run folder
CONTROL = "control"


def runs_root() -> Path:
    """Where run folders live: $IBFP_RUNS, else ~/.cache/ibfp/runs."""
    return Path(os.environ.get(RUNS_ENV) or DEFAULT_RUNS)


def resume_point(name: str) -> Path:
    """The committed resume point of campaign `name`."""
    return RESUME_DIR / f"{name}.pt"


@dataclass(frozen=True)
class Start:
    """Where a campaign process starts from, and how to say it."""

    model: IBFP
    state: RunState | None  # None: the run folder's checkpoint (train() loads it)
    description: str


def find_start(name: str, recipe: Recipe = RECIPE, committed: Path | None = None) -> Start:
    """The newer of the run folder's checkpoint and the committed resume point (campaign `name`'s,
    or `committed`), else a new network from the recipe's starting weights."""
    checkpoint = runs_root() / name / CHECKPOINT
    local = _checkpoint_state(runs_root() / name)
    committed = committed or resume_point(name)
    shared = _committed_state(committed)
    if local is not None and (shared is None or local.step >= shared.step):
        return Start(
            IBFP(recipe.model), None, f"resuming from the run folder's checkpoint at step {local.step} ({checkpoint})"
        )
    if shared is not None:
        model = transplant(load_model(committed)[0], recipe.model)  # a trial may change the architecture
        if local is not None:  # older than the resume point: set aside, never mixed in
            checkpoint.replace(checkpoint.with_suffix(f".step{local.step}.pt"))
        return Start(
            model.train(),
            shared,
            f"resuming from the committed resume point at step {shared.step} ({committed}); optimiser state restarts",
        )
    return Start(warm_start(recipe), RunState(), f"new campaign from {SHIPPED_DIR / recipe.start_from}")


def warm_start(recipe: Recipe) -> IBFP:
    """A network of the recipe's architecture with every tensor of the starting weights that has
    the same name and shape (norm scales and shifts included); the rest as initialised."""
    source, _ = load_model(SHIPPED_DIR / recipe.start_from)
    return transplant(source, recipe.model)


def transplant(source: IBFP, config: ModelConfig) -> IBFP:
    """A network of architecture `config` with every tensor of `source` of the same name and
    shape, a shallower branch keeping its first layers and its prediction layer (the last layer
    of a stack maps to the last one); the rest as initialised (`source` itself where the
    architecture is the same)."""
    if source.config == config:
        return source
    model = IBFP(config)
    own = model.state_dict()
    theirs = source.state_dict()
    theirs.update({k: theirs[old] for k, old in _last_layers(own, theirs).items()})
    taken = {k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(taken, strict=False)
    return model


def _last_layers(own: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> dict[str, str]:
    """Names in `own` of a stack's last layer (`stack.N.param`, N the stack's highest index)
    mapped to the same parameter of the last layer of `theirs`' stack, where the depths differ."""

    def last_index(names: dict[str, torch.Tensor]) -> dict[str, int]:
        highest: dict[str, int] = {}
        for name in names:
            stack, _, rest = name.rpartition(".")[0].rpartition(".")
            if rest.isdigit() and stack:
                highest[stack] = max(highest.get(stack, -1), int(rest))
        return highest

    mine, source = last_index(own), last_index(theirs)
    renamed = {}
    for stack, n in mine.items():
        if stack in source and source[stack] != n:
            for name in own:
                if name.startswith(f"{stack}.{n}.") and name.count(".") == stack.count(".") + 2:
                    old = f"{stack}.{source[stack]}.{name.rsplit('.', 1)[1]}"
                    if old in theirs:
                        renamed[name] = old
    return renamed


def run_campaign(
    name: str,
    crops: Path | None,
    *,
    minutes: float | None,
    device: str,
    batch_size: int | None = None,
    say: Callable[[str], None] = print,
    report: Callable[[int, dict[str, float]], None] | None = None,
    recipe: Recipe = RECIPE,
    fork_from: str | None = None,
    until: int | None = None,
    models: Path | None = None,
) -> RunState:
    """Train campaign `name` for `minutes` (None: until stopped) from wherever it stopped; a
    trial starts from campaign `fork_from`'s resume point and stops at step `until`. A recipe
    that distils finds its teacher's ONNX files in `models` (else $IBFP_OPENCV_MODELS)."""
    from .api import training_sources

    committed = resume_point(fork_from or name)
    start = find_start(name, recipe, committed)
    say(start.description)
    if recipe.revive and start.state is not None:  # from the resume point, not from a run folder's checkpoint
        say(f"{revive_dead_channels(start.model)} dead channels of the fusion and head re-initialised")
    cfg = replace(recipe.train, model=recipe.model, batch_size=batch_size or recipe.train.batch_size)
    if until is not None:
        cfg = replace(cfg, max_steps=until)
    teacher = None
    if cfg.loss.distill_weight:  # before the crops load: a missing file is said at once
        teacher = partial(NanoTeacher(models).boxes, found_iou=cfg.loss.distill_found_iou)
    sources = training_sources(crops, recipe.synthetic, cfg.seed)
    if crops is not None and recipe.sampling.lookalike_fraction and not any(len(s.categories) for s in sources):
        say(
            f"{crops} has no object categories (made before look-alike negatives): every negative comes "
            "from another source; `ibfp train prepare` again to add them"
        )
    sampler = PairSampler(sources, recipe.sampling, cfg.seed + (start.state.step if start.state else 0))
    area, size = TrackerConfig().search_area_scale, recipe.model.input_size

    def next_batch() -> Any:
        return image_batch(sampler, cfg.batch_size, area, size, recipe.template_aug, recipe.search_aug)

    return train(
        runs_root() / name,
        start.model,
        next_batch,
        sampler.rng,
        cfg,
        device=pick_device(device),
        max_minutes=minutes,
        report=report,
        start=start.state,
        teacher=teacher,
    )


@dataclass(frozen=True)
class Stretch:
    """One row of weights/TRAINING.md."""

    day: str
    step_from: int
    state: RunState
    pairs_from: int
    hours: dict[str, float]
    losses: dict[str, float]
    network: dict[str, float]
    label: str | None = None  # a trial's variant: its own column after the date
    versus: str = "-"  # a trial's network IoU against the control's, paired by sequence: the last column

    @staticmethod
    def between(
        before: RunState,
        state: RunState,
        log: Path,
        network: dict[str, float],
        label: str | None = None,
        versus: str = "-",
    ) -> Stretch:
        """Today's row for training from `before` to `state`, its losses from the run's `log`."""
        hours = {k: (v - before.seconds.get(k, 0.0)) / 3600 for k, v in state.seconds.items()}
        losses = _stretch_losses(log, before.step)
        return Stretch(_today(), before.step, state, before.pairs, hours, losses, network, label, versus)

    def row(self) -> str:
        hours = ", ".join(f"{h:.2f} {kind.upper()}" for kind, h in sorted(self.hours.items()) if h > 0)
        loss = " / ".join(f"{self.losses.get(k, float('nan')):.3f}" for k in ("total", "centre", "box", "giou"))
        net = " / ".join(
            f"{self.network.get(k, float('nan')):.3f}"
            for k in ("iou", "size_ratio", "aspect_error", "scale_correction", "refound")
        )
        pairs = f"{self.state.pairs - self.pairs_from:,} ({self.state.pairs:,})"
        day = self.day if self.label is None else f"{self.day} | {self.label}"
        row = f"| {day} | {self.step_from:,} -> {self.state.step:,} | {pairs} | {hours} | {loss} | {net} |"
        return row if self.label is None else f"{row} {self.versus} |"


LOG_HEADER = (
    "| date | steps | pairs (all so far) | hours | loss total / centre / box / giou | "
    "network IoU / size ratio / aspect error / scale correction / re-found |\n|---|---|---|---|---|---|"
)
TRIAL_HEADER = (
    LOG_HEADER.replace("| date |", "| date | trial |", 1)
    .replace(" |\n", " | network IoU against control, by sequence (90 %) |\n", 1)
    .replace("|---|", "|---|---|---|", 1)
)


def end_stretch(
    name: str,
    data_dir: Path,
    *,
    source: Path | None = None,
    device: str = "cpu",
    backend: str = "auto",
    recipe: Recipe = RECIPE,
) -> Stretch:
    """Write the resume point from the run folder's checkpoint (or from `source`, a resume point
    a device stretch or a trial brought back, its log.csv beside it), run the network check on the
    validation sequences with it (a trial's own check, made at the same step, is taken as it is),
    and append the stretch's row to weights/TRAINING.md."""
    if source is None:
        model, state = _run_folder_state(runs_root() / name, recipe)
    else:
        model, meta = load_model(source)
        state = RunState.from_dict(meta["run"])
    log = (runs_root() / name if source is None else source.parent) / LOG
    committed = resume_point(name)
    before = _committed_state(committed) or RunState()
    if state.step <= before.step:
        raise IBFPError(
            f"{source or 'the run folder'} is at step {state.step}, the resume point already at {before.step}"
        )
    save_resume_point(committed, model, state, recipe)
    checked = _trial_check(source.parent) if source is not None else None  # a trial checked at this step
    if checked is not None and checked["step"] == state.step:
        network = checked["pooled"]
    else:
        network = validation_check(committed, data_dir, device=device, backend=backend)
    stretch = Stretch.between(before, state, log, network)
    _append_row(stretch.row(), LOG_HEADER)
    return stretch


def trial_name(variant: str, name: str = "campaign") -> str:
    """The run folder of a trial of campaign `name`."""
    return f"{name}-trial-{variant}"


def run_trial(
    variant: str,
    crops: Path | None,
    data_dir: Path,
    *,
    steps: int,
    device: str,
    backend: str = "auto",
    name: str = "campaign",
    recipe: Recipe | None = None,
    say: Callable[[str], None] = print,
    report: Callable[[int, dict[str, float]], None] | None = None,
    trained: Path | None = None,
) -> Stretch:
    """Train recipe variant `variant` (TRIALS, or `recipe`) for `steps` steps from campaign `name`'s
    resume point, check the network on the validation sequences and add its row to the short-run
    table of weights/TRAINING.md. Killed, it resumes; run again when done, it only checks.
    `trained`: a trial a GPU stretch brought back (its folder: resume point, fork, loss log), only
    checked, after its files are copied into the trial's run folder."""
    if recipe is None and variant not in TRIALS:
        raise IBFPError(f"no trial {variant!r}: choose one of {', '.join(TRIALS)}")
    recipe = recipe or TRIALS[variant]
    run_dir = runs_root() / trial_name(variant, name)
    if trained is not None:
        base, state = _bring_trial(trained, run_dir)
    else:
        base = trial_fork(run_dir, fork_point(recipe, name))
        if base is None:
            raise IBFPError(f"campaign {name!r} has no resume point ({resume_point(name)}) to fork a trial from")
        run_campaign(
            run_dir.name, crops, minutes=None, device=device, say=say, report=report, recipe=recipe,
            fork_from=name if recipe.fork else None, until=base.step + steps, models=data_dir.parent / "models",
        )  # fmt: skip
        model, state = _run_folder_state(run_dir, recipe)
    check = _trial_check(run_dir)
    if check is None or check["step"] != state.step:  # a check already made at this step is kept
        point = run_dir / TRIAL_POINT
        if trained is None:
            save_resume_point(point, model, state, recipe)
        checks = validation_checks(point, data_dir, device=device, backend=backend)
        check = {"step": state.step, "pooled": _pooled(checks), "by_sequence": _by_sequence(checks)}
        with atomic_output(run_dir / TRIAL_CHECK) as tmp:
            tmp.write_text(json.dumps(check, indent=1))
    control = _trial_check(runs_root() / trial_name(CONTROL, name))
    versus = "-"
    if variant != CONTROL and control is not None:
        versus = paired_gain(check["by_sequence"], control["by_sequence"])
    trial = Stretch.between(base, state, run_dir / LOG, check["pooled"], label=variant, versus=versus)
    _append_row(trial.row(), TRIAL_HEADER, same=f"| {variant} | {base.step:,} -> {state.step:,} |")
    return trial


def _bring_trial(trained: Path, run_dir: Path) -> tuple[RunState, RunState]:
    """Copy a trial brought back from a device into its run folder; its fork and its end."""
    for file in (TRIAL_POINT, TRIAL_FORK, LOG):
        if not (trained / file).is_file():
            raise IBFPError(f"{trained} has no {file}: not a trial folder of a GPU stretch")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / TRIAL_CHECK).unlink(missing_ok=True)  # a check of an earlier run of the trial
    for file in (TRIAL_POINT, TRIAL_FORK, LOG):
        shutil.copyfile(trained / file, run_dir / file)
    fork = RunState.from_dict(json.loads((run_dir / TRIAL_FORK).read_text()))
    return fork, RunState.from_dict(read_checkpoint(run_dir / TRIAL_POINT)["meta"]["run"])


def fork_point(recipe: Recipe, name: str = "campaign") -> Path | None:
    """The resume point a trial of `recipe` forks from: campaign `name`'s, or None for a trial
    that starts from the recipe's starting weights at step 0."""
    return resume_point(name) if recipe.fork else None


def trial_fork(run_dir: Path, committed: Path | None) -> RunState | None:
    """Where a trial forked: recorded in its run folder while its checkpoint is at or past the
    resume point `committed` (so a trial adopted, or run again when done, keeps its steps);
    else the resume point's counters (step 0 without one), recorded afresh. None: no resume point."""
    record = run_dir / TRIAL_FORK
    shared = _committed_state(committed) if committed is not None else RunState()
    own = _checkpoint_state(run_dir)
    if record.is_file() and own is not None and (shared is None or own.step >= shared.step):
        return RunState.from_dict(json.loads(record.read_text()))
    if shared is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_output(record) as tmp:
            tmp.write_text(json.dumps(shared.to_dict()))
    return shared


def paired_gain(trial: dict[str, float], control: dict[str, float]) -> str:
    """Mean network IoU gain over the control by sequence, its bootstrap interval and how many
    sequences gained, as the short-run table writes it."""
    from ..evaluate.compare import paired_difference

    gain = paired_difference(trial, control)
    return gain.text() if gain.count else "-"


def save_resume_point(path: Path, model: IBFP, state: RunState, recipe: Recipe = RECIPE) -> None:
    """A resume point: the model's tensors in fp32, the run's counters and the whole recipe, written
    atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_weights(tmp, model, {"run": state.to_dict(), "recipe": to_dict(recipe), "date": _today()}, half=False)


def validation_check(weights: Path, data_dir: Path, *, device: str, backend: str) -> dict[str, float]:
    """The network check (`ibfp eval --network-check`) pooled over the validation sequences."""
    return _pooled(validation_checks(weights, data_dir, device=device, backend=backend))


def validation_checks(weights: Path, data_dir: Path, *, device: str, backend: str) -> list[NetworkCheck]:
    """The network check on each validation sequence."""
    from ..evaluate.datasets import open_dataset
    from ..evaluate.runner import run_network_check
    from .prepare import SOT_FOLDERS, val_sequences

    names = val_sequences()
    sequences = [
        s
        for folder in SOT_FOLDERS
        if (data_dir / folder).is_dir()
        for s in open_dataset(data_dir / folder)
        if s.name in names
    ]
    return run_network_check(sequences, weights, device, backend)


def _pooled(checks: list[NetworkCheck]) -> dict[str, float]:
    from ..evaluate.boxfit import summarize

    return {k: float(v) for k, v in vars(summarize(checks)).items()}


def _by_sequence(checks: list[NetworkCheck]) -> dict[str, float]:
    """Mean network IoU of each sequence checked."""
    return {c.sequence: float(c.iou.mean()) for c in checks if c.frames}


def _trial_check(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / TRIAL_CHECK
    return json.loads(path.read_text()) if path.is_file() else None


def _stretch_losses(log: Path, after_step: int) -> dict[str, float]:
    """Mean losses of the last LOSS_ROWS logged rows after `after_step`."""
    if not log.is_file():
        return {}
    rows = pd.read_csv(log)
    rows = rows[rows.step > after_step].tail(LOSS_ROWS)
    return {k: float(rows[k].mean()) for k in ("total", "centre", "box", "giou")} if len(rows) else {}


def _run_folder_state(run_dir: Path, recipe: Recipe) -> tuple[IBFP, RunState]:
    """The model and counters of a run folder's checkpoint."""
    checkpoint = run_dir / CHECKPOINT
    if not checkpoint.is_file():
        raise IBFPError(f"no checkpoint in {run_dir}: run `ibfp train campaign run` first")
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = IBFP(recipe.model)
    model.load_state_dict(data["model"])
    return model, RunState.from_dict(data)


def _checkpoint_state(run_dir: Path) -> RunState | None:
    """The counters of a run folder's checkpoint, None where there is none."""
    checkpoint = run_dir / CHECKPOINT
    return (
        RunState.from_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        if checkpoint.is_file()
        else None
    )


def _committed_state(path: Path) -> RunState | None:
    """The counters of a committed resume point, None where there is none."""
    return RunState.from_dict(read_checkpoint(path)["meta"]["run"]) if path.is_file() else None


def _append_row(row: str, header: str, same: str | None = None) -> None:
    """`row` at the end of the table under `header` in weights/TRAINING.md, or in place of the
    table's row that holds `same`."""
    lines = TRAINING_LOG.read_text().splitlines() if TRAINING_LOG.is_file() else []
    first = header.splitlines()[0]
    if first not in lines:
        raise FileNotFoundError(f"{TRAINING_LOG} has no table with the header {first!r}")
    end = lines.index(first) + 2
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    rows = range(lines.index(first) + 2, end)
    earlier = [i for i in rows if same is not None and same in lines[i]]
    if earlier:
        lines[earlier[-1]] = row
    else:
        lines.insert(end, row)
    TRAINING_LOG.write_text("\n".join(lines) + "\n")


def _today() -> str:
    return date.today().isoformat()
