"""Evaluation results as tables (CSV, Markdown, rich) and success / precision plots."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.table import Table

from ..annotate.review import DEFAULT_THRESHOLD
from ..media.atomic import atomic_output
from ..wording import counted
from .boxfit import (
    CENTRED_WITHIN,
    NETWORK_CHECK_EVERY,
    NO_FIT,
    REFIND_GROWTH,
    REFIND_OFFSET,
    SCALE_PROBES,
    BoxFit,
    NetworkCheck,
    mean_fit,
    summarize,
)
from .identities import MATCH_IOU
from .metrics import (
    NORM_PRECISION_AT,
    PRECISION_AT_PX,
    PRECISION_THRESHOLDS,
    SUCCESS_THRESHOLDS,
    SequenceScore,
    aggregate,
)

if TYPE_CHECKING:
    from .together import TogetherResult

METRIC_LABELS = {
    "auc": "AUC",
    "prec20": f"Prec@{PRECISION_AT_PX:g}",
    "norm_prec": f"NormPrec@{NORM_PRECISION_AT:g}",
    "ao": "AO",
    "sr50": "SR0.5",
    "sr75": "SR0.75",
    "fps": "FPS",
}
"""Column name -> heading, in the order of PEERS.md's tables (plus GOT-10k's AO and SR)."""

FIT_LABELS = {"centred": "Centred", "size_ratio": "Size ratio", "aspect_error": "Aspect error"}
"""Box fit (evaluate.boxfit.BoxFit): share of frames on the target, and how its box fits there."""

PER_SEQUENCE_COLUMNS = ("tracker", "sequence", "start", "frames", "frames_scored", *METRIC_LABELS, *FIT_LABELS)
OVERALL_COLUMNS = (
    "tracker",
    "sequences",
    "frames",
    "frames_scored",
    *METRIC_LABELS,
    "auc_low",
    "auc_high",
    *FIT_LABELS,
)
NETWORK_COLUMNS = (
    "network", "sequence", "frames", "iou", "size_ratio", "aspect_error", "scale_correction", "settled_size", "refound",
)  # fmt: skip
NETWORK_CSV = "network_check.csv"
TOGETHER_COLUMNS = (
    "tracker",
    "sequence",
    "objects",
    "crossings",
    "switches",
    "merged_frames",
    "wrong_frames",
    "own_share",
    "auc",
)
TOGETHER_CSV = "together.csv"
AGAINST_COLUMNS = (
    "tracker", "sequences", "auc", "against_auc", "gain", "gain_low", "gain_high", "better",
    "sr75_gain", "aspect_error_gain", "largest_loss", "largest_gain",
)  # fmt: skip
AGAINST_CSV = "against.csv"
ALL_SEQUENCES = "all"
BOOTSTRAP_SAMPLES = 10_000  # resamples of the sequences for the AUC interval
BOOTSTRAP_LEVEL = 0.90  # issue 11: a 90% interval over sequences
BOOTSTRAP_SEED = 0

SUMMARY_CSV = "summary.csv"
PER_SEQUENCE_CSV = "per_sequence.csv"
REPORT_MD = "report.md"
SUCCESS_PNG = "success.png"
PRECISION_PNG = "precision.png"
EVAL_EXTRA_HINT = "pip install ibfp[eval]"
PLOT_SIZE_IN = (6.4, 4.8)
PLOT_DPI = 100
PLOT_GRID_ALPHA = 0.3
MISSING = "n/a"

PROTOCOL = (
    "One-pass evaluation: each tracker starts from the ground-truth box on frame 0 and is never "
    "re-initialised; frame 0 and frames whose target is absent are not scored. "
    f"AUC: area under the success curve over IoU thresholds 0, 0.05, ..., 1 (IoU > t); "
    f"Prec@{PRECISION_AT_PX:g}: centre error <= {PRECISION_AT_PX:g} px; "
    f"NormPrec@{NORM_PRECISION_AT:g}: centre error over the ground-truth size <= "
    f"{NORM_PRECISION_AT:g}; AO, SR0.5, SR0.75: GOT-10k mean IoU and IoU > 0.5 / 0.75. "
    "Scores are means over sequences. FPS = frames / summed tracker-call time (decoding excluded). "
    f"AUC interval: {BOOTSTRAP_LEVEL:.0%} bootstrap over sequences ({BOOTSTRAP_SAMPLES:,} resamples). "
    "Box fit, on the frames where the box centre is within half a target size (sqrt(w h)) of the "
    "true centre (Centred: their share): Size ratio, the median sqrt(w h / w_true h_true); "
    "Aspect error, the mean of abs(log((w / h) / (w_true / h_true))); each a mean over sequences."
)

AGAINST_PROTOCOL = (
    "Each tracker of this report against the same tracker in the earlier report, on the sequences "
    "both scored (a sequence's score: the mean of its runs): AUC gain, the mean of the per-sequence "
    f"differences with its {BOOTSTRAP_LEVEL:.0%} bootstrap interval over sequences; better: sequences "
    "whose AUC rose; SR0.75 and aspect-error gains the mean per-sequence differences (an aspect-error "
    "gain below 0 is better)."
)
NETWORK_PROTOCOL = (
    f"The network alone, with no tracking feedback: on every {NETWORK_CHECK_EVERY}th scored frame the search crop is "
    "centred on the true box at its true scale, as the tracker would cut it; the head's box at the "
    "score peak (online branch off, nothing smoothed) against the truth, pooled over frames. Scale "
    f"correction: the crops are also cut for boxes {' and '.join(f'{p:g}' for p in SCALE_PROBES)} times the "
    "true size; the share of that scale error the network's box corrects (1 = all of it). Settled size: "
    "the size ratio at which a tracker cutting each crop at its own last box would stop changing size. "
    f"Re-found: the crop cut {REFIND_GROWTH:g} times wider, as the tracker cuts it after losing the target, "
    f"centred {REFIND_OFFSET:g} target size beside the truth: the share of frames whose box centre is back "
    f"within {CENTRED_WITHIN:g} target sizes of the target's. NanoTrack's network (nano among the trackers): "
    "the same frames and boxes, its windows cut around them as its tracker cuts them, its template from the "
    "first frame, its box at the peak its tracker would choose (cosine window, size-change penalty)."
)
TOGETHER_PROTOCOL = (
    "Sequences whose ground truth has several objects (an id column): every object seeded on its "
    "first annotated frame, all tracked together (IBFP: in one network batch, knowing each other; "
    "other trackers: each object alone). A track covers the object its box overlaps most, if by IoU "
    f">= {MATCH_IOU:g}, and counts only where confident (not lost, score >= {DEFAULT_THRESHOLD:g}, "
    "review's default). Identity switches: times a track moves to another object than the one it last "
    "covered; merged frames: frames with two confident tracks on one object; wrong frames: confident "
    "track-frames on another object; crossings: times two objects' true boxes start to overlap. "
    "AUC: each object's, from the frame after its seed, averaged over objects."
)


@dataclass(frozen=True, eq=False)
class SequenceResult:
    """One tracker on one sequence from frame `start`: its scores and the seconds spent in
    tracker calls."""

    tracker: str
    sequence: str
    frames: int
    score: SequenceScore
    track_seconds: float
    fit: BoxFit = NO_FIT
    start: int = 0


@dataclass(frozen=True, eq=False)
class Against:
    """A report's comparison with the earlier report in `folder`: one AGAINST_COLUMNS row per
    tracker (`compare.compare_reports`; `markdown_report` and `render_against_table` show it)."""

    folder: str
    table: pd.DataFrame


@dataclass(frozen=True, eq=False)
class EvalReport:
    """Scores per tracker (`overall`, best AUC first) and per (tracker, sequence)."""

    overall: pd.DataFrame
    per_sequence: pd.DataFrame
    curves: dict[str, SequenceScore]
    """Each available tracker's mean success / precision curves."""
    unavailable: dict[str, str]
    """Tracker name -> why it could not run here."""
    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    network: pd.DataFrame | None = None
    """The IBFP network check per sequence and over all (`network_table`), when it was run."""
    together: pd.DataFrame | None = None
    """Sequences with several objects, all tracked together (`together_table`), when there are any."""
    against: Against | None = None
    """This report against an earlier one, paired by sequence (`compare.compare_reports`), when asked."""


