"""Outputs are written to a temporary file beside the target and renamed when complete."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import IBFPError


@contextmanager
def atomic_output(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto the target on success.

    On any exception (Ctrl-C included) the temporary file is removed and the target is
    left as it was. The temporary name keeps the target's suffix, so writers that pick
    a container by extension (PyAV) still work.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise IBFPError(f"output folder {folder} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=folder)
    except OSError as e:
        raise IBFPError(f"cannot write to {folder}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(_new_file_mode())  # mkstemp makes the file private; outputs get the usual mode
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_partials(target: str | os.PathLike[str]) -> None:
    """Remove the temporary files `atomic_output` left for `target` in a process that was
    killed (a worker or node that died mid-video: no exception ran to clean up)."""
    target = Path(target)
    # mkstemp's random part has no dots, so another target's `.<stem>.<more>.` never matches
    pattern = re.compile(rf"\.{re.escape(target.stem)}\.[^.]+\.partial{re.escape(target.suffix)}")
    if target.parent.is_dir():
        for path in target.parent.iterdir():
            if pattern.fullmatch(path.name):
                path.unlink(missing_ok=True)


def _new_file_mode() -> int:
    """The mode open() would give a new file: rw for all, less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def ensure_folder(folder: str | os.PathLike[str]) -> Path:
    """Create an output folder (and its parents) if missing; IBFPError when that is impossible."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IBFPError(f"cannot create output folder {folder}: {e.strerror or e}") from None
    return folder
