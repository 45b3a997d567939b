"""The training campaign (issue 26): killed at any moment, it resumes from the newer of its run
folder's checkpoint and its committed resume point; each stretch leaves a resume point and a row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import typer
from conftest import SHARED_MODELS, needs_nano, write_sequence
from test_mechanics import TINY

from ibfp_cli.cli import app
from ibfp_cli.config import TrainConfig
from ibfp_cli.errors import IBFPError
from ibfp_cli.media.synthetic import SyntheticSpec
from ibfp_cli.model.ibfp import IBFP
from ibfp_cli.tracking.opencv_trackers import MODELS_ENV
from ibfp_cli.tracking.weights import read_checkpoint, save_weights
from ibfp_cli.train import campaign
from ibfp_cli.train.augment import AugmentConfig
from ibfp_cli.train.campaign import Recipe, end_stretch, find_start, run_campaign, run_trial, warm_start
from ibfp_cli.train.loop import CHECKPOINT
from ibfp_cli.train.prepare import val_sequences

BATCH = 4


@pytest.fixture()
def recipe(tmp_path, monkeypatch) -> Recipe:
    """A tiny campaign on generated clips, its run folder, resume points and log under tmp_path."""
    start = tmp_path / "start.pt"
    torch.manual_seed(0)
    save_weights(start, IBFP(replace(TINY, norm_groups=4)), {"data": "test"})  # GroupNorm, as 0.3.0
    monkeypatch.setenv(campaign.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setattr(campaign, "RESUME_DIR", tmp_path / "resume")
    log = tmp_path / "TRAINING.md"
    log.write_text("# Training log\n\n## Short runs\n\n" + campaign.TRIAL_HEADER + "\n\n## Stretches\n\n"
                   + campaign.LOG_HEADER + "\n")  # fmt: skip
    monkeypatch.setattr(campaign, "TRAINING_LOG", log)
    train = TrainConfig(batch_size=BATCH, warmup_steps=1, decay_every=10**9, max_steps=10**9)
    return Recipe(model=replace(TINY, norm_groups=0), start_from=str(start), train=train, synthetic=2)


def _steps(recipe: Recipe, steps: int) -> None:
    recipe_steps = replace(recipe, train=replace(recipe.train, max_steps=steps))
    run_campaign("c", None, minutes=None, device="cpu", say=lambda _: None, recipe=recipe_steps)


def test_warm_start_takes_every_tensor_of_the_groupnorm_network_into_the_batchnorm_one(recipe):
    source = torch.load(recipe.start_from, weights_only=True)["state_dict"]
    model = warm_start(recipe).state_dict()
    for key, value in source.items():
        assert torch.equal(model[key].half(), value), key
    assert any("running_mean" in k for k in set(model) - set(source))  # BatchNorm's statistics are new


def test_a_stretch_writes_a_resume_point_and_a_row_and_a_fresh_machine_continues_from_it(recipe, tmp_path):
    data = tmp_path / "data"
    name = sorted(val_sequences())[0]  # one generated clip standing in for the validation set
    write_sequence(data / "sot", name, SyntheticSpec(width=160, height=120, frames=12, seed=2))

    _steps(recipe, 3)
    first = end_stretch("c", data, recipe=recipe)
    point = read_checkpoint(campaign.resume_point("c"))
    assert point["meta"]["run"]["step"] == 3 and point["meta"]["run"]["pairs"] == 3 * BATCH
    assert point["meta"]["recipe"]["model"] == point["config"]  # the metadata names the network that loads
    assert point["meta"]["recipe"]["train"]["loss"]["distill_weight"] == recipe.train.loss.distill_weight
    assert all(v.dtype == torch.float32 for v in point["state_dict"].values() if v.is_floating_point())
    assert first.row().startswith(f"| {first.day} | 0 -> 3 | 12 (12) |")
    assert 0 < first.network["iou"] <= 1 and first.network["frames"] > 0

    # a machine that never saw the run: no run folder, only the committed resume point
    run_dir = campaign.runs_root() / "c"
    for path in run_dir.iterdir():
        path.unlink()
    start = find_start("c", recipe)
    assert "committed resume point at step 3" in start.description
    _steps(recipe, 5)
    second = end_stretch("c", data, recipe=recipe)
    assert second.row().startswith(f"| {second.day} | 3 -> 5 | 8 (20) |")
    table = campaign.TRAINING_LOG.read_text().splitlines()
    assert table[-2:] == [first.row(), second.row()]
    assert "run folder's checkpoint at step 5" in find_start("c", recipe).description


def test_a_trial_forks_from_the_resume_point_trains_its_steps_and_is_adopted_as_a_stretch(
    recipe, tmp_path, monkeypatch
):
    """A short run (issue 26.4): from the campaign's resume point, exactly `steps` steps of the
    variant in its own run folder, a row in the short-run table; the campaign is left as it was
    until `campaign save --from` takes the trial as its next stretch."""
    data = tmp_path / "data"
    write_sequence(data / "sot", sorted(val_sequences())[0], SyntheticSpec(width=160, height=120, frames=12, seed=2))
    _steps(recipe, 2)
    stretch = end_stretch("c", data, recipe=recipe)
    campaign_checkpoint = (campaign.runs_root() / "c" / CHECKPOINT).read_bytes()

    wide = replace(recipe, search_aug=AugmentConfig(scale=0.5, aspect=0.4))
    said: list[str] = []
    trial = run_trial("wide", None, data, steps=3, device="cpu", name="c", recipe=wide, say=said.append)
    assert "committed resume point at step 2" in said[0]
    assert (trial.step_from, trial.state.step, trial.state.pairs) == (2, 5, 5 * BATCH)
    assert 0 < trial.network["iou"] <= 1
    assert trial.row().startswith(f"| {trial.day} | wide | 2 -> 5 | 12 (20) |")
    # the campaign is untouched: its resume point, its run folder
    assert read_checkpoint(campaign.resume_point("c"))["meta"]["run"]["step"] == 2
    assert (campaign.runs_root() / "c" / CHECKPOINT).read_bytes() == campaign_checkpoint

    assert trial.versus == "-"  # no control checked yet
    control = run_trial("control", None, data, steps=3, device="cpu", name="c", recipe=recipe, say=said.append)
    assert control.state.step == 5 and control.versus == "-"

    def no_check(*args, **kwargs):
        raise AssertionError("checked again")

    with monkeypatch.context() as patch:  # done and checked: nothing is run again
        patch.setattr(campaign, "validation_checks", no_check)
        again = run_trial("wide", None, data, steps=3, device="cpu", name="c", recipe=wide, say=said.append)
    assert "run folder's checkpoint at step 5" in said[-1] and again.state.step == 5
    assert again.network == trial.network
    gain = again.network["iou"] - control.network["iou"]  # one sequence: the pooled gain is the paired one
    assert again.versus == f"{gain:+.3f} (90%: {gain:+.3f}..{gain:+.3f}), better on {int(gain > 0)} of 1"
    lines = campaign.TRAINING_LOG.read_text().splitlines()
    trials = lines.index(campaign.TRIAL_HEADER.splitlines()[0])
    assert lines[trials + 2 : trials + 4] == [again.row(), control.row()]  # the trial's row replaced in place
    assert lines[-1] == stretch.row()  # the stretch table keeps its rows only

    with monkeypatch.context() as patch:  # the trial's check is the stretch's: not run again
        patch.setattr(campaign, "validation_checks", no_check)
        adopted = end_stretch(
            "c", data, source=campaign.runs_root() / "c-trial-wide" / campaign.TRIAL_POINT, recipe=wide
        )
    assert adopted.network == trial.network
    assert adopted.row().startswith(f"| {adopted.day} | 2 -> 5 | 12 (20) |")
    assert read_checkpoint(campaign.resume_point("c"))["meta"]["run"]["step"] == 5
    assert "committed resume point at step 5" in find_start("c", recipe).description

    with monkeypatch.context() as patch:  # adopted, the trial run again is still done: no step more
        patch.setattr(campaign, "validation_checks", no_check)
        after = run_trial("wide", None, data, steps=3, device="cpu", name="c", recipe=wide, say=said.append)
    assert (after.step_from, after.state.step) == (2, 5) and after.row().startswith(f"| {after.day} | wide | 2 -> 5 |")


def test_a_trial_may_change_the_architecture_and_keeps_every_tensor(recipe, tmp_path):
    """A smaller search crop (issue 26.5) forks from the resume point with all of its tensors."""
    data = tmp_path / "data"
    write_sequence(data / "sot", sorted(val_sequences())[0], SyntheticSpec(width=160, height=120, frames=12, seed=2))
    _steps(recipe, 2)
    end_stretch("c", data, recipe=recipe)
    small = replace(recipe, model=replace(recipe.model, input_size=96))
    start = find_start("c-trial-small", small, campaign.resume_point("c"))
    committed = read_checkpoint(campaign.resume_point("c"))["state_dict"]
    assert start.model.config.input_size == 96
    assert all(torch.equal(start.model.state_dict()[k], v) for k, v in committed.items())
    trial = run_trial("small", None, data, steps=1, device="cpu", name="c", recipe=small, say=lambda _: None)
    point = read_checkpoint(campaign.runs_root() / "c-trial-small" / campaign.TRIAL_POINT)
    assert point["config"]["input_size"] == 96 and trial.state.step == 3 and trial.network["frames"] > 0


def test_a_trial_from_shipped_weights_trains_the_box_branch_alone_from_step_0(recipe, tmp_path):
    """A trial that does not fork (box-040): from the starting weights at step 0, with no resume
    point needed, and only the head's box branch moves."""
    data = tmp_path / "data"
    write_sequence(data / "sot", sorted(val_sequences())[0], SyntheticSpec(width=160, height=120, frames=12, seed=2))
    box_only = replace(recipe, fork=False, train=replace(recipe.train, trainable="box"))
    said: list[str] = []
    trial = run_trial("box", None, data, steps=2, device="cpu", name="c", recipe=box_only, say=said.append)
    assert "new campaign from" in said[0] and (trial.step_from, trial.state.step) == (0, 2)
    before = campaign.warm_start(box_only).state_dict()
    after = read_checkpoint(campaign.runs_root() / "c-trial-box" / campaign.TRIAL_POINT)["state_dict"]
    moved = {k for k, v in before.items() if v.is_floating_point() and not torch.equal(after[k], v.float())}
    assert moved and all(k.startswith("head.box.") for k in moved)


