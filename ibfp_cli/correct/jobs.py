"""Background runs of the correction page (track, retrack): one thread each, with progress,
cancellation and a one-line outcome the page shows."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from ..errors import IBFPError
from ..progress import ProgressCallback

T = TypeVar("T")
JobState = Literal["running", "done", "failed", "cancelled"]


class Cancelled(Exception):
    """Raised inside a job's work by its progress callback once the job is cancelled."""


@dataclass(frozen=True, slots=True)
class JobStatus:
    """What the page shows of a job: its kind, how far it got, and how it ended."""

    kind: str
    state: JobState
    done: int
    total: int
    message: str


class Job(Generic[T]):
    """`work(progress)` in a thread; when it returns, `finish(result)` applies the result and
    says in a line what changed. Errors a user can fix end the job as failed with their
    message; `cancel` stops the work at its next progress report, and nothing is applied."""

    def __init__(self, kind: str, work: Callable[[ProgressCallback], T], finish: Callable[[T], str]) -> None:
        self.kind = kind
        self._work = work
        self._finish = finish
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._state: JobState = "running"
        self._done = 0
        self._total = 0
        self._message = ""
        self._thread = threading.Thread(target=self._run, name=f"ibfp-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Stop the work at its next progress report and wait for the thread to end."""
        self._cancel.set()
        if self._thread.is_alive():
            self._thread.join()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        with self._lock:
            return self._state == "running"

    def status(self) -> JobStatus:
        with self._lock:
            return JobStatus(self.kind, self._state, self._done, self._total, self._message)

    def _progress(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled
        with self._lock:
            self._done, self._total = done, total

    def _end(self, state: JobState, message: str) -> None:
        with self._lock:
            self._state, self._message = state, message

    def _run(self) -> None:
        try:
            result = self._work(self._progress)
            if self._cancel.is_set():
                raise Cancelled
            message = self._finish(result)
        except Cancelled:
            self._end("cancelled", f"{self.kind} stopped; nothing changed")
        except IBFPError as e:
            self._end("failed", f"{self.kind} failed: {e}")
        except Exception as e:  # a bug: shown on the page, its traceback where the server runs
            traceback.print_exc()
            self._end("failed", f"{self.kind} failed: {type(e).__name__}: {e}")
        else:
            self._end("done", message)