def build_report(results: Iterable[SequenceResult], unavailable: dict[str, str]) -> EvalReport:
    """Per-run and overall tables from the results of each (tracker, sequence, start); a
    sequence's runs from several starts count as one sequence, their mean."""
    results = list(results)
    rows = [
        {"tracker": r.tracker, "sequence": r.sequence, "start": r.start}
        | _score_row(r.score, r.frames, r.track_seconds)
        | asdict(r.fit)
        for r in results
    ]
    per_sequence = pd.DataFrame(rows, columns=list(PER_SEQUENCE_COLUMNS))
    curves: dict[str, SequenceScore] = {}
    overall_rows = []
    for tracker in dict.fromkeys(r.tracker for r in results):
        mine = [r for r in results if r.tracker == tracker]
        by_sequence = [[r for r in mine if r.sequence == name] for name in dict.fromkeys(r.sequence for r in mine)]
        scores = [aggregate([r.score for r in runs]) for runs in by_sequence]
        curves[tracker] = aggregate(scores)
        frames, seconds = sum(r.frames for r in mine), sum(r.track_seconds for r in mine)
        row = _score_row(curves[tracker], frames, seconds)
        low, high = bootstrap_interval([score.auc for score in scores if score.frames_scored])
        fit = asdict(mean_fit([mean_fit([r.fit for r in runs]) for runs in by_sequence]))
        overall_rows.append(
            {"tracker": tracker, "sequences": len(by_sequence)} | row | {"auc_low": low, "auc_high": high} | fit
        )
    overall = pd.DataFrame(overall_rows, columns=list(OVERALL_COLUMNS))
    overall = overall.sort_values("auc", ascending=False, kind="stable", ignore_index=True)
    curves = {name: curves[name] for name in overall["tracker"]}
    return EvalReport(overall, per_sequence, curves, dict(unavailable))


