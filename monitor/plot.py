"""`specmon plot`: the score timeline of a `specmon listen` CSV log as a PNG (matplotlib, Agg)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from monitor.errors import SpecmonError
from monitor.windows import NEGATIVE, NEUTRAL, NO_SPEECH

COLUMNS = (
    "time_utc",
    "offset_s",
    "start_s",
    "end_s",
    "score",
    "label",
    "smoothed",
    "rms_dbfs",
    "voiced",
    "latency_ms",
    "model_id",
)
COLOURS = {NEGATIVE: "#d62728", NEUTRAL: "#2ca02c"}


@dataclass
class LogRows:
    """The columns of a listen log that the plot needs (NaN where a cell is empty)."""

    offset_s: np.ndarray
    score: np.ndarray
    label: list[str]
    smoothed: np.ndarray
    model_id: str
    skipped: list[str] = field(default_factory=list)  # "line N: why" for each damaged line


class _Damaged(ValueError):
    """A row that cannot be a whole listen-log row (torn by a power cut, glued to the next one)."""


def _num(cell: str, name: str) -> float:
    if cell.strip() == "":
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise _Damaged(f"{name} is not a number: {cell[:20]!r}") from None


def _parse(row: list[str], n_fields: int, ix: dict[str, int]) -> tuple[float, float, float, str, str]:
    """(offset, score, smoothed, label, model_id) of a row; _Damaged if it is not a whole row."""
    if any("\x00" in cell for cell in row):
        raise _Damaged("NUL bytes (a block never written)")
    if len(row) != n_fields:
        raise _Damaged(f"{len(row)} fields, expected {n_fields}")
    o = _num(row[ix["offset_s"]], "offset_s")
    if math.isnan(o):
        raise _Damaged("offset_s is empty")
    return (o, _num(row[ix["score"]], "score"), _num(row[ix["smoothed"]], "smoothed"),
            row[ix["label"]].strip(), row[ix["model_id"]].strip())


def read_log(csv_path: Path) -> LogRows:
    """Read and check a `specmon listen` CSV log; SpecmonError (one line naming the file) if bad.

    A damaged row (a torn last row after a power cut, or rows glued together by it) is skipped and
    listed in LogRows.skipped; the file is refused only when no whole row is left.
    """
    path = Path(csv_path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise SpecmonError(f"{path}: empty file, expected a specmon listen CSV log")
            header = [h.strip() for h in header]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise SpecmonError(
                    f"{path}: not a specmon listen log: missing column(s) {', '.join(missing)}"
                )
            ix = {c: header.index(c) for c in COLUMNS}
            off, sc, sm, lab, model, skipped = [], [], [], [], "", []
            line = reader.line_num
            for row in reader:
                first, line = line + 1, reader.line_num
                if not row:
                    continue
                try:
                    o, s, m, label, mid = _parse(row, len(header), ix)
                except _Damaged as e:
                    where = f"line {first}" if first == line else f"lines {first}-{line}"
                    skipped.append(f"{where}: {e}")
                    continue
                off.append(o)
                sc.append(s)
                sm.append(m)
                lab.append(label)
                model = mid or model
    except FileNotFoundError:
        raise SpecmonError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise SpecmonError(f"{path}: not a text CSV file") from None
    except csv.Error as e:
        raise SpecmonError(f"{path}: not a CSV file ({e})") from None
    except OSError as e:
        raise SpecmonError(f"{path}: cannot read: {e.strerror or e}") from None
    if not off:
        if skipped:
            raise SpecmonError(f"{path}: no whole rows ({len(skipped)} damaged line(s); {skipped[0]})")
        raise SpecmonError(f"{path}: no rows: the log has a header but no windows")
    return LogRows(np.array(off), np.array(sc), lab, np.array(sm), model, skipped)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of each run of True in mask."""
    runs, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


