"""An evaluation against an earlier one of the same sequences, paired by sequence.

Two weights files, or two settings, are told apart by their scores on the same sequences: the
mean per-sequence gain, its bootstrap interval over sequences and how many sequences gained
(weights/TRAINING.md ships new weights only when that interval is above 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import IBFPError
from .report import AGAINST_COLUMNS, BOOTSTRAP_LEVEL, PER_SEQUENCE_CSV, Against, bootstrap_interval, sequence_means


@dataclass(frozen=True)
class PairedDifference:
    """The mean of per-sequence differences, its bootstrap interval, and how many are above 0."""

    mean: float
    low: float
    high: float
    better: int
    count: int

    def text(self) -> str:
        return (
            f"{self.mean:+.3f} ({BOOTSTRAP_LEVEL:.0%}: {self.low:+.3f}..{self.high:+.3f}), "
            f"better on {self.better} of {self.count}"
        )


def paired_difference(ours: Mapping[str, float], theirs: Mapping[str, float]) -> PairedDifference:
    """`ours` minus `theirs` on the sequences both have."""
    gains = np.array([ours[name] - theirs[name] for name in sorted(ours.keys() & theirs.keys())])
    if not len(gains):
        return PairedDifference(float("nan"), float("nan"), float("nan"), 0, 0)
    low, high = bootstrap_interval(list(gains))
    return PairedDifference(float(gains.mean()), low, high, int((gains > 0).sum()), len(gains))


def read_per_sequence(folder: Path) -> pd.DataFrame:
    """The per-run table of an `ibfp eval` report folder."""
    path = Path(folder) / PER_SEQUENCE_CSV
    if not path.is_file():
        raise IBFPError(f"{folder} has no {PER_SEQUENCE_CSV}: not an `ibfp eval` report folder")
    return pd.read_csv(path)


def compare_reports(ours: pd.DataFrame, theirs: pd.DataFrame, folder: Path) -> Against:
    """Each tracker in both per-run tables (`per_sequence.csv`), ours against theirs."""
    rows = []
    for tracker in dict.fromkeys(ours["tracker"]):
        if tracker not in set(theirs["tracker"]):
            continue
        mine, earlier = _by_sequence(ours, tracker), _by_sequence(theirs, tracker)
        common = mine.index.intersection(earlier.index)
        if common.empty:
            continue
        mine, earlier = mine.loc[common], earlier.loc[common]
        auc = paired_difference(mine["auc"].to_dict(), earlier["auc"].to_dict())
        gains = (mine["auc"] - earlier["auc"]).sort_values()
        rows.append(
            {
                "tracker": tracker,
                "sequences": len(common),
                "auc": mine["auc"].mean(),
                "against_auc": earlier["auc"].mean(),
                "gain": auc.mean,
                "gain_low": auc.low,
                "gain_high": auc.high,
                "better": auc.better,
                "sr75_gain": (mine["sr75"] - earlier["sr75"]).mean(),
                "aspect_error_gain": (mine["aspect_error"] - earlier["aspect_error"]).mean(),
                "largest_loss": f"{gains.index[0]} {gains.iloc[0]:+.3f}",
                "largest_gain": f"{gains.index[-1]} {gains.iloc[-1]:+.3f}",
            }
        )
    return Against(str(folder), pd.DataFrame(rows, columns=list(AGAINST_COLUMNS)))


def _by_sequence(per_run: pd.DataFrame, tracker: str) -> pd.DataFrame:
    """One tracker's scores per sequence, the mean over its runs (starts)."""
    return sequence_means(per_run[per_run["tracker"] == tracker]).loc[tracker]
