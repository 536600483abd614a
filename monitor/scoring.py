"""Offline scoring: a file -> its windows' scores, through the same windows and gate as `listen`."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from monitor.audio import load_audio
from monitor.errors import SpecmonError
from monitor.features import (
    SAMPLE_RATE,
    WINDOW_FRAMES,
    loop_to_window,
    stft_logpower,
    stride_hops,
    window_ends,
    window_span_s,
)
from monitor.scorer import Scorer
from monitor.windows import Gate, WindowResult, assess

SCORE_HEADER = ["file", "start_s", "end_s", "score", "label", "rms_dbfs", "voiced"]


def score_signal(
    x: np.ndarray,
    scorer: Scorer,
    stride_s: float = 1.0,
    gate: Gate = Gate(),
    threshold: float | None = None,
) -> list[WindowResult]:
    """Score a 16 kHz mono signal window by window.

    Windows follow the live schedule (one every stride, ending on a hop boundary); a last window
    ending at the signal's end covers any tail, and a signal shorter than one window is looped to one.
    """
    duration = x.shape[0] / SAMPLE_RATE
    spec, levels = stft_logpower(loop_to_window(x))
    n = spec.shape[1]
    if n < WINDOW_FRAMES:
        return []
    ends = list(window_ends(n, stride_hops(stride_s)))
    if ends[-1] != n:
        ends.append(n)
    thr = scorer.threshold if threshold is None else threshold
    out = []
    for end in ends:
        start_s, end_s = window_span_s(end)
        lo = end - WINDOW_FRAMES
        r = assess(spec[:, lo:end], levels[lo:end], scorer, gate, thr, start_s, min(end_s, duration))
        out.append(r)
    return out


def score_files(
    paths: Iterable[Path],
    scorer: Scorer,
    stride_s: float,
    gate: Gate,
    threshold: float | None,
) -> Iterator[tuple[Path, list[WindowResult] | SpecmonError]]:
    """Score each file in turn; a bad file yields its error instead of stopping the batch."""
    for p in paths:
        try:
            yield p, score_signal(load_audio(p), scorer, stride_s, gate, threshold)
        except SpecmonError as e:
            yield p, e


def write_rows(out: TextIO, path: Path, results: list[WindowResult], writer=None) -> None:
    w = writer or csv.writer(out)
    for r in results:
        score = "" if r.score is None else f"{r.score:.4f}"
        w.writerow(
            [str(path), f"{r.start_s:.3f}", f"{r.end_s:.3f}", score, r.label,
             f"{r.rms_dbfs:.1f}", f"{r.voiced:.2f}"]
        )


def run_score(
    paths: list[Path],
    scorer: Scorer,
    out: TextIO,
    stride_s: float = 1.0,
    gate: Gate = Gate(),
    threshold: float | None = None,
    err: TextIO = sys.stderr,
    progress=None,
) -> int:
    """Write the CSV for all files; report bad files on err. Returns the number of bad files.

    progress(path) is called after each file (the CLI draws a progress bar with it)."""
    writer = csv.writer(out)
    writer.writerow(SCORE_HEADER)
    bad = 0
    for p, res in score_files(paths, scorer, stride_s, gate, threshold):
        if progress is not None:
            progress(p)
        if isinstance(res, SpecmonError):
            bad += 1
            print(f"specmon: error: {res}", file=err)
            continue
        write_rows(out, p, res, writer)
        out.flush()
    return bad