def sequence_means(per_run: pd.DataFrame) -> pd.DataFrame:
    """A per-run table (`per_sequence.csv`) with each (tracker, sequence)'s runs from several
    starts as one row, the mean of their scores (frame counts summed): indexed by tracker, sequence."""
    scores = [c for c in (*METRIC_LABELS, *FIT_LABELS) if c in per_run.columns]
    counts = [c for c in ("frames", "frames_scored") if c in per_run.columns]
    grouped = per_run.groupby(["tracker", "sequence"], sort=False)
    return grouped[counts].sum().join(grouped[scores].mean())


def network_table(checks: dict[str, list[NetworkCheck]]) -> pd.DataFrame:
    """For each network checked, one row per checked sequence and a last row `all` pooling every
    checked frame."""
    rows = [
        {"network": network, "sequence": name} | asdict(summary)
        for network, mine in checks.items()
        for name, summary in [(c.sequence, summarize([c])) for c in mine] + [(ALL_SEQUENCES, summarize(mine))]
    ]
    return pd.DataFrame(rows, columns=list(NETWORK_COLUMNS))


def together_table(results: Iterable[TogetherResult]) -> pd.DataFrame:
    """One row per (tracker, several-object sequence), then one per tracker over them (`all`):
    counts summed, own share pooled over track-frames, AUC the mean over objects."""
    rows = [
        {
            "tracker": r.tracker,
            "sequence": r.sequence,
            "objects": r.objects,
            "crossings": r.counts.crossings,
            "switches": r.counts.switches,
            "merged_frames": r.counts.merged_frames,
            "wrong_frames": r.counts.wrong_frames,
            "own_share": r.counts.own_frames / r.counts.track_frames,
            "auc": r.auc,
            "_own": r.counts.own_frames,
            "_frames": r.counts.track_frames,
        }
        for r in results
    ]
    table = pd.DataFrame(rows)
    totals = []
    for tracker, mine in table.groupby("tracker", sort=False):
        total = {"tracker": tracker, "sequence": ALL_SEQUENCES}
        total |= {k: int(mine[k].sum()) for k in ("objects", "crossings", "switches", "merged_frames", "wrong_frames")}
        total |= {"own_share": mine["_own"].sum() / mine["_frames"].sum()}
        total |= {"auc": float(np.average(mine["auc"], weights=mine["objects"]))}
        totals.append(total)
    return pd.concat([table, pd.DataFrame(totals)], ignore_index=True)[list(TOGETHER_COLUMNS)]