def test_a_shallower_head_keeps_its_first_layers_and_its_prediction_layer():
    torch.manual_seed(0)
    deep = IBFP(replace(TINY, norm_groups=0))
    shallow = campaign.transplant(deep, replace(deep.config, head_layers=2)).state_dict()
    before = deep.state_dict()
    last = deep.config.head_layers - 1
    for branch in ("centre", "box"):
        assert torch.equal(shallow[f"head.{branch}.0.0.weight"], before[f"head.{branch}.0.0.weight"])
        for param in ("weight", "bias"):  # the prediction layer moves from index 4 to index 1
            assert torch.equal(shallow[f"head.{branch}.1.{param}"], before[f"head.{branch}.{last}.{param}"])
        assert not any(k.startswith(f"head.{branch}.2.") for k in shallow)


def test_a_trial_names_its_variants_and_needs_a_resume_point(recipe, tmp_path):
    with pytest.raises(IBFPError, match="control, wide-jitter, backbone-fast"):
        run_trial("nope", None, tmp_path, steps=1, device="cpu", name="c")
    with pytest.raises(IBFPError, match="no resume point"):
        run_trial("control", None, tmp_path, steps=1, device="cpu", name="c", recipe=recipe)


def test_the_training_log_holds_both_tables():
    text = (campaign.SHIPPED_DIR / "TRAINING.md").read_text()
    assert campaign.TRIAL_HEADER in text and campaign.LOG_HEADER in text


