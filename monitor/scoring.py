"""Offline scoring: a file -> its windows' scores, through the same windows and gate as `listen`.

score_signal scores a signal held whole; WindowStream (what `specmon score` uses) scores it block by
block with memory independent of its length, and gives exactly the same results.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from monitor.audio import BLOCK_FRAMES, AudioReader
from monitor.errors import SpecmonError
from monitor.features import (
    HOP,
    N_BINS,
    N_FFT,
    PARALLEL_MIN_FRAMES,
    SAMPLE_RATE,
    WINDOW_FRAMES,
    WINDOW_SAMPLES,
    loop_to_window,
    n_frames_for,
    stft_logpower,
    stride_hops,
    window_ends,
    window_span_s,
)
from monitor.prosody import warm_up as prosody_warm_up
from monitor.sample_features import SampleFeatures
from monitor.scorer import Scorer
from monitor.window_stats import warm_up as stats_warm_up
from monitor.windows import Gate, WindowResult, assess

# Frames per batch STFT call when streaming (16 s of audio): below PARALLEL_MIN_FRAMES, so the
# serial kernel on the calling thread; numba's thread pool would add memory and start-up for little.
STFT_BLOCK_FRAMES = 512
assert STFT_BLOCK_FRAMES < PARALLEL_MIN_FRAMES
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
    x = loop_to_window(np.asarray(x, np.float32))  # as WindowStream and `listen` hold it
    spec, levels = stft_logpower(x)
    n = spec.shape[1]
    if n < WINDOW_FRAMES:
        return []
    ends = list(window_ends(n, stride_hops(stride_s)))
    if ends[-1] != n:
        ends.append(n)
    thr = scorer.threshold if threshold is None else threshold
    prosody = SampleFeatures(scorer.head_encoder)
    out = []
    for end in ends:
        start_s, end_s = window_span_s(end)
        lo = end - WINDOW_FRAMES
        a = lo * HOP
        r = assess(spec[:, lo:end], levels[lo:end], scorer, gate, thr, start_s, min(end_s, duration),
                   lambda a=a: prosody(x[a:a + WINDOW_SAMPLES], a))
        out.append(r)
    return out


def warm_up(parallel: bool = False) -> None:
    """Compile, or load from numba's cache, the STFT kernels that scoring will call (the serial
    one; with parallel=True the threaded one too), so that happens during start-up."""
    stft_logpower(np.zeros(N_FFT, np.float32))
    prosody_warm_up()
    stats_warm_up()
    if parallel:
        stft_logpower(np.zeros(N_FFT + HOP * PARALLEL_MIN_FRAMES, np.float32))


class WindowStream:
    """16 kHz mono samples in, in blocks of any size; window results out, exactly as score_signal
    gives them for the whole signal at once (same columns, same windows, same scores).

    Columns come from the batch STFT (monitor.features) over runs of whole frames, carried across
    blocks; only the last window's worth of columns and the samples of an unfinished frame are
    kept, so memory does not grow with the length of the recording.
    """

    def __init__(
        self,
        scorer: Scorer,
        stride_s: float = 1.0,
        gate: Gate = Gate(),
        threshold: float | None = None,
        block_frames: int = STFT_BLOCK_FRAMES,
    ) -> None:
        self.scorer, self.gate = scorer, gate
        self.threshold = scorer.threshold if threshold is None else threshold
        self.stride_s = stride_s
        self.stride = stride_hops(stride_s)
        self.block_frames = block_frames
        self._pending: list[np.ndarray] = []  # samples from the start of the first unmade frame
        self._pending_n = 0
        self._samples = 0  # samples pushed in total
        self._spec = np.zeros((0, N_BINS), np.float32)  # rows = columns col0 .. col0+len-1
        self._levels = np.zeros(0, np.float32)
        self._col0 = 0
        self._next_end = WINDOW_FRAMES  # end column of the next scheduled window
        self._last_end = 0  # end column of the last window emitted
        # Samples from sample _x0 on (the first column kept onwards), for the windows' prosody.
        self._x = np.zeros(0, np.float32)
        self._x0 = 0
        self._prosody = SampleFeatures(scorer.head_encoder)

    def push(self, x: np.ndarray) -> list[WindowResult]:
        """Add samples; returns the windows completed by them (oldest first)."""
        x = np.asarray(x, np.float32)
        if x.shape[0] == 0:
            return []
        self._pending.append(x)
        self._pending_n += x.shape[0]
        self._samples += x.shape[0]
        # Wait for a block's worth of frames, and for a whole first window: a shorter signal is
        # looped to one window by finish().
        if self._samples < WINDOW_SAMPLES or n_frames_for(self._pending_n) < self.block_frames:
            return []
        return self._advance()

    def finish(self) -> list[WindowResult]:
        """The end of the signal: the remaining windows, and one ending at the last whole frame."""
        if self._samples < WINDOW_SAMPLES:  # short clip: looped to one window, as score_signal does
            x = np.concatenate(self._pending) if self._pending else np.zeros(0, np.float32)
            return score_signal(x, self.scorer, self.stride_s, self.gate, self.threshold)
        out = self._advance()
        n = self._col0 + self._spec.shape[0]  # all columns of the signal
        if self._last_end != n:
            out.append(self._assess(n))
        return out

    def _advance(self) -> list[WindowResult]:
        """Turn the pending samples' whole frames into columns; emit the windows they complete."""
        if len(self._pending) == 1:
            buf = self._pending[0]
        else:
            buf = np.concatenate(self._pending) if self._pending else np.zeros(0, np.float32)
        n = n_frames_for(buf.shape[0])
        # At most a block of frames per STFT call: the serial kernel, warmed up by warm_up().
        parts = [stft_logpower(buf[a * HOP : (min(n, a + self.block_frames) - 1) * HOP + N_FFT])
                 for a in range(0, n, self.block_frames)] or [stft_logpower(buf[:0])]
        spec = np.concatenate([p[0].T for p in parts])  # rows = columns
        levels = np.concatenate([p[1] for p in parts])
        rest = buf[n * HOP :]
        self._pending, self._pending_n = ([rest], rest.shape[0]) if rest.shape[0] else ([], 0)
        # Keep the columns the next windows still need (at least one window's worth).
        top = self._col0 + self._spec.shape[0]
        # buf begins at the first unmade frame (sample top * HOP); append what _x lacks of it.
        self._x = np.concatenate((self._x, buf[self._x0 + self._x.shape[0] - top * HOP:]))
        keep_from = max(self._col0, min(self._next_end, top + n) - WINDOW_FRAMES)
        cut = keep_from - self._col0
        self._spec = np.concatenate((self._spec[cut:], spec))
        self._levels = np.concatenate((self._levels[cut:], levels))
        self._col0 = keep_from
        out = []
        top += n
        while self._next_end <= top:
            out.append(self._assess(self._next_end))
            self._next_end += self.stride
        keep_from = max(self._col0, min(self._next_end, top) - WINDOW_FRAMES)
        cut = keep_from - self._col0
        if cut:
            self._spec, self._levels = self._spec[cut:], self._levels[cut:]
            self._col0 = keep_from
        self._x = self._x[self._col0 * HOP - self._x0:]
        self._x0 = self._col0 * HOP
        return out

    def _assess(self, end: int) -> WindowResult:
        lo = end - WINDOW_FRAMES - self._col0
        hi = end - self._col0
        start_s, end_s = window_span_s(end)
        self._last_end = end
        a = (end - WINDOW_FRAMES) * HOP
        samples = self._x[a - self._x0:a - self._x0 + WINDOW_SAMPLES]
        return assess(self._spec[lo:hi].T, self._levels[lo:hi], self.scorer, self.gate,
                      self.threshold, start_s, min(end_s, self._samples / SAMPLE_RATE),
                      lambda: self._prosody(samples, a))