def _join_sessions(offset_s: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Offsets of a log that may hold several appended sessions, laid end to end.

    A session starts wherever the offset goes backwards; each is shifted to begin one median step
    after the previous one ends. Returns the shifted offsets and each session's first row index.
    """
    t = offset_s.astype(float).copy()
    starts = [0] + [int(i) + 1 for i in np.flatnonzero(np.diff(t) < 0)]
    d = np.diff(t)
    step = float(np.median(d[d > 0])) if (d > 0).any() else 1.0
    for a in starts[1:]:
        t[a:] += t[a - 1] + 2 * step - t[a]
    return t, starts


def plot_log(csv_path: Path, out_png: Path, threshold: float = 0.5) -> LogRows:
    """Draw the score timeline of a listen log into out_png; returns the rows drawn (with the
    damaged lines skipped, for the caller to report).

    Points: each window's score at its end offset, coloured by label. Line: the smoothed score,
    broken where the stream has a gap. Dashed: the threshold. Grey bands: no-speech windows.
    """
    rows = read_log(csv_path)
    t, starts = _join_sessions(rows.offset_s)
    minutes = t.max() - t.min() > 600
    x = t / 60.0 if minutes else t
    step = float(np.median(np.diff(x))) if x.size > 1 else (1.0 / 60 if minutes else 1.0)
    step = step if step > 0 else 1.0

    fig = Figure(figsize=(11, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    nospeech = np.array([lab == NO_SPEECH for lab in rows.label]) | np.isnan(rows.score)
    for a, b in _runs(nospeech):
        ax.axvspan(x[a] - step / 2, x[b] + step / 2, color="0.85", lw=0, zorder=0)

    sm_x, sm_y = x.astype(float), rows.smoothed.astype(float)
    # break the line over stream gaps and between sessions
    joins = np.array(starts[1:], dtype=int) - 1
    gaps = np.union1d(np.flatnonzero(np.diff(sm_x) > 2.5 * step), joins)
    sm_x = np.insert(sm_x, gaps + 1, np.nan)
    sm_y = np.insert(sm_y, gaps + 1, np.nan)
    ax.plot(sm_x, sm_y, color="#1f77b4", lw=1.8, zorder=3)

    for lab, colour in COLOURS.items():
        sel = np.array([r == lab for r in rows.label]) & ~np.isnan(rows.score)
        ax.scatter(x[sel], rows.score[sel], s=12, color=colour, zorder=4, lw=0)
    other = ~nospeech & ~np.isin(rows.label, list(COLOURS))
    if other.any():
        ax.scatter(x[other], rows.score[other], s=12, color="0.4", zorder=4, lw=0)
    ax.axhline(threshold, color="k", ls="--", lw=1, zorder=2)
    for i in starts[1:]:  # an appended session: its offsets restart at 0
        ax.axvline(x[i] - step, color="0.3", ls=":", lw=1, zorder=1)

    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(x.min() - step, x.max() + step)
    ax.set_xlabel("stream offset (min)" if minutes else "stream offset (s)")
    ax.set_ylabel("score (how negative)")
    n_scored = int((~nospeech).sum())
    n_neg = sum(1 for lab in rows.label if lab == NEGATIVE)
    title = f"{Path(csv_path).name}: {len(t)} windows, {n_scored} scored, {n_neg} negative"
    if len(starts) > 1:
        title += f", {len(starts)} sessions (joined end to end)"
    ax.set_title(title + (f"  ·  model {rows.model_id}" if rows.model_id else ""), fontsize=10)
    ax.legend(
        handles=[
            Line2D([], [], marker="o", ls="", color=COLOURS[NEGATIVE], label=NEGATIVE),
            Line2D([], [], marker="o", ls="", color=COLOURS[NEUTRAL], label=NEUTRAL),
            Line2D([], [], color="#1f77b4", lw=1.8, label="smoothed"),
            Line2D([], [], color="k", ls="--", lw=1, label=f"threshold {threshold:g}"),
            Patch(color="0.85", label=NO_SPEECH),
        ],
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        fontsize=8,
        frameon=False,
    )
    fig.text(
        0.995,
        0.005,
        "research and screening aid — not a diagnosis",
        ha="right",
        va="bottom",
        fontsize=7,
        color="0.4",
    )
    out = Path(out_png)
    try:
        fig.savefig(out, format="png")
    except OSError as e:
        raise SpecmonError(f"{out}: cannot write the plot: {e.strerror or e}") from None
    return rows
