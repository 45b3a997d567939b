"""The `ibfp` command line assembled: every command registered in the order `ibfp --help`
lists them, and `run`, the console command. No logic lives here."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from .. import __version__
from ..batch.ray_runner import LOCAL, is_ray_address
from ..correct.command import correct
from . import help_style
from .annotate import convert, list_trackers, retrack, review
from .batch import batch
from .common import EXIT_USAGE, err, out
from .dataset import export
from .evaluate import evaluate
from .track import demo, frame_image, info, render, select, track
from .train import train_app

PYDANTIC_VALUE_ERROR = "Value error, "
"""Pydantic, which Typer checks option values with, starts the message of a refused choice
with this; it tells the user nothing."""

help_style.apply()
app = typer.Typer(name="ibfp", no_args_is_help=True, add_completion=False)
app.add_typer(train_app, name="train")


def _version(value: bool) -> None:
    if value:
        out.print(f"ibfp {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Video annotation assistant: draw a box on one frame, get the object's box on every frame."""


app.command()(track)
app.command()(render)
app.command()(convert)
app.command()(batch)
app.command()(info)
app.command()(demo)
app.command()(retrack)
app.command()(review)
app.command()(correct)  # ibfp_cli/correct/command.py
app.command(name="eval")(evaluate)
app.command(name="trackers")(list_trackers)
app.command()(export)
app.command(name="frame")(frame_image)
app.command(name="select")(select)


OPTIONAL_VALUES = {"--ray": (LOCAL, is_ray_address)}
"""Options whose value may be left out, with the value then used and what counts as a value
(Typer has no options with optional values)."""


def fill_optional_values(args: list[str]) -> list[str]:
    """Command-line arguments with the default value put after each such option given alone."""
    filled: list[str] = []
    for i, arg in enumerate(args):
        filled.append(arg)
        if arg == "--":  # everything after is an argument
            return filled + args[i + 1 :]
        if arg in OPTIONAL_VALUES:
            default, is_value = OPTIONAL_VALUES[arg]
            if i + 1 == len(args) or not is_value(args[i + 1]):
                filled.append(default)
    return filled


def run() -> None:
    """The `ibfp` console command: the app, with usage errors (an unknown option, a bad value,
    a missing argument) on one `error:` line like every other error, and exit code 2."""
    try:
        code = app(args=fill_optional_values(sys.argv[1:]), prog_name="ibfp", standalone_mode=False)
    except Exception as e:  # Click's UsageError, vendored or not depending on the Typer version
        if getattr(e, "exit_code", None) != EXIT_USAGE or not hasattr(e, "format_message"):
            raise
        if type(e).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            ctx = getattr(e, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            message = e.format_message().replace(PYDANTIC_VALUE_ERROR, "")
            err.print(f"[red]error:[/red] {escape(message)}{hint}", soft_wrap=True)
        sys.exit(EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else 0)