@dataclass
class FileScore:
    """One file's outcome: its windows, or the error that stopped it; warnings either way."""

    path: Path
    results: list[WindowResult] = field(default_factory=list)
    error: SpecmonError | None = None
    warnings: list[str] = field(default_factory=list)


def score_file(
    path: Path,
    scorer: Scorer,
    stride_s: float = 1.0,
    gate: Gate = Gate(),
    threshold: float | None = None,
    block_frames: int = BLOCK_FRAMES,
) -> FileScore:
    """Score a file block by block (memory independent of its length); errors are returned."""
    out = FileScore(Path(path))
    try:
        with AudioReader(path) as reader:
            out.warnings = reader.warnings
            ws = WindowStream(scorer, stride_s, gate, threshold)
            for x in reader.blocks(block_frames):
                out.results += ws.push(x)
            out.results += ws.finish()
    except SpecmonError as e:
        out.results, out.error = [], e
    return out


def score_files(
    paths: Iterable[Path],
    scorer: Scorer,
    stride_s: float,
    gate: Gate,
    threshold: float | None,
) -> Iterator[FileScore]:
    """Score each file in turn; a bad file yields its error instead of stopping the batch."""
    for p in paths:
        yield score_file(p, scorer, stride_s, gate, threshold)


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
    for fs in score_files(paths, scorer, stride_s, gate, threshold):
        if progress is not None:
            progress(fs.path)
        for w in fs.warnings:
            print(f"specmon: warning: {w}", file=err)
        if fs.error is not None:
            bad += 1
            print(f"specmon: error: {fs.error}", file=err)
            continue
        write_rows(out, fs.path, fs.results, writer)
        out.flush()
    return bad
