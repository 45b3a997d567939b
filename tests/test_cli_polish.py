"""What a new user trips over (issue 16): outputs checked before any work, honest review,
one-line errors, help that matches the README, one version, a README that works off this machine."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from typer.testing import CliRunner, Result

import ibfp_cli
from ibfp_cli.cli import app
from ibfp_cli.formats import read_annotations
from ibfp_cli.tracking.weights import shipped_weights

runner = CliRunner()
README = REPO_ROOT / "README.md"


def ibfp(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def box_text(row) -> str:
    return ",".join(f"{v:g}" for v in row)


def assert_one_error_line(result: Result, cause: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert result.stderr.splitlines() == [result.stderr.strip()], repr(result.stderr)
    assert result.stderr.startswith("error: ") and cause in result.stderr, result.stderr


@pytest.fixture
def tracked(small_video, tmp_path) -> tuple[Path, Path]:
    """The small video and a boxes.csv with scores, two doubtful frames (5, 6) and a seed keyframe."""
    video, truth = small_video
    boxes = tmp_path / "boxes.csv"
    rows = [f"{f},1,{box_text(truth[f])},{0.2 if f in (5, 6) else 0.9},0,{int(f == 0)}" for f in range(len(truth))]
    boxes.write_text("frame,id,x,y,w,h,score,lost,keyframe\n" + "\n".join(rows) + "\n")
    return video, boxes


# ---- 1. every output is checked before any work ----------------------------------------------


def test_track_with_a_render_into_a_missing_folder_fails_before_tracking(small_video, tmp_path) -> None:
    video, truth = small_video
    out = tmp_path / "boxes.csv"
    result = ibfp(
        "track", video, "--box", box_text(truth[0]), "--out", out, "--tracker", "kcf", "--render", "nodir/prev.mp4"
    )
    assert_one_error_line(result, "output folder nodir does not exist")
    assert not out.exists() and not result.stdout


def test_retrack_with_a_render_into_a_missing_folder_fails_before_tracking(tracked, tmp_path) -> None:
    video, boxes = tracked
    corrections = tmp_path / "corrections.csv"
    corrections.write_text("frame,id,x,y,w,h\n20,1,40,30,30,20\n")
    out = tmp_path / "out.csv"
    args = ["retrack", video, "-k", corrections, "--existing", boxes, "-o", out, "--tracker", "kcf"]
    result = ibfp(*args, "--render", tmp_path / "nodir" / "prev.mp4")
    assert_one_error_line(result, "nodir does not exist")
    assert not out.exists() and not result.stdout


def test_review_with_a_sheet_into_a_missing_folder_fails_before_listing(tracked, tmp_path) -> None:
    video, boxes = tracked
    result = ibfp("review", video, boxes, "--sheet", tmp_path / "nodir" / "review.png")
    assert_one_error_line(result, "nodir does not exist")
    assert not result.stdout


def test_an_output_check_leaves_nothing_behind(tracked, tmp_path) -> None:
    video, boxes = tracked
    before = set(tmp_path.iterdir())
    result = ibfp("render", video, boxes, "--out", tmp_path / "nodir" / "p.mp4")
    assert_one_error_line(result, "nodir does not exist")
    assert set(tmp_path.iterdir()) == before


# ---- 3. review needs scores; a wrong-format error names the likely format ---------------------


def test_review_refuses_a_file_without_scores(tracked, tmp_path) -> None:
    video, boxes = tracked
    studio = tmp_path / "boxes_ls.json"
    assert ibfp("convert", boxes, "--out", studio, "--format", "labelstudio", "--video", video).exit_code == 0
    result = ibfp("review", video, studio, "--format", "labelstudio")
    assert_one_error_line(result, "carry no scores (their file stores none)")
    assert "csv, mot, coco, cvat" in result.stderr and not result.stdout

    hand_made = tmp_path / "corrections.csv"
    hand_made.write_text("frame,id,x,y,w,h\n0,1,10,10,30,20\n1,1,11,10,30,20\n")
    assert_one_error_line(ibfp("review", video, hand_made), "carry no scores")


def test_review_still_lists_doubtful_runs_of_a_scored_file(tracked) -> None:
    video, boxes = tracked
    result = ibfp("review", video, boxes)
    assert result.exit_code == 0 and "5..6" in result.stdout


def test_a_label_studio_file_read_as_coco_names_its_format(tracked, tmp_path) -> None:
    video, boxes = tracked
    studio = tmp_path / "boxes_ls.json"
    assert ibfp("convert", boxes, "--out", studio, "--format", "labelstudio", "--video", video).exit_code == 0
    result = ibfp("render", video, studio, "--out", tmp_path / "p.mp4")
    assert_one_error_line(result, "a COCO file is a JSON object")
    assert result.stderr.rstrip().endswith("it reads as a labelstudio file (--format labelstudio)")


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["convert", "{studio}", "--out", "{tmp}/out.csv"], "--from"),
        (["retrack", "{video}", "-k", "{studio}", "-o", "{tmp}/out.csv", "--tracker", "kcf"], "--keyframes-format"),
        (["review", "{video}", "{studio}"], "--format"),
    ],
)
def test_a_format_hint_names_the_commands_own_option_and_following_it_works(
    tracked, tmp_path, command: list[str], option: str
) -> None:
    """Issue 24.4: convert reads BOXES by --from, retrack its keyframes by --keyframes-format."""
    video, boxes = tracked
    studio = tmp_path / "boxes_ls.json"
    assert ibfp("convert", boxes, "--out", studio, "--format", "labelstudio", "--video", video).exit_code == 0
    args = [a.format(studio=studio, tmp=tmp_path, video=video) for a in command]
    result = ibfp(*args)
    assert_one_error_line(result, "a COCO file is a JSON object")
    assert result.stderr.rstrip().endswith(f"it reads as a labelstudio file ({option} labelstudio)")
    followed = ibfp(*args, option, "labelstudio")
    if command[0] == "review":  # read now, and refused for what Label Studio files lack
        assert_one_error_line(followed, "carry no scores")
    else:
        assert followed.exit_code == 0, followed.output


def test_a_broken_file_gets_no_format_hint(tracked, tmp_path) -> None:
    video, _ = tracked
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    result = ibfp("render", video, broken, "--out", tmp_path / "p.mp4")
    assert_one_error_line(result, "not valid JSON")
    assert "--format" not in result.stderr


# ---- 4. one version ---------------------------------------------------------------------------


def test_one_version_in_package_weights_and_readme() -> None:
    declared = re.search(r'^version = "([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert declared is not None
    version = declared.group(1)
    newest = shipped_weights()[-1].name
    assert newest == f"ibfp-{version}.pt"
    assert f"ibfp {version}" in README.read_text()
    assert f"**IBFP {version} (shipped)**" in (REPO_ROOT / "weights" / "MODEL_CARD.md").read_text()


def test_version_option_prints_the_package_metadata() -> None:
    result = ibfp("--version")
    assert result.exit_code == 0
    assert result.stdout == f"ibfp {ibfp_cli.__version__}\n"
    try:
        assert ibfp_cli.__version__ == importlib.metadata.version("ibfp")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        assert ibfp_cli.__version__ == "0+unknown"


# ---- 5, 6, 10. README and repository ----------------------------------------------------------


def test_readme_links_resolve_inside_the_repository() -> None:
    text = README.read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local, "the README links its docs"
    for link in local:
        target = (REPO_ROOT / link).resolve()
        assert target.is_relative_to(REPO_ROOT) and target.exists(), link
    anchors = re.findall(r"\]\(#([^)]+)\)", text)
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}
    assert set(anchors) <= headings


def test_readme_commands_use_no_development_paths() -> None:
    """../shared is this repository's development data; no command a user copies points there."""
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", README.read_text(), re.DOTALL)
    assert blocks
    for block in blocks:
        assert "../shared" not in block, block


