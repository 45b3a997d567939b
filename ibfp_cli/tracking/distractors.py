"""Look-alikes of a single object: peaks that compete with the target for several frames are
remembered and their cells damped while the target is held (issue 28.3; DaSiamRPN's
distractor-aware tracking, KeepTrack's candidate association, reduced to the strongest rival).

Pure bookkeeping on boxes, no network: the tracker reports, each frame it holds its target, the
strongest peak away from it (`observe`), and damps the remembered ones like other objects'
boxes (`active`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..boxes import Box


@dataclass
class Distractor:
    """One remembered rival: its last box (frame pixels), frames seen and frames missed since."""

    box: Box
    seen: int = 1
    missed: int = 0


class DistractorMemory:
    """Rivals seen on at least `after` frames are active; one missed on more than `forget` frames
    in a row is dropped. A rival is the same one as a remembered one when its centre lies within
    that one's box."""

    def __init__(self, after: int, forget: int) -> None:
        self.after, self.forget = after, forget
        self.rivals: list[Distractor] = []

    def active(self) -> list[Box]:
        """The boxes to damp on the next frame."""
        return [r.box for r in self.rivals if r.seen >= self.after]

    def observe(self, rival: Box | None) -> None:
        """One frame's strongest rival (None: none strong enough)."""
        match = None if rival is None else self._match(rival)
        for r in self.rivals:
            r.missed = 0 if r is match else r.missed + 1
        if match is not None and rival is not None:
            match.box, match.seen = rival, match.seen + 1
        self.rivals = [r for r in self.rivals if r.missed <= self.forget]
        if rival is not None and match is None:
            self.rivals.append(Distractor(rival))

    def _match(self, rival: Box) -> Distractor | None:
        """The remembered rival whose box holds this one's centre (the nearest, if several)."""
        holding = [
            r
            for r in self.rivals
            if abs(rival.cx - r.box.cx) <= r.box.w / 2 and abs(rival.cy - r.box.cy) <= r.box.h / 2
        ]
        return min(holding, key=lambda r: (rival.cx - r.box.cx) ** 2 + (rival.cy - r.box.cy) ** 2, default=None)

    def clear(self) -> None:
        """Forget every rival (the target itself was lost)."""
        self.rivals = []
