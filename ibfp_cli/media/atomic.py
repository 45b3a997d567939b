"""Outputs are written to a temporary file beside the target and renamed when complete."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import IBFPError


@contextmanager
def atomic_output(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto the target on success.

    On any exception (Ctrl-C included) the temporary file is removed and the target is
    left as it was. The temporary name keeps the target's suffix, so writers that pick
    a container by extension (PyAV) still work.
    """
    target = Path(target)
    tmp = _temporary_beside(target)
    tmp.chmod(_new_file_mode())  # mkstemp makes the file private; outputs get the usual mode
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_output(target: str | os.PathLike[str]) -> None:
    """Fail now, before any work, where `target` could not be written later: its folder must
    exist and take a new file (the same test `atomic_output` makes, with the same message)."""
    _temporary_beside(Path(target)).unlink()


def _temporary_beside(target: Path) -> Path:
    """A new empty file in the target's folder, named after it; IBFPError where that is impossible."""
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise IBFPError(f"output folder {folder} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=folder)
    except OSError as e:
        raise IBFPError(f"cannot write to {folder}: {e.strerror or e}") from None
    os.close(fd)
    return Path(tmp_name)


@contextmanager
def atomic_folder(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; rename it to `target` on success.

    `target` must not exist, or be an empty folder; its parent must exist. On any exception
    (Ctrl-C included) the temporary folder and everything in it is removed.
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise IBFPError(f"output folder {parent} does not exist")
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise IBFPError(f"{target} already exists; give a new folder or remove it")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
    except OSError as e:
        raise IBFPError(f"cannot write to {parent}: {e.strerror or e}") from None
    tmp.chmod(_NEW_FOLDER_MODE & ~_umask())  # mkdtemp makes the folder private
    try:
        yield tmp
        if target.is_dir():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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


_NEW_FOLDER_MODE = 0o777
"""What mkdir() gives a new folder before the umask: rwx for all."""


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _new_file_mode() -> int:
    """The mode open() would give a new file: rw for all, less the process umask."""
    return 0o666 & ~_umask()


def ensure_folder(folder: str | os.PathLike[str]) -> Path:
    """Create an output folder (and its parents) if missing; IBFPError when that is impossible."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IBFPError(f"cannot create output folder {folder}: {e.strerror or e}") from None
    return folder
