"""Benchmarking trackers: datasets, runs, and OTB / LaSOT / GOT-10k scores and reports."""

from .datasets import Sequence, open_dataset
from .metrics import SequenceScore, aggregate, score_sequence
from .report import EvalReport, render_against_table, render_rich_table, render_together_table
from .runner import run_evaluation

__all__ = [
    "EvalReport",
    "Sequence",
    "SequenceScore",
    "aggregate",
    "open_dataset",
    "render_against_table",
    "render_rich_table",
    "render_together_table",
    "run_evaluation",
    "score_sequence",
]