def test_an_older_run_folder_checkpoint_is_set_aside_for_a_newer_resume_point(recipe):
    _steps(recipe, 2)
    run_dir = campaign.runs_root() / "c"
    old = torch.load(run_dir / CHECKPOINT, weights_only=True)
    model = IBFP(recipe.model)
    model.load_state_dict(old["model"])
    campaign.RESUME_DIR.mkdir()
    meta = {"run": {"step": 7, "pairs": 28, "seconds": {"cpu": 1.0}, "fresh_from": 0}}
    save_weights(campaign.resume_point("c"), model, meta, half=False)
    start = find_start("c", recipe)
    assert "committed resume point at step 7" in start.description and start.state.step == 7
    assert not (run_dir / CHECKPOINT).exists() and (run_dir / "checkpoint.step2.pt").is_file()


KILLED_RUN = """
import sys
from dataclasses import replace
from ibfp_cli.config import ModelConfig, TrainConfig
from ibfp_cli.train import campaign, loop
loop.CHECKPOINT_MINUTES = 0  # a checkpoint after every step: the kill may land anywhere
tiny = ModelConfig(**{model})
recipe = campaign.Recipe(model=tiny, start_from=sys.argv[1], synthetic=2,
    train=TrainConfig(batch_size=4, warmup_steps=1, decay_every=10**9, max_steps=10**9))
campaign.run_campaign("c", None, minutes=None, device="cpu", say=print, recipe=recipe)
"""


