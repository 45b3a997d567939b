"""`ibfp correct`: parse the options, open the session, serve the page, report."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from types import ModuleType
from typing import Annotated, Literal

import typer
from rich.markup import escape

from ..annotate.review import DEFAULT_THRESHOLD
from ..annotate.select_box import display_problem
from ..errors import IBFPError
from ..formats import format_names
from .session import TrackerChoice, open_session

UI_MODULES = frozenset({"fastapi", "starlette", "uvicorn", "pydantic", "anyio", "h11"})
"""What the server imports from the `ui` extra; any of them missing means the extra is."""
UI_EXTRA_HINT = 'the correction page needs the ui extra: install with pip install "ibfp[ui]"'


def correct(
    video: Annotated[
        Path, typer.Argument(metavar="VIDEO", help="The video to correct the boxes of.", show_default=False)
    ],
    boxes: Annotated[
        Path | None,
        typer.Argument(
            metavar="BOXES",
            help="Its annotation file (the output of track or retrack). Without it, draw the first boxes "
            "on the page and press Track.",
            show_default=False,
        ),
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where Save writes the boxes. Default: BOXES itself (needed without BOXES). "
            "Written only when complete.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    keyframes: Annotated[
        Path | None,
        typer.Option(
            "--keyframes",
            "-k",
            help="Keyframes file: read at start if it exists, written by Save (the boxes you drew, "
            "the file `ibfp retrack --keyframes` takes; format from its extension).",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="NAME",
            help=f"Format Save writes: {', '.join(format_names())}. Default: from the extension of --out, "
            "else the format of BOXES.",
            show_default=False,
        ),
    ] = None,
    source_format: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="NAME",
            help="Format of BOXES, as for --format. Default: --format when Save writes BOXES, else from its extension.",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option(min=0.0, help="Boxes scored below this, or lost, are doubtful (as in `ibfp review`).")
    ] = DEFAULT_THRESHOLD,
    host: Annotated[
        str,
        typer.Option(
            help="Address to serve on. The default is reachable from this machine only; "
            "from another machine use `ssh -L` (README) rather than another address."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to serve on; 0: a free one.")] = 0,
    browser: Annotated[
        bool,
        typer.Option(
            "--browser/--no-browser", help="Open the page in this machine's browser (never without a display)."
        ),
    ] = True,
    tracker: Annotated[str, typer.Option(help="Tracker Track and Retrack run; `ibfp trackers` lists them.")] = "ibfp",
    device: Annotated[
        Literal["auto", "cpu", "cuda"], typer.Option(help="Where the IBFP network runs, as for `ibfp track`.")
    ] = "auto",
    backend: Annotated[
        Literal["auto", "torch", "onnx", "onnx-int8"],
        typer.Option(help="How the IBFP network runs, as for `ibfp track`."),
    ] = "auto",
    weights: Annotated[
        Path | None,
        typer.Option(help="IBFP weights file. Default: the shipped weights.", show_default=False, dir_okay=False),
    ] = None,
) -> None:
    """Correct the boxes in the browser: every box, a timeline per object, drag to fix, Retrack, Save.

    Serves the page on this machine only (127.0.0.1) behind a random token, and prints its URL.
    Only VIDEO, BOXES, --out and --keyframes are read or written. Ctrl-C stops the server.
    """
    from ..cli.common import err, out  # here: cli imports this module
    from ..cli.common import reported_errors as _reported_errors

    with _reported_errors():
        server = _server_module()
        session = open_session(
            video,
            boxes,
            out=out_file,
            fmt=fmt,
            source_format=source_format,
            keyframes=keyframes,
            tracker=TrackerChoice(tracker, device, backend, weights),
            threshold=threshold,
        )
        try:
            page = server.PageServer(session, host, port)
        except BaseException:
            session.close()
            raise
        if not server.is_loopback(host):
            err.print(
                f"[yellow]warning:[/yellow] serving on {host}: anyone who reaches this address and has the URL "
                "can see the video and write the files; ssh -L keeps it on 127.0.0.1",
                soft_wrap=True,
            )
        if not session.targets.keeps_keyframes:
            err.print(
                f"note: {session.targets.format} files do not mark keyframes; give --keyframes FILE to keep them",
                soft_wrap=True,
            )
        targets = [str(session.targets.boxes), *([str(keyframes)] if keyframes is not None else [])]
        out.print(f"correction page: {escape(page.url)}", soft_wrap=True, highlight=False)
        out.print(f"Save writes {escape(' and '.join(targets))}; Ctrl-C stops the server", soft_wrap=True)
        if browser and display_problem() is None:
            webbrowser.open(page.url)
        page.run()
        unsaved = " (changes since the last Save were not written)" if session.unsaved else ""
        out.print(f"stopped{unsaved}", soft_wrap=True)


def _server_module() -> ModuleType:
    """The server module; IBFPError naming the extra where FastAPI or uvicorn is missing."""
    try:
        from . import server
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] in UI_MODULES:
            raise IBFPError(UI_EXTRA_HINT) from None
        raise
    return server
