"""Split a batch into N shards for job arrays: the same disjoint, covering split on every machine."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_SHARD_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (1-based, as job arrays and people count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 1 <= K <= N")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, names: Iterable[str]) -> list[str]:
        """This shard's names: the names sorted, then every N-th from the K-th (round robin).

        Round robin keeps shards within one video of each other in size; sorting makes the
        split depend only on the set of names, not on the order they were listed in.
        """
        return sorted(set(names))[self.index - 1 :: self.count]


def parse_shard(text: str) -> Shard:
    """`K/N` -> Shard(K, N); ValueError with a one-line reason for anything else."""
    match = _SHARD_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not K/N (e.g. 1/4: the first of four shards)")
    return Shard(int(match.group(1)), int(match.group(2)))