def test_readme_install_lines() -> None:
    """The README's install is the one CI runs, and it gives the CPU-only and annotate-only ones."""
    text = README.read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    ci_install = re.search(r"^pip install .*$", ci, re.MULTILINE)
    assert ci_install is not None and ci_install.group(0) in text
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert re.search(r"^pip install -e \.$", text, re.MULTILINE)
    assert '-m "not slow"' in text


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_demo_output_is_ignored_by_git() -> None:
    inside = subprocess.run(["git", "rev-parse"], cwd=REPO_ROOT, capture_output=True, check=False)
    if inside.returncode != 0:
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "demo/demo.mp4", "demo/boxes.csv"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert ignored.stdout.split() == ["demo/demo.mp4", "demo/boxes.csv"]


# ---- 7, 8. help and errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [([], "--version"), (["retrack"], "--replace-keyframes"), (["eval"], "--val-split"), (["batch"], "--render")],
)
def test_help_shows_flags_without_a_value_type(args: list[str], flag: str) -> None:
    result = runner.invoke(app, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if f"{flag} " in line)
    assert "<bool>" not in line and "<bool>" not in result.stdout


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("track", "ibfp track [OPTIONS] VIDEO"),
        ("render", "ibfp render [OPTIONS] VIDEO BOXES"),
        ("review", "ibfp review [OPTIONS] VIDEO BOXES"),
        ("convert", "ibfp convert [OPTIONS] BOXES"),
        ("batch", "ibfp batch [OPTIONS] FOLDER"),
        ("eval", "ibfp eval [OPTIONS] DATASET"),
    ],
)
def test_usage_lines_name_arguments_as_the_readme(command: str, usage: str) -> None:
    result = runner.invoke(app, [command, "--help"], prog_name="ibfp", terminal_width=200)
    assert f"Usage: {usage}" in result.stdout
    arguments = " ".join(usage.split("[OPTIONS]")[1].split())
    assert re.search(rf"^ibfp {command} {arguments}\b", README.read_text(), re.MULTILINE), arguments


