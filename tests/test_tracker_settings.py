"""`--tracker-config KEY=VALUE`: IBFP settings set without writing a weights file (track, batch, eval, export)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from ibfp_cli.cli import app
from ibfp_cli.config import MOBILE_MODEL, TrackerConfig, TrainConfig, overridden, parse_settings, to_dict
from ibfp_cli.errors import SettingError
from ibfp_cli.media.synthetic import SyntheticSpec, write_synthetic_video
from ibfp_cli.model.ibfp import IBFP
from ibfp_cli.tracking.tracker import create
from ibfp_cli.tracking.weights import load_model

runner = CliRunner()
CLIP = SyntheticSpec(width=160, height=120, frames=12, object_size=(30, 24), speed=3.0, seed=3)


def test_settings_are_read_as_their_fields_types():
    settings = parse_settings(
        TrackerConfig, ["size_lr=0.15", "online_interval = 5", "use_online=false", "window_influence=1"]
    )
    assert settings == {"size_lr": 0.15, "online_interval": 5, "use_online": False, "window_influence": 1.0}
    assert type(settings["window_influence"]) is float and type(settings["online_interval"]) is int
    config = overridden(TrackerConfig(), settings)
    assert (config.size_lr, config.online_interval, config.use_online) == (0.15, 5, False)
    assert config.search_area_scale == TrackerConfig().search_area_scale
    assert overridden(TrackerConfig(), {}) == TrackerConfig()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("sizelr=0.1", "TrackerConfig has no setting 'sizelr'"),
        ("size_lr", "is not KEY=VALUE"),
        ("=3", "is not KEY=VALUE"),
        ("size_lr=fast", "size_lr takes a number, not 'fast'"),
        ("online_interval=2.5", "online_interval takes an integer"),
        ("use_online=maybe", "use_online takes true or false"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(item, message):
    with pytest.raises(SettingError, match=message):
        parse_settings(TrackerConfig, [item])


def test_settings_replace_only_their_fields_of_the_weights_own():
    shipped = create(device="cpu", backend="torch")
    tuned = create(device="cpu", backend="torch", tracker_config={"size_lr": 0.3})
    assert tuned.config.size_lr == 0.3 and shipped.config.size_lr != 0.3
    # every other field is the weights' own, including those that differ from the defaults
    assert overridden(shipped.config, {"size_lr": 0.3}) == tuned.config


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    truth = write_synthetic_video(root / "clip.mp4", CLIP)
    rows = "".join(f"{i},{','.join(f'{v:.2f}' for v in box)}\n" for i, box in enumerate(truth))
    (root / "clip.gt.csv").write_text("frame,x,y,w,h\n" + rows)
    return root


def _eval(dataset: Path, out: Path, *settings: str):
    args = ["eval", str(dataset), "--tracker", "ibfp", "--out", str(out), "--workers", "1", "--device", "cpu"]
    for item in settings:
        args += ["--tracker-config", item]
    return runner.invoke(app, args)


def test_eval_tracks_with_the_settings_given_and_keeps_folders_apart(dataset, tmp_path):
    plain, tuned = tmp_path / "plain", tmp_path / "tuned"
    assert _eval(dataset, plain).exit_code == 0
    result = _eval(dataset, tuned, "search_area_scale=3", "use_online=false")
    assert result.exit_code == 0, result.output
    boxes = [pd.read_csv(folder / "predictions" / "ibfp" / "clip.csv") for folder in (plain, tuned)]
    assert len(boxes[0]) == len(boxes[1]) == CLIP.frames
    assert not boxes[0][["x", "y", "w", "h"]].equals(boxes[1][["x", "y", "w", "h"]])
    assert "search_area_scale=3.0, use_online=False" in (tuned / "report.md").read_text()
    # saved runs are reused only with the settings they were made with
    again = _eval(dataset, tuned, "search_area_scale=3", "use_online=false")
    assert again.exit_code == 0, again.output
    refused = _eval(dataset, plain, "search_area_scale=3")
    assert refused.exit_code == 1
    assert "holds IBFP runs made with other weights or settings" in refused.output
    assert "choose another --out" in refused.output


def test_track_tracks_with_the_settings_given(dataset, tmp_path):
    video = str(dataset / "clip.mp4")
    plain, tuned = tmp_path / "plain.csv", tmp_path / "tuned.csv"
    seed = pd.read_csv(dataset / "clip.gt.csv").iloc[0]
    base = ["track", video, "--box", f"{seed.x},{seed.y},{seed.w},{seed.h}", "--device", "cpu"]
    assert runner.invoke(app, [*base, "--out", str(plain)]).exit_code == 0
    result = runner.invoke(app, [*base, "--out", str(tuned), "--tracker-config", "search_area_scale=3"])
    assert result.exit_code == 0, result.output
    boxes = [pd.read_csv(path) for path in (plain, tuned)]
    assert len(boxes[0]) == len(boxes[1]) == CLIP.frames
    assert not boxes[0][["x", "y", "w", "h"]].equals(boxes[1][["x", "y", "w", "h"]])
    bad = runner.invoke(app, [*base, "--out", str(tmp_path / "bad.csv"), "--tracker-config", "sizelr=0.1"])
    assert bad.exit_code == 1 and "TrackerConfig has no setting 'sizelr'" in bad.output
    assert not (tmp_path / "bad.csv").exists()


def test_export_writes_the_settings_into_the_weights(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    model = IBFP(MOBILE_MODEL)
    torch.save({"model": model.state_dict(), "config": to_dict(TrainConfig()), "step": 7}, run / "checkpoint.pt")
    out = tmp_path / "tuned.pt"
    result = runner.invoke(
        app, ["train", "export", "--run", str(run), "--out", str(out), "--tracker-config", "size_lr=0.2"]
    )
    assert result.exit_code == 0, result.output
    _, meta = load_model(out)
    assert meta["tracker"]["size_lr"] == 0.2
    assert meta["tracker"]["search_area_scale"] == TrackerConfig().search_area_scale


@pytest.mark.parametrize("workers", [None, 2])
def test_batch_tracks_every_video_with_the_settings_given_as_track_does(dataset, tmp_path, workers):
    """The settings reach every video, in this process and in worker processes alike."""
    seed = pd.read_csv(dataset / "clip.gt.csv").iloc[0]
    seeds = tmp_path / "seeds.csv"
    seeds.write_text(f"video,frame,x,y,w,h\nclip,0,{seed.x},{seed.y},{seed.w},{seed.h}\n")
    box = ["--box", f"{seed.x},{seed.y},{seed.w},{seed.h}"]
    single = tmp_path / "single.csv"
    track = ["track", str(dataset / "clip.mp4"), *box, "--device", "cpu", "--out", str(single)]
    assert runner.invoke(app, [*track, "--tracker-config", "search_area_scale=3"]).exit_code == 0

    def batch(out: Path, *settings: str):
        args = ["batch", str(dataset), "--seeds", str(seeds), "--out-dir", str(out), "--device", "cpu"]
        args += ["--workers", str(workers)] if workers else []
        for item in settings:
            args += ["--tracker-config", item]
        return runner.invoke(app, args)

    tuned, plain = tmp_path / "tuned", tmp_path / "plain"
    assert batch(tuned, "search_area_scale=3").exit_code == 0
    assert batch(plain).exit_code == 0
    columns = ["frame", "x", "y", "w", "h"]
    boxes = pd.read_csv(tuned / "clip.csv")
    assert len(boxes) == CLIP.frames
    pd.testing.assert_frame_equal(boxes[columns], pd.read_csv(single)[columns])
    assert not boxes[columns].equals(pd.read_csv(plain / "clip.csv")[columns])
    bad = batch(tmp_path / "bad", "sizelr=0.1")
    assert bad.exit_code == 1 and "TrackerConfig has no setting 'sizelr'" in bad.output
    assert not (tmp_path / "bad").exists()