@pytest.mark.slow
def test_a_run_killed_mid_step_resumes_from_its_last_checkpoint(recipe, tmp_path):
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(recipe.model).items()}
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(KILLED_RUN).replace("{model}", repr(fields)))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    process = subprocess.Popen([sys.executable, str(script), recipe.start_from], env=env, stdout=subprocess.DEVNULL)
    checkpoint = campaign.runs_root() / "c" / CHECKPOINT
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _step_of(checkpoint) >= 3:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    reached = _step_of(checkpoint)
    assert reached >= 3
    start = find_start("c", recipe)
    assert f"run folder's checkpoint at step {reached}" in start.description
    _steps(recipe, reached + 2)
    assert _step_of(checkpoint) == reached + 2


def _step_of(checkpoint: Path) -> int:
    try:
        return int(torch.load(checkpoint, weights_only=True)["step"])
    except (FileNotFoundError, RuntimeError, EOFError, KeyError):
        return 0


@pytest.mark.slow
@needs_nano  # the recipe distils from NanoTrack
def test_device_stretch_dry_run_packs_trains_and_brings_back_a_resume_point_the_cpu_adopts(tmp_path, monkeypatch):
    """The GPU script's one-minute CPU dry run, same code and inputs: pack a crop cache to a
    budget, train the campaign's network from its newest start, validate what comes back here."""
    from ibfp_cli.train import device_stretch
    from ibfp_cli.train.prepare import INDEX_FILE, prepare_crop_cache

    data = tmp_path / "data"
    write_sequence(data / "sot", "clip", SyntheticSpec(width=320, height=240, frames=60, seed=4))
    prepare_crop_cache(data, tmp_path / "crops")
    full = (tmp_path / "crops" / "clip.mp4").stat().st_size / 2**20
    budget = full * 0.75 + (tmp_path / "crops" / INDEX_FILE).stat().st_size / 2**20
    packed = device_stretch.pack(tmp_path / "crops", tmp_path / "pack", budget, SHARED_MODELS)
    assert len(packed) == 15 and list(packed["item"]) == list(range(15))  # 30 crops thinned to every 2nd
    assert sum(p.stat().st_size for p in (tmp_path / "pack").iterdir() if p.is_file()) / 2**20 <= budget
    teacher = tmp_path / "pack" / device_stretch.TEACHER_FOLDER  # travels with the crops; no $IBFP_OPENCV_MODELS there
    assert sorted(p.name for p in teacher.iterdir()) == ["nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"]
    monkeypatch.delenv(MODELS_ENV, raising=False)

    out = tmp_path / "out"
    monkeypatch.setenv(campaign.RUNS_ENV, str(tmp_path / "runs"))  # restored after the test, as main() sets it
    start = find_start(device_stretch.RUN_NAME)  # the committed resume point, or 0.3.0 before the first
    args = ["run", "--pack", str(tmp_path / "pack"), "--out", str(out), "--device", "cpu", "--minutes", "0.1"]
    device_stretch.main([*args, "--workers", "1", "--batch", "2", "--runs", str(tmp_path / "runs")])
    summary = json.loads((out / device_stretch.SUMMARY_FILE).read_text())
    first = start.state.step if start.state else 0
    assert summary["steps"][0] == first and summary["steps"][1] > first and summary["batch"] == 2

    monkeypatch.setattr(campaign, "RESUME_DIR", tmp_path / "resume")
    log = tmp_path / "TRAINING.md"
    log.write_text(campaign.LOG_HEADER + "\n")
    monkeypatch.setattr(campaign, "TRAINING_LOG", log)
    name = sorted(val_sequences())[0]
    (data / "sot" / "clip.mp4").rename(data / "sot" / f"{name}.mp4")
    (data / "sot" / "clip.gt.csv").rename(data / "sot" / f"{name}.gt.csv")
    stretch = end_stretch("campaign", data, source=out / device_stretch.RESUME_FILE)
    assert stretch.state.step == summary["steps"][1] and stretch.losses and stretch.network["frames"] > 0
    assert log.read_text().splitlines()[-1] == stretch.row()