def test_a_bad_choice_is_one_plain_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = ["track", "v.mp4", "--box", "1,2,3,4", "--out", "b.csv", "--device", "gpu"]
    result = subprocess.run([sys.executable, "-m", "ibfp_cli", *args], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: Invalid value for '--device': 'gpu' is not one of 'auto', 'cpu', 'cuda'."
    ), result.stderr


def test_track_errors_are_exactly_one_line(tmp_path) -> None:
    result = ibfp("track", tmp_path / "nope.mp4", "--box", "1,2,3,4", "--out", tmp_path / "b.csv")
    assert result.exit_code == 1
    assert result.stderr == f"error: video {tmp_path / 'nope.mp4'} does not exist\n"


# ---- 9. seeds files from Windows tools --------------------------------------------------------


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_batch_reads_seeds_with_windows_or_old_mac_line_endings(small_video, tmp_path, newline: str) -> None:
    video, truth = small_video
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "street.mp4").write_bytes(video.read_bytes())
    seeds = tmp_path / "seeds.csv"
    lines = [
        "video,frame,x,y,w,h,id,label",
        f"street.mp4,0,{box_text(truth[0])},1,person",
        f"street.mp4,2,{box_text(truth[2])},2,car",
    ]
    seeds.write_bytes(newline.join(lines).encode() + newline.encode())
    result = ibfp("batch", folder, "--seeds", seeds, "--out-dir", tmp_path / "out", "--tracker", "kcf")
    assert result.exit_code == 0, result.output
    annotations = read_annotations(tmp_path / "out" / "street.csv")
    assert annotations.labels() == {1: "person", 2: "car"}
    assert [r.frame for r in annotations.track(2)][0] == 2


def test_progress_speed_reads_as_seconds_per_video_when_slow_and_per_second_when_fast():
    from rich.progress import Progress

    from ibfp_cli.cli.common import _Speed

    clock = [0.0]
    bars = Progress(get_time=lambda: clock[0])
    videos = bars.add_task("videos", total=10, unit="videos")
    frames = bars.add_task("clip.mp4", total=100)
    for _ in range(3):
        clock[0] += 12.5
        bars.update(videos, advance=1)
    for _ in range(3):
        clock[0] += 0.04
        bars.update(frames, advance=1)
    speed = _Speed("frames")
    assert str(speed.render(bars.tasks[0])) == "12.5 s/video"
    assert str(speed.render(bars.tasks[1])) == "25.0 frames/s"