def bootstrap_interval(values: list[float]) -> tuple[float, float]:
    """The BOOTSTRAP_LEVEL interval of the mean of `values` (one per sequence), resampled with
    replacement; NaN without values."""
    if not values:
        return float("nan"), float("nan")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    data = np.asarray(values, dtype=np.float64)
    means = data[rng.integers(len(data), size=(BOOTSTRAP_SAMPLES, len(data)))].mean(axis=1)
    tail = (1 - BOOTSTRAP_LEVEL) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def write_report(report: EvalReport, out_dir: Path, dataset: str) -> EvalReport:
    """Write summary.csv, per_sequence.csv, report.md and the plots; the report with its paths."""
    paths = [out_dir / SUMMARY_CSV, out_dir / PER_SEQUENCE_CSV, out_dir / REPORT_MD]
    tables = [(report.overall, paths[0]), (report.per_sequence, paths[1])]
    if report.network is not None:
        paths.append(out_dir / NETWORK_CSV)
        tables.append((report.network, paths[-1]))
    if report.together is not None:
        paths.append(out_dir / TOGETHER_CSV)
        tables.append((report.together, paths[-1]))
    if report.against is not None:
        paths.append(out_dir / AGAINST_CSV)
        tables.append((report.against.table, paths[-1]))
    for table, path in tables:
        with atomic_output(path) as tmp:
            table.to_csv(tmp, index=False)
    notes = list(report.notes)
    plots = _write_plots(report, out_dir) if report.curves else []
    if report.curves and not plots:
        notes.append(f"success and precision plots need matplotlib: {EVAL_EXTRA_HINT}")
    with atomic_output(paths[2]) as tmp:
        tmp.write_text(markdown_report(report, dataset, notes))
    return replace(report, paths=paths + plots, notes=notes)