@needs_nano  # the recipe distils from NanoTrack
def test_device_trials_dry_run_trains_equal_steps_and_the_cpu_checks_what_comes_back(tmp_path, monkeypatch):
    """Short runs on a GPU stretch (`--trials`): the control for its share of the minutes, the
    variant as many steps from the same fork; each folder brought back is checked and logged here."""
    from ibfp_cli.train import device_stretch
    from ibfp_cli.train.prepare import prepare_crop_cache

    data = tmp_path / "data"
    write_sequence(data / "sot", "clip", SyntheticSpec(width=320, height=240, frames=40, seed=4))  # trained on
    write_sequence(data / "sot", sorted(val_sequences())[0], SyntheticSpec(width=160, height=120, frames=12, seed=2))
    prepare_crop_cache(data, tmp_path / "crops")
    out, runs = tmp_path / "out", tmp_path / "runs"
    monkeypatch.setenv(campaign.RUNS_ENV, str(runs))
    monkeypatch.setenv(MODELS_ENV, str(SHARED_MODELS))  # a crop cache as the pack: the teacher from there
    args = ["run", "--pack", str(tmp_path / "crops"), "--out", str(out), "--device", "cpu", "--minutes", "0.1"]
    trials = ["--trials", "control,search-224"]
    device_stretch.main([*args, "--workers", "0", "--batch", "2", "--runs", str(runs), *trials])
    ends = {}
    for variant in ("control", "search-224"):
        folder = out / campaign.trial_name(variant)
        assert {p.name for p in folder.iterdir()} == {"resume.pt", "fork.json", "log.csv", "summary.json"}
        ends[variant] = read_checkpoint(folder / campaign.TRIAL_POINT)["meta"]["run"]["step"]
    fork = json.loads((out / campaign.trial_name("control") / campaign.TRIAL_FORK).read_text())["step"]
    assert ends["control"] > fork and ends["search-224"] == ends["control"]  # equal pairs

    monkeypatch.setenv(campaign.RUNS_ENV, str(tmp_path / "here"))  # this machine: no run folders yet
    log = tmp_path / "TRAINING.md"
    log.write_text(campaign.TRIAL_HEADER + "\n")
    monkeypatch.setattr(campaign, "TRAINING_LOG", log)
    rows = [
        run_trial(v, None, data, steps=1, device="cpu", trained=out / campaign.trial_name(v), say=lambda _: None)
        for v in ("control", "search-224")
    ]
    assert [(r.step_from, r.state.step) for r in rows] == [(fork, ends["control"])] * 2
    assert rows[1].versus.endswith("of 1") and log.read_text().splitlines()[-2:] == [r.row() for r in rows]
    assert (tmp_path / "here" / campaign.trial_name("search-224") / campaign.TRIAL_POINT).is_file()  # adoptable


def test_prepare_says_why_it_has_nothing_to_crop(tmp_path):
    """issue 24.7: every video named is a validation sequence -> one line saying so, no empty cache."""
    from ibfp_cli.errors import IBFPError
    from ibfp_cli.train.prepare import prepare_crop_cache

    name = sorted(val_sequences())[0]
    write_sequence(tmp_path / "sot", name, SyntheticSpec(width=160, height=120, frames=4))
    with pytest.raises(IBFPError, match="1 of 1 videos are validation sequences"):
        prepare_crop_cache(tmp_path, tmp_path / "crops")
    assert not (tmp_path / "crops" / "index.csv").exists()


def test_a_crop_cache_made_before_categories_still_trains_and_says_how_to_add_them(recipe, tmp_path):
    """A cache without the category column gives no look-alike negatives: one line says so."""
    import pandas as pd

    from ibfp_cli.train.prepare import INDEX_FILE, prepare_crop_cache

    data = tmp_path / "data"
    write_sequence(data / "sot", "clip", SyntheticSpec(width=160, height=120, frames=8, seed=5))
    prepare_crop_cache(data, tmp_path / "crops")
    index = pd.read_csv(tmp_path / "crops" / INDEX_FILE)
    index.drop(columns="category").to_csv(tmp_path / "crops" / INDEX_FILE, index=False)
    said: list[str] = []
    two_steps = replace(recipe, train=replace(recipe.train, max_steps=2))
    state = run_campaign("c", tmp_path / "crops", minutes=None, device="cpu", say=said.append, recipe=two_steps)
    assert state.step == 2
    assert any("has no object categories" in line and "ibfp train prepare" in line for line in said)


def test_the_trial_commands_help_names_every_variant():
    trial = typer.main.get_command(app).commands["train"].commands["campaign"].commands["trial"]
    (variant,) = (param for param in trial.params if param.name == "variant")
    assert [name for name in campaign.TRIALS if f"{name} (" not in variant.help] == []
