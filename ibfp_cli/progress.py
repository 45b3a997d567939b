"""Progress callbacks: how long-running functions report how far they have got."""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[int, int], None]
"""Called as progress(done, total) while frames are processed."""

StageProgress = Callable[[str], ProgressCallback]
"""Called once per stage of a longer job with the stage's description; returns its callback."""