def markdown_report(report: EvalReport, dataset: str, notes: Iterable[str] = ()) -> str:
    """The report as Markdown: protocol, overall table, AUC per sequence (PEERS.md's layout)."""
    sequences = report.per_sequence["sequence"].nunique()
    lines = [f"# Tracking evaluation on {dataset}", "", PROTOCOL, ""]
    lines += [f"## Overall ({counted(sequences, 'sequence')})", ""]
    lines += _markdown_table(
        ["tracker", *METRIC_LABELS.values(), f"AUC {BOOTSTRAP_LEVEL:.0%} interval"],
        [
            [row.tracker, *(_format(k, getattr(row, k)) for k in METRIC_LABELS), _interval(row.auc_low, row.auc_high)]
            for row in report.overall.itertuples()
        ],
    )
    lines += ["", "## Box fit", ""]
    lines += _markdown_table(
        ["tracker", *FIT_LABELS.values()],
        [[row.tracker, *(_format(k, getattr(row, k)) for k in FIT_LABELS)] for row in report.overall.itertuples()],
    )
    trackers = list(report.overall["tracker"])
    means = sequence_means(report.per_sequence)
    auc = means["auc"].unstack("tracker").sort_index()
    scored = means["frames_scored"].groupby("sequence").first()  # a sequence's scored frames, over every start
    lines += ["", "## AUC per sequence", ""]
    lines += _markdown_table(
        ["sequence", "frames scored", *trackers],
        [[name, str(scored[name]), *(_format("auc", auc.at[name, t]) for t in trackers)] for name in auc.index],
    )
    if report.network is not None:
        lines += ["", "## Network check", "", NETWORK_PROTOCOL, ""]
        lines += _markdown_table(
            ["network", "sequence", "frames", "mean IoU", "median size ratio", "mean aspect error"]
            + ["scale correction", "settled size", "re-found"],
            [
                [
                    row.network,
                    row.sequence,
                    str(row.frames),
                    *(
                        _format("auc", v)
                        for v in (row.iou, row.size_ratio, row.aspect_error, row.scale_correction, row.settled_size)
                    ),
                    f"{row.refound:.1%}",
                ]
                for row in report.network.itertuples()
            ],
        )
    if report.together is not None:
        lines += ["", "## Objects tracked together", "", TOGETHER_PROTOCOL, ""]
        lines += _markdown_table(
            ["tracker", "sequence", "objects", "crossings", "identity switches", "merged frames"]
            + ["wrong frames", "confident on own object", "AUC"],
            [
                [row.tracker, row.sequence]
                + [str(v) for v in (row.objects, row.crossings, row.switches, row.merged_frames, row.wrong_frames)]
                + [f"{row.own_share:.1%}", _format("auc", row.auc)]
                for row in report.together.itertuples()
            ],
        )
    if report.against is not None:
        lines += ["", f"## Against {report.against.folder}", "", AGAINST_PROTOCOL, ""]
        lines += _markdown_table(
            ["tracker", "sequences", "AUC", "earlier AUC", "AUC gain", f"{BOOTSTRAP_LEVEL:.0%} interval", "better"]
            + ["SR0.75 gain", "aspect-error gain", "largest loss", "largest gain"],
            [
                [row.tracker, str(row.sequences), _format("auc", row.auc), _format("auc", row.against_auc)]
                + [f"{row.gain:+.3f}", f"{row.gain_low:+.3f}..{row.gain_high:+.3f}", f"{row.better} of {row.sequences}"]
                + [f"{row.sr75_gain:+.3f}", f"{row.aspect_error_gain:+.3f}", row.largest_loss, row.largest_gain]
                for row in report.against.table.itertuples()
            ],
        )
    if report.unavailable:
        lines += ["", "## Unavailable trackers", ""]
        lines += [f"- {name}: {reason}" for name, reason in report.unavailable.items()]
    if notes:
        lines += ["", *(f"Note: {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def render_rich_table(report: EvalReport) -> Table:
    """The overall table for the terminal, best AUC first."""
    sequences = report.per_sequence["sequence"].nunique()
    table = Table(title=f"Tracking evaluation ({counted(sequences, 'sequence')})")
    table.add_column("tracker")
    for label in METRIC_LABELS.values():
        table.add_column(label, justify="right")
    for row in report.overall.itertuples():
        table.add_row(row.tracker, *(_format(k, getattr(row, k)) for k in METRIC_LABELS))
    if report.unavailable:
        table.caption = "\n".join(f"{n} unavailable: {r}" for n, r in report.unavailable.items())
    return table


def render_together_table(together: pd.DataFrame) -> Table:
    """Each tracker's identity counts over the several-object sequences, for the terminal."""
    totals = together[together["sequence"] == ALL_SEQUENCES]
    sequences = together.loc[together["sequence"] != ALL_SEQUENCES, "sequence"].nunique()
    table = Table(title=f"Objects tracked together ({counted(sequences, 'sequence')} with several objects)")
    for heading in ("tracker", "objects", "crossings", "switches", "merged frames", "wrong frames", "own", "AUC"):
        table.add_column(heading, justify="left" if heading == "tracker" else "right")
    for row in totals.itertuples():
        counts = (row.objects, row.crossings, row.switches, row.merged_frames, row.wrong_frames)
        table.add_row(row.tracker, *map(str, counts), f"{row.own_share:.1%}", _format("auc", row.auc))
    table.caption = "own: confident track-frames on the track's own object (report.md has the protocol)"
    return table


def render_against_table(against: Against) -> Table:
    """This report against an earlier one, for the terminal."""
    table = Table(title=f"Against {against.folder} (paired by sequence)")
    for heading in ("tracker", "AUC", "earlier", "gain", f"{BOOTSTRAP_LEVEL:.0%} interval", "better"):
        table.add_column(heading, justify="left" if heading == "tracker" else "right")
    for row in against.table.itertuples():
        table.add_row(
            row.tracker, _format("auc", row.auc), _format("auc", row.against_auc), f"{row.gain:+.3f}",
            f"{row.gain_low:+.3f}..{row.gain_high:+.3f}", f"{row.better} of {row.sequences}",
        )  # fmt: skip
    if against.table.empty:
        table.caption = "no tracker scored the same sequences in both reports"
    return table


def _score_row(score: SequenceScore, frames: int, track_seconds: float) -> dict[str, float | int]:
    return {
        "frames": frames,
        "frames_scored": score.frames_scored,
        "auc": score.auc,
        "prec20": score.prec20,
        "norm_prec": score.norm_prec,
        "ao": score.ao,
        "sr50": score.sr50,
        "sr75": score.sr75,
        "fps": frames / track_seconds if track_seconds > 0 else float("nan"),
    }


def _format(column: str, value: float) -> str:
    if not np.isfinite(value):
        return MISSING
    return f"{value:.0f}" if column == "fps" else f"{value:.3f}"


def _interval(low: float, high: float) -> str:
    return f"{_format('auc', low)} - {_format('auc', high)}" if np.isfinite(low) else MISSING


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _write_plots(report: EvalReport, out_dir: Path) -> list[Path]:
    """success.png and precision.png, legends best first; [] without matplotlib."""
    try:
        from matplotlib.figure import Figure  # optional: pip install ibfp[eval]
    except ImportError:
        return []
    success = {name: (s.success, s.auc) for name, s in report.curves.items()}
    precision = {name: (s.precision, s.prec20) for name, s in report.curves.items()}
    return [
        _plot(
            Figure,
            out_dir / SUCCESS_PNG,
            SUCCESS_THRESHOLDS,
            success,
            "Overlap threshold",
            "Success rate",
            "Success plot (legend: AUC)",
        ),
        _plot(
            Figure,
            out_dir / PRECISION_PNG,
            PRECISION_THRESHOLDS,
            precision,
            "Location error threshold (px)",
            "Precision",
            f"Precision plot (legend: precision at {PRECISION_AT_PX:g} px)",
        ),
    ]


def _plot(
    figure_type: type,
    path: Path,
    thresholds: np.ndarray,
    curves: dict[str, tuple[np.ndarray, float]],
    xlabel: str,
    ylabel: str,
    title: str,
) -> Path:
    """One plot of a curve per tracker, legend "name [value]" sorted by value, best first."""
    figure = figure_type(figsize=PLOT_SIZE_IN, dpi=PLOT_DPI)
    axes = figure.subplots()
    for name, (curve, value) in sorted(curves.items(), key=lambda item: -item[1][1]):
        axes.plot(thresholds, curve, label=f"{name} [{value:.3f}]")
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1))
    axes.set_xlim(thresholds[0], thresholds[-1])
    axes.grid(True, alpha=PLOT_GRID_ALPHA)
    axes.legend(loc="best")
    with atomic_output(path) as tmp:
        figure.savefig(tmp)
    return path
