"""What every command of the `ibfp` command line shares: its consoles, exit codes, the options
several commands take, error reporting and progress bars."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..errors import IBFPError, OtherFormatError
from ..formats import FORMAT_BY_EXTENSION, format_names
from ..media.atomic import check_output
from ..progress import ProgressCallback, StageProgress
from ..tracking.opencv_trackers import MODELS_ENV

EXIT_ERROR = 1
EXIT_USAGE = 2  # a bad option value, an unknown option, a missing argument (Click's code)
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command stopped with Ctrl-C."""
DEFAULT_TRACKER = "ibfp"

Device = Literal["auto", "cpu", "cuda"]
BackendName = Literal["auto", "torch", "onnx", "onnx-int8"]

out = Console()
err = Console(stderr=True, highlight=False)

FORMAT_LIST = ", ".join(format_names())
EXTENSION_LIST = ", ".join(f"{ext} = {name}" for ext, name in FORMAT_BY_EXTENSION.items())
"""The annotation formats and the extensions that pick them, as option help lists them."""

# Options shared by several commands.
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help=f"Annotation format: {FORMAT_LIST}. Default: from the file extension ({EXTENSION_LIST}).",
        show_default=False,
    ),
]
TrackerOption = Annotated[
    str,
    typer.Option(
        help="Tracker by name; `ibfp trackers` lists them and whether each can run here. "
        f"nano and vit read their ONNX files from the folder in ${MODELS_ENV}."
    ),
]
DeviceOption = Annotated[
    Device,
    typer.Option(
        help="Where the IBFP network runs: auto = CUDA if torch sees a GPU, else CPU. "
        "OpenCV trackers always run on the CPU."
    ),
]
BackendOption = Annotated[
    BackendName,
    typer.Option(
        help="How the IBFP network runs: onnx = ONNX Runtime in fp32 (CPU only; the same boxes as torch), "
        "onnx-int8 = ONNX Runtime with int8 graphs (CPU only; faster graphs, slightly different boxes), "
        "torch = PyTorch (CPU or CUDA; the fallback), auto = onnx on the CPU when onnxruntime is "
        "installed, else torch. The ONNX graphs are exported from the weights (and the int8 ones "
        "calibrated) at first use and cached in $IBFP_CACHE_DIR (default ~/.cache/ibfp)."
    ),
]
WeightsOption = Annotated[
    Path | None,
    typer.Option(
        help="IBFP weights file (.pt). Default: the weights shipped with ibfp.", show_default=False, dir_okay=False
    ),
]

TrackerConfigOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tracker-config",
        metavar="KEY=VALUE",
        help="An IBFP tracker setting, e.g. size_lr=0.15 (a field of ibfp_cli.config.TrackerConfig), "
        "in place of the weights' own; repeat the option for several.",
        show_default=False,
    ),
]

RenderOption = Annotated[
    Path | None,
    typer.Option(help="Also write a preview video (.mp4) with the boxes drawn.", show_default=False, dir_okay=False),
]


@contextmanager
def reported_errors(file_options: Mapping[Path, str] | None = None) -> Iterator[None]:
    """Turn IBFPError into one red line and exit 1; Ctrl-C into 'interrupted' and exit 130.

    `file_options` (from `format_options`) maps the annotation files the command reads to
    its option naming each one's format: a file that reads as another format gets that option
    and format as the fix.
    """
    options = file_options or {}
    try:
        yield
    except IBFPError as e:
        message = str(e)
        if isinstance(e, OtherFormatError) and e.path in options:
            message += f" ({options[e.path]} {e.likely})"
        err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        err.print("interrupted", soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def format_options(ctx: typer.Context, files: Mapping[Path | None, str]) -> dict[Path, str]:
    """Each annotation file given (None: not given) -> the running command's option that names
    its format, looked up by its parameter (e.g. source_format -> --from)."""
    flags = {param.name: param.opts[0] for param in ctx.command.params}
    return {path: flags[name] for path, name in files.items() if path is not None}


class _Speed(ProgressColumn):
    """Processing speed in units (frames, runs) per second, or seconds per unit (videos that
    take a minute each) when below one a second."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", self.unit)
        if not speed:
            text = f"-- {unit}/s"
        elif speed < 1:
            text = f"{1 / speed:.1f} s/{unit.removesuffix('s')}"
        else:
            text = f"{speed:.1f} {unit}/s"
        return Text(text, style="progress.data.speed")


def progress_bars(unit: str) -> Progress:
    """Bars on stderr: description, bar, done/total, speed in `unit`/s (or a task's own unit), time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Speed(unit),
        TimeRemainingColumn(),
        console=err,
    )


@contextmanager
def stage_progress(unit: str = "frames") -> Iterator[StageProgress]:
    """Progress bars on stderr; yields a function that starts a bar for a stage and returns
    that stage's progress(done, total) callback. Nothing is drawn before the first report."""
    bars = progress_bars(unit)

    def stage(description: str) -> ProgressCallback:
        task: list[TaskID] = []

        def update(done: int, total: int) -> None:
            if not task:
                bars.start()
                task.append(bars.add_task(description, total=total))
            bars.update(task[0], completed=done, total=total)

        return update

    try:
        yield stage
    finally:
        if bars.live.is_started:  # stopping bars never drawn still prints an empty line off a terminal
            bars.stop()


def check_outputs(*paths: Path | None) -> None:
    """Fail before any work where an output (None: not asked for) could not be written."""
    for path in paths:
        if path is not None:
            check_output(path)
