"""What `specmon listen` shows: a terminal dashboard (rich), a plain line printer, the exit summary.

Both sinks implement the `Sink` protocol of monitor/events.py. The pipeline calls on_window() once
per judged window, on_tick() several times a second and close() once at the end.

Dashboard: the pipeline thread only publishes. on_tick()/on_window() store a snapshot of the status
(a shallow copy: the pipeline hands over a new spectrogram array each tick) and return; a render
thread of its own (named RENDER_THREAD) draws `refresh_per_second` frames a second, plus one as soon
as a window is judged. Each frame rewrites only the lines that changed, and the spectrogram (one
text column per STFT hop, the newest on the right) gets only the columns that are new since the
last frame: the row is shifted left in the terminal and the new cells are written at its end.
Constructing a Dashboard does not touch the terminal; the thread starts on the first
on_window()/on_tick() (or start(), or `with Dashboard() as d:`), and close() has it draw the final
state, which stays on screen.
"""

from __future__ import annotations

import copy
import io
import math
import sys
import threading
import time
from typing import TextIO

import numpy as np
from rich.color import Color
from rich.console import (
    COLOR_SYSTEMS,
    Console,
    ConsoleOptions,
    Group,
    RenderableType,
    RenderResult,
)
from rich.style import Style
from rich.text import Text

from monitor.events import LiveStatus, LiveWindow
from monitor.features import HOP, SAMPLE_RATE
from monitor.windows import NEGATIVE, NEUTRAL, NO_SPEECH

DISCLAIMER = "research and screening aid — not a diagnosis"
DISCLAIMER_SHORT = "screening aid, not a diagnosis"

LABEL_STYLE = {NEGATIVE: "bold red", NEUTRAL: "bold green", NO_SPEECH: "dim"}
LABEL_COLOUR = {NEGATIVE: "red", NEUTRAL: "green", NO_SPEECH: "grey50"}
SPARK = "▁▂▃▄▅▆▇█"
LEVEL_MIN_DBFS = -60.0  # left end of the level meter
SPEC_DYN_DB = 80.0  # colour range of the spectrogram: [top - 80 dB, top]
# Top of the colour range is the shown columns' maximum, but never below this: digital silence and a
# quiet room stay dark instead of being stretched over the whole palette. (Column values are
# 10*log10(|rfft|^2), so a full-scale sine peaks near +49 dB and the floor is -100 dB.)
SPEC_MIN_TOP_DB = 0.0
SPEC_MAX_ROWS = 24  # text rows (2 frequency bands each) at most, however tall the terminal
SPEC_TOP_STEP_DB = 6.0  # the colour range moves in steps of this (each step recolours every cell)
AXIS_W = 3  # the spectrogram's kHz axis, left of it
RENDER_THREAD = "specmon-dashboard"  # the thread that draws (and the only one that writes)
CLOSE_WAIT_S = 5.0  # close() waits this long at most for the final frame (a stuck terminal)

# An "inferno"-like colour map, interpolated to N_COLOURS steps.
_ANCHORS = np.array(
    [
        (0, 0, 4),
        (31, 12, 72),
        (85, 15, 109),
        (136, 34, 106),
        (186, 54, 85),
        (227, 89, 51),
        (249, 140, 10),
        (249, 201, 50),
        (252, 255, 164),
    ],
    dtype=np.float64,
)
N_COLOURS = 32
_POS = np.linspace(0.0, 1.0, len(_ANCHORS))
_LEVELS = np.linspace(0.0, 1.0, N_COLOURS)
_PALETTE = [
    Color.from_rgb(*(int(round(np.interp(v, _POS, _ANCHORS[:, c]))) for c in range(3)))
    for v in _LEVELS
]
_SHADES = " ░▒▓█"  # fallback when the console has no colour


def _fmt_duration(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _fit(text: Text, width: int) -> Text:
    """One line, never wider than width (ellipsis), never wrapped."""
    text.no_wrap = True
    text.overflow = "ellipsis"
    if text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    return text


def _runs(cells: list[tuple[str, str | None]]) -> Text:
    """(character, style) cells as Text with one span per run of equal style (cheap to draw)."""
    t = Text()
    i = 0
    while i < len(cells):
        j, style = i + 1, cells[i][1]
        while j < len(cells) and cells[j][1] == style:
            j += 1
        t.append("".join(c for c, _ in cells[i:j]), style=style)
        i = j
    return t


def _bar(frac: float, width: int, fill_style: str, mark: float | None = None) -> Text:
    """A horizontal bar of `width` cells filled to frac (0..1), with an optional marker at mark."""
    frac = min(max(frac, 0.0), 1.0)
    filled = int(round(frac * width))
    mark_at = None if mark is None else min(width - 1, max(0, int(round(mark * width))))
    cells: list[tuple[str, str | None]] = []
    for i in range(width):
        if i == mark_at:
            cells.append(("┃", "bold white" if i >= filled else "bold white on " + fill_style))
        elif i < filled:
            cells.append(("█", fill_style))
        else:
            cells.append(("─", "grey37"))
    return _runs(cells)


def sparkline(values: list[float | None], width: int, threshold: float) -> Text:
    """The last `width` values (0..1) as block characters; None (no speech) is a gap."""
    vals = values[-width:] if width > 0 else []
    cells: list[tuple[str, str | None]] = [(" ", None)] * max(0, width - len(vals))
    for v in vals:
        if v is None or not math.isfinite(v):
            cells.append((" ", None))
            continue
        i = min(len(SPARK) - 1, max(0, int(round(min(max(v, 0.0), 1.0) * (len(SPARK) - 1)))))
        cells.append((SPARK[i], "red" if v >= threshold else "green"))
    return _runs(cells)


def _pool(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Max-pool array a along axis into n groups of (nearly) equal size."""
    size = a.shape[axis]
    edges = np.linspace(0, size, n + 1).astype(int)[:-1]
    return np.maximum.reduceat(a, edges, axis=axis)


def spectrogram_top(spec: np.ndarray) -> float:
    """Top of the colour range for these columns: their maximum (never below SPEC_MIN_TOP_DB),
    rounded up to a multiple of SPEC_TOP_STEP_DB so that it changes rarely."""
    peak = max(float(spec.max()) if spec.size else SPEC_MIN_TOP_DB, SPEC_MIN_TOP_DB)
    return math.ceil(peak / SPEC_TOP_STEP_DB - 1e-9) * SPEC_TOP_STEP_DB


def _colour_indices(spec: np.ndarray, rows: int, top: float) -> np.ndarray:
    """513 x k dB columns -> (2*rows) x k colour indices, highest band first."""
    spec = np.asarray(spec, dtype=np.float32)
    bands = 2 * rows
    f = _pool(spec, min(bands, spec.shape[0]), axis=0)
    if f.shape[0] < bands:  # absurdly tall request: repeat bands
        f = f[np.linspace(0, f.shape[0] - 1, bands).astype(int)]
    norm = np.clip((f - (top - SPEC_DYN_DB)) / SPEC_DYN_DB, 0.0, 1.0)
    return np.rint(norm * (N_COLOURS - 1)).astype(np.int16)[::-1]


def spectrogram_cells(spec: np.ndarray, rows: int, cols: int, top: float | None = None) -> np.ndarray:
    """513 x k dB columns -> (2*rows) x min(k, cols) colour indices (0..N_COLOURS-1), low
    frequencies last.

    One text column per STFT column (hop), the newest `cols` of them: never stretched, never pooled
    in time, so that a column once drawn never changes and the live view only draws new ones.
    Frequency is max-pooled into 2*rows linear bands. top: the colour range's top (default
    spectrogram_top of the shown columns).
    """
    shown = np.asarray(spec)[:, -max(1, cols):]
    return _colour_indices(shown, rows, spectrogram_top(shown) if top is None else top)


def _spectrogram_shift(old: np.ndarray | None, new: np.ndarray) -> int:
    """How many columns `new` (a later window of the same stream) has beyond `old`: the smallest k
    with new[:, :-k] == old[:, k:] exactly (0: the same; new.shape[1]: nothing in common). Any such
    k is a correct update, even where silence makes several match."""
    n = new.shape[1]
    if old is None or old.shape != new.shape:
        return n
    if old is new:
        return 0
    hits = np.flatnonzero(np.all(new == old[:, -1:], axis=0))  # where old's newest column now is
    for j in hits[::-1]:
        k = n - 1 - int(j)
        if k == 0 and np.array_equal(new, old):
            return 0
        if k > 0 and np.array_equal(new[:, : n - k], old[:, k:]):
            return k
    return n


class SpectrogramView:
    """The spectrogram block's cells for one size (rows x cols), kept up to date column by column.

    update() takes the newest published window and colours only the columns that are new since the
    last call; the colour range moves in SPEC_TOP_STEP_DB steps (up at once, down only when the shown
    columns are two steps quieter), and only then is every cell recoloured.
    """

    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, max(1, cols)
        self.cells: np.ndarray | None = None  # (2*rows) x shown colour indices
        self.top: float | None = None
        self._spec: np.ndarray | None = None

    @property
    def shown(self) -> int:
        return 0 if self.cells is None else self.cells.shape[1]

    def update(self, spec: np.ndarray) -> int | None:
        """Follow spec; returns how many columns were shifted in on the right (0: none), or None when
        every cell changed (first call, new width, new colour range)."""
        k = _spectrogram_shift(self._spec, spec)
        self._spec = spec
        shown = min(self.cols, spec.shape[1])
        cols = spec[:, -shown:]
        need = spectrogram_top(cols)
        if (self.cells is None or self.cells.shape[1] != shown or self.top is None
                or need > self.top or need <= self.top - 2 * SPEC_TOP_STEP_DB):
            self.top = need
            self.cells = _colour_indices(cols, self.rows, need)
            return None
        if k == 0:
            return 0
        if k >= shown:
            self.cells = _colour_indices(cols, self.rows, self.top)
            return shown
        new = _colour_indices(spec[:, -k:], self.rows, self.top)
        self.cells = np.concatenate((self.cells[:, k:], new), axis=1)
        return k

    def row_text(self, r: int, colour: bool, first: int = 0) -> Text:
        """Row r's cells from column `first` (of the shown ones) as half blocks: each character is
        two frequency bands, foreground (▀) the upper, background the lower."""
        t = Text()
        if self.cells is None:
            return t
        up, lo = self.cells[2 * r, first:], self.cells[2 * r + 1, first:]
        if not colour:
            v = (up.astype(int) + lo) * len(_SHADES) // (2 * (N_COLOURS - 1))
            t.append("".join(_SHADES[min(len(_SHADES) - 1, int(i))] for i in v))
            return t
        pairs = list(zip(up.tolist(), lo.tolist(), strict=True))
        i = 0
        while i < len(pairs):  # one span per run of equal cells
            j = i + 1
            while j < len(pairs) and pairs[j] == pairs[i]:
                j += 1
            t.append("▀" * (j - i), style=_pair_style(*pairs[i]))
            i = j
        return t


_PAIR_STYLES: dict[tuple[int, int], Style] = {}


def _pair_style(up: int, lo: int) -> Style:
    st = _PAIR_STYLES.get((up, lo))
    if st is None:
        st = _PAIR_STYLES[(up, lo)] = Style(color=_PALETTE[up], bgcolor=_PALETTE[lo])
    return st


def _axis_label(r: int, rows: int) -> str:
    top_khz = SAMPLE_RATE / 2000
    labels = {0: f"{top_khz:g}k", rows // 2: f"{top_khz / 2:g}k", rows - 1: "0k"}
    return labels.get(r, "").rjust(AXIS_W - 1) + " "


def spectrogram_lines(spec: np.ndarray, rows: int, width: int, colour: bool = True) -> list[Text]:
    """The spectrogram as `rows` lines of half-block characters, with a kHz axis on the left
    (a fresh SpectrogramView: what the live view shows after its first frame)."""
    view = SpectrogramView(rows, width - AXIS_W)
    view.update(np.asarray(spec))
    return [_spec_row(view, r, colour) for r in range(rows)]


def _spec_row(view: SpectrogramView, r: int, colour: bool) -> Text:
    t = Text()
    t.append(_axis_label(r, view.rows), style="dim")
    t.append(" " * (view.cols - view.shown))
    t.append_text(view.row_text(r, colour))
    return t


# -- the dashboard ------------------------------------------------------------------------------------
Line = Text | int  # a frame line: text, or row r of the spectrogram block


class Dashboard:
    """Live terminal view of `specmon listen` (a Sink); lifecycle in the module docstring."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 4.0) -> None:
        self.console = console if console is not None else Console()
        self.refresh_per_second = refresh_per_second
        self._status: LiveStatus | None = None  # the newest published snapshot
        self._last: LiveWindow | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._screen: _Screen | None = None
        self._saved_streams: tuple[TextIO, TextIO] | None = None
        self.frames = 0  # frames drawn (for tests and benchmarks)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the render thread (idempotent)."""
        if self._thread is not None:
            return
        self._screen = _Screen(self.console)
        if self.console.is_terminal:  # prints from elsewhere go above the dashboard, not into it
            self._saved_streams = (sys.stdout, sys.stderr)
            sys.stdout = _Proxy(self._screen, sys.stdout, self._wake)  # type: ignore[assignment]
            sys.stderr = _Proxy(self._screen, sys.stderr, self._wake)  # type: ignore[assignment]
        self._thread = threading.Thread(target=self._run, name=RENDER_THREAD, daemon=True)
        self._thread.start()

    def __enter__(self) -> Dashboard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(None)

    # -- Sink (pipeline thread: publish a snapshot, never draw) ------------------------------
    def on_window(self, w: LiveWindow, status: LiveStatus) -> None:
        """A new judged window: publish it and wake the render thread (drawn within a frame)."""
        snap = _snapshot(status)
        with self._lock:
            self._last, self._status = w, snap
        self.start()
        self._wake.set()

    def on_tick(self, status: LiveStatus) -> None:
        """Publish the status; the render thread draws it on its own cadence."""
        snap = _snapshot(status)
        with self._lock:
            self._status = snap
        self.start()

    def close(self, status: LiveStatus | None) -> None:
        """Draw the final state once and leave it on screen (status None: keep the last one).
        The render thread draws it; this waits for it (at most CLOSE_WAIT_S)."""
        if status is not None:
            snap = _snapshot(status)
            with self._lock:
                self._status = snap
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(CLOSE_WAIT_S)
        self._thread = None
        if self._saved_streams is not None:
            sys.stdout, sys.stderr = self._saved_streams
            self._saved_streams = None

    # -- the render thread -------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.refresh_per_second
        due = time.monotonic()
        try:
            self._screen.start()
        except OSError:
            return
        view: SpectrogramView | None = None
        while True:
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            final = self._stopping
            now = time.monotonic()
            if now >= due:  # the regular cadence; a window in between is drawn at once
                due = max(due + period, now)
            try:
                view = self._draw(view, final)
            except OSError:  # the terminal went away (hang-up, closed pty): stop drawing
                return
            except Exception as e:  # noqa: BLE001 - a drawing bug must not kill the thread silently
                view = None
                self._screen.error(f"dashboard error: {type(e).__name__}: {e}")
            if final:
                try:
                    self._screen.finish()
                except OSError:
                    pass
                return

    def _draw(self, view: SpectrogramView | None, final: bool = False) -> SpectrogramView | None:
        with self._lock:
            st, last = self._status, self._last
        width, height = self.console.size
        items, spec_rows = self._compose(st, last, max(1, width), max(1, height - 1))
        shift: int | None = None
        if spec_rows:
            cols = max(1, width) - AXIS_W
            if view is None or (view.rows, view.cols) != (spec_rows, cols):
                view = SpectrogramView(spec_rows, cols)
            shift = view.update(st.spectrogram)
        else:
            view = None
        self._screen.draw(items, view, shift, width, final)
        self.frames += 1
        return view

    # -- drawing -----------------------------------------------------------------------------
    def render(self, status: LiveStatus | None = None, window: LiveWindow | None = None
               ) -> RenderableType:
        """The dashboard as a renderable that lays itself out for the console it is printed on:
        the newest published state, or the one given (drawn without starting the live view)."""
        return _View(self, status, window)

    def lines(self, width: int, height: int, status: LiveStatus | None = None,
              window: LiveWindow | None = None) -> list[Text]:
        """At most height-1 lines (one left for the cursor) of at most `width` cells: the frame the
        live view shows at this size (spectrogram included), as rich Text. Of the newest published
        state unless status is given."""
        if status is None:
            with self._lock:
                status, last = self._status, self._last
        else:
            last = window
        try:
            items, spec_rows = self._compose(status, last, width, max(1, height - 1))
            if not spec_rows:
                return [t for t in items if isinstance(t, Text)]
            view = SpectrogramView(spec_rows, width - AXIS_W)
            view.update(status.spectrogram)
            colour = self.console.color_system is not None
            return [_fit(_spec_row(view, t, colour), width) if isinstance(t, int) else t
                    for t in items]
        except Exception as e:  # noqa: BLE001 - a drawing bug shows as a line, not a crash
            return [_fit(Text(f"dashboard error: {type(e).__name__}: {e}", style="red"), width)]

    def _compose(
        self, st: LiveStatus | None, last: LiveWindow | None, width: int, max_lines: int
    ) -> tuple[list[Line], int]:
        """The frame's lines, with the spectrogram block as row numbers; and its row count."""
        header = self._header(st, width)
        if st is None:
            return [header, _fit(Text("waiting for audio…", style="dim"), width)][:max_lines], 0
        # (priority, line): lower numbers survive a short terminal.
        fixed: list[tuple[int, Text]] = [
            (0, header),
            (1, self._score_line(st, last, width)),
            (4, self._trend_line(st, width)),
            (3, self._level_line(st, width)),
            (2, self._status_line1(st, width)),
            (5, self._status_line2(st, width)),
        ]
        if st.message:
            fixed.append((1, _fit(Text(st.message, style="bold yellow"), width)))
        while len(fixed) > max_lines:
            fixed.remove(max(fixed, key=lambda p: p[0]))
        lines: list[Line] = [t for _, t in fixed]
        spec_rows = min(SPEC_MAX_ROWS, max_lines - len(lines) - 1)  # -1 for its caption
        spec = st.spectrogram
        if spec is None or spec.ndim != 2 or spec.shape[1] == 0 or spec_rows < 2 or width <= AXIS_W:
            return lines, 0
        secs = min(spec.shape[1], width - AXIS_W) * HOP / SAMPLE_RATE
        cap = Text(f"spectrogram · last {secs:.1f} s · 0–{SAMPLE_RATE // 2000} kHz", "dim")
        n_top = 4 if len(lines) >= 4 else len(lines)  # header, score, trend, level above it
        lines = lines[:n_top] + [_fit(cap, width), *range(spec_rows)] + lines[n_top:]
        return lines, spec_rows

    @staticmethod
    def _header(st: LiveStatus | None, width: int) -> Text:
        left = "specmon listen" + (f" · {_fmt_duration(st.elapsed_s)}" if st else "")
        for right in (DISCLAIMER, DISCLAIMER_SHORT):
            if len(left) + 2 + len(right) <= width:
                t = Text(left, style="bold")
                t.append(" " * (width - len(left) - len(right)))
                t.append(right, style="dim italic")
                return t
        return _fit(Text(DISCLAIMER_SHORT, style="dim italic"), width)

    @staticmethod
    def _score_line(st: LiveStatus, last: LiveWindow | None, width: int) -> Text:
        if last is None:
            return _fit(Text("score   —   waiting for the first 4-s window", style="dim"), width)
        r = last.result
        label = r.label
        score = "  —  " if r.score is None else f"{r.score:5.3f}"
        t = Text("score ")
        t.append(score, style="bold")
        t.append(" ")
        t.append(f"{label:<9}", style=LABEL_STYLE.get(label, ""))
        suffix = f" thr {st.threshold:.2f}"
        bar_w = width - t.cell_len - 3 - len(suffix)
        if bar_w >= 5:
            t.append(" [")
            fill = LABEL_COLOUR.get(label, "white")
            t.append_text(_bar(r.score or 0.0, bar_w, fill, mark=st.threshold))
            t.append("]")
            t.append(suffix, style="dim")
        return _fit(t, width)

    @staticmethod
    def _trend_line(st: LiveStatus, width: int) -> Text:
        scores = list(st.scores)
        sm = next((s for _, _, s in reversed(scores) if s is not None), None)
        t = Text("trend ")
        t.append("  —  " if sm is None else f"{sm:5.3f}", style="bold")
        t.append(" ")
        spark_w = width - t.cell_len - 9
        if spark_w >= 4 and scores:
            shown = scores[-spark_w:]
            vals = [s if sc is not None else None for _, sc, s in shown]
            t.append_text(sparkline(vals, spark_w, st.threshold))
            span = shown[-1][0] - shown[0][0]
            t.append(f" {span / 60:4.1f} min" if span >= 60 else f" {span:5.0f} s", style="dim")
        return _fit(t, width)

    @staticmethod
    def _level_line(st: LiveStatus, width: int) -> Text:
        lvl = st.level_dbfs
        t = Text("level ")
        t.append(f"{lvl:6.1f} dBFS", style="bold")
        warn = " CLIPPING"
        bar_w = width - t.cell_len - 3 - len(warn)
        if bar_w >= 5:
            colour = "red" if lvl >= -3 else "yellow" if lvl >= -12 else "green"
            t.append(" [")
            t.append_text(_bar((lvl - LEVEL_MIN_DBFS) / -LEVEL_MIN_DBFS, bar_w, colour))
            t.append("]")
        if st.clipping:
            t.append(warn, style="bold white on red")
        return _fit(t, width)

    @staticmethod
    def _status_line1(st: LiveStatus, width: int) -> Text:
        dropped = st.dropped_s or (st.dropped_samples / st.sample_rate if st.sample_rate else 0.0)
        lost = dropped > 0 or st.overflows > 0  # any loss shows, however short: never "0.0 s"
        t = Text(f"windows {st.windows_scored}/{st.windows_total} scored · dropped ")
        shown = f"{dropped:.1f} s" if dropped >= 0.05 or not lost else "<0.1 s"
        if st.overflows:
            shown += f" ({st.overflows} overruns)"
        t.append(shown, style="bold yellow" if lost else "")
        t.append(f" · {st.device} @ {st.sample_rate} Hz")
        return _fit(t, width)

    @staticmethod
    def _status_line2(st: LiveStatus, width: int) -> Text:
        t = Text(f"infer {st.latency_ms:.1f} ms · CPU {st.cpu_percent:.0f}% · log ", style="dim")
        room = width - t.cell_len
        path = st.csv_path or "—"
        if len(path) > room and room > 1:
            path = "…" + path[-(room - 1) :]  # keep the file name, drop the front of the path
        t.append(path, style="dim")
        return _fit(t, width)



class _View:
    """Dashboard.lines() for the size of whichever console renders it (so resizing just works)."""

    def __init__(self, dash: Dashboard, status: LiveStatus | None, window: LiveWindow | None
                 ) -> None:
        self.dash, self.status, self.window = dash, status, window

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(1, options.max_width)
        yield Group(*self.dash.lines(width, options.size.height, self.status, self.window))


def _snapshot(status: LiveStatus) -> LiveStatus:
    """A copy the render thread can read while the pipeline goes on: the pipeline replaces the
    spectrogram array on each tick (never writes into it) and appends to the score list (copied)."""
    snap = copy.copy(status)
    snap.scores = list(status.scores)
    return snap


class _Proxy(io.TextIOBase):
    """sys.stdout/sys.stderr while the dashboard runs: whole lines are printed above it."""

    def __init__(self, screen: _Screen, real: TextIO, wake: threading.Event) -> None:
        self._screen, self._real, self._wake = screen, real, wake

    def write(self, s: str) -> int:
        if self._screen.add_above(s):
            self._wake.set()
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self._real.isatty()

    def fileno(self) -> int:
        return self._real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", "utf-8")


_CSI = "\x1b["


class _Screen:
    """Draws frames on the terminal by rewriting only what changed (render thread only).

    The frame sits below the cursor's row at start; the cursor stays on its last row, and moves are
    relative (as rich's Live does), so the final frame stays in the scrollback. A changed text line is
    rewritten; a spectrogram row only gets its new columns: delete-character (CSI P) at its left edge
    shifts the row left, and the new cells are written at its right end. Anything else (another size,
    lines appearing or going, a new colour range) redraws the frame.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.file = console.file  # the real stream, before stdout is redirected
        name = console.color_system
        self.colour = name is not None
        self.system = COLOR_SYSTEMS.get(name) if name else None
        self._shown: list[str] = []  # what each frame line shows now (ANSI)
        self._key: tuple | None = None  # the layout they were drawn for
        self._row = 0  # cursor row within the frame
        self._above: list[str] = []  # complete lines printed by others, to go above the frame
        self._partial = ""
        self._above_lock = threading.Lock()
        self._sgr: dict[int, str] = {}  # colour pair -> its SGR sequence
        self.bytes_written = 0

    # -- others' output ----------------------------------------------------------------------
    def add_above(self, s: str) -> bool:
        """Queue text printed elsewhere; True when a whole line is waiting."""
        with self._above_lock:
            text = self._partial + s
            *done, self._partial = text.split("\n")
            self._above.extend(done)
            return bool(done)

    def _take_above(self, final: bool) -> list[str]:
        with self._above_lock:
            out, self._above = self._above, []
            if final and self._partial:
                out.append(self._partial)
                self._partial = ""
            return out

    # -- drawing -----------------------------------------------------------------------------
    def _ansi(self, t: Text) -> str:
        if t.style:  # Text.render() ignores the base style of a line without spans
            t, base = Text(), t
            t.append_text(base)
        out = []
        for seg in t.render(self.console):
            if seg.control:
                continue
            out.append(seg.style.render(seg.text, color_system=self.system)
                       if seg.style and self.system else seg.text)
        return "".join(out)

    def _cells_ansi(self, view: SpectrogramView, r: int, first: int) -> str:
        """Row r's cells from column `first`: one SGR per change of colour pair, not per cell."""
        if not self.colour or self.system is None:
            return view.row_text(r, False, first).plain
        codes = (view.cells[2 * r, first:].astype(np.int32) * N_COLOURS
                 + view.cells[2 * r + 1, first:]).tolist()
        out, prev = [], -1
        for c in codes:
            if c != prev:
                sgr = self._sgr.get(c)
                if sgr is None:
                    styled = _pair_style(c // N_COLOURS, c % N_COLOURS).render(
                        "▀", color_system=self.system)
                    sgr = self._sgr[c] = styled[: styled.index("▀")]
                out.append(sgr)
                prev = c
            out.append("▀")
        out.append(f"{_CSI}0m")
        return "".join(out)

    def _goto(self, out: list[str], row: int) -> None:
        if row < self._row:
            out.append(f"{_CSI}{self._row - row}A")
        elif row > self._row:
            out.append(f"{_CSI}{row - self._row}B")
        out.append("\r")
        self._row = row

    def _clear(self, out: list[str]) -> None:
        """Back to the frame's first row and erase it and everything below."""
        if self._shown:
            self._goto(out, 0)
            out.append(f"{_CSI}0J")
        self._shown = []

    def draw(self, items: list[Line], view: SpectrogramView | None, shift: int | None,
             width: int, final: bool = False) -> None:
        out: list[str] = []
        above = self._take_above(final)
        spec_key = None if view is None else (view.rows, view.cols, view.shown)
        key = (width, spec_key, tuple(isinstance(t, int) for t in items))
        if above:
            self._clear(out)
            out.append("\r\n".join(above) + "\r\n")
            self._row = 0
        # The final frame is drawn whole: whatever the terminal echoed into the frame (^C) goes.
        if key != self._key or not self._shown or final:
            self._clear(out)
            self._key = key
            if not above:
                out.append("\r")
            shown = []
            for i, t in enumerate(items):
                line = self._line(t, view)
                shown.append(line)
                out.append(line + ("\r\n" if i + 1 < len(items) else ""))
            self._shown, self._row = shown, max(0, len(items) - 1)
        else:
            pad = 0 if view is None else AXIS_W + view.cols - view.shown
            for i, t in enumerate(items):
                if isinstance(t, int):
                    if shift == 0:
                        continue
                    if shift is None or shift >= view.shown:
                        line = self._line(t, view)
                        self._goto(out, i)
                        out.append(line + f"{_CSI}K")
                        self._shown[i] = line
                        continue
                    self._goto(out, i)  # shift the row left by `shift` cells, add the new ones
                    out.append(f"{_CSI}{pad + 1}G{_CSI}{shift}P{_CSI}{pad + view.shown - shift + 1}G")
                    out.append(self._cells_ansi(view, t, view.shown - shift))
                    continue
                line = self._ansi(t)
                if line != self._shown[i]:
                    self._goto(out, i)
                    out.append(line + f"{_CSI}K")
                    self._shown[i] = line
        if out:
            self._goto(out, len(self._shown) - 1)  # park on the last row, as after a full draw
            self._write("".join(out))

    def _line(self, t: Line, view: SpectrogramView | None) -> str:
        if isinstance(t, int):
            axis = self._ansi(Text(_axis_label(t, view.rows), style="dim"))
            return axis + " " * (view.cols - view.shown) + self._cells_ansi(view, t, 0)
        return self._ansi(t)

    def error(self, text: str) -> None:
        """A drawing bug: one red line instead of the frame (redrawn properly next time)."""
        try:
            self.draw([_fit(Text(text, style="red"), max(1, self.console.size.width))], None, None,
                      self.console.size.width)
            self._key = None
        except Exception:  # noqa: BLE001 - nothing more can be shown
            pass

    def start(self) -> None:
        self._write(f"{_CSI}?25l")  # hide the cursor

    def finish(self) -> None:
        """Leave the last frame on screen, the cursor below it and visible."""
        out: list[str] = []
        if self._shown:
            self._goto(out, len(self._shown) - 1)
            out.append("\r\n")
        out.append(f"{_CSI}?25h")
        self._write("".join(out))

    def _write(self, s: str) -> None:
        self.file.write(s)
        self.file.flush()
        self.bytes_written += len(s)


class PlainPrinter:
    """One plain line per window (for pipes, logs and --headless); a Sink."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout

    def on_window(self, w: LiveWindow, status: LiveStatus) -> None:
        """Print and flush one line, e.g. `<time>  t=4.03s  score=0.812  negative  smoothed=...`."""
        self.stream.write(format_window(w) + "\n")
        self.stream.flush()

    def on_tick(self, status: LiveStatus) -> None:
        """Nothing: one line per window only."""

    def close(self, status: LiveStatus | None) -> None:
        """Nothing: the pipeline prints the summary."""


def format_window(w: LiveWindow) -> str:
    """The PlainPrinter line for one window."""
    r = w.result
    score = "-    " if r.score is None else f"{r.score:.3f}"
    smoothed = "-    " if w.smoothed is None else f"{w.smoothed:.3f}"
    return (
        f"{w.time_utc}  t={w.offset_s:.2f}s  score={score}  {r.label:<9}  smoothed={smoothed}  "
        f"level={r.rms_dbfs:.1f}dBFS  voiced={r.voiced:.2f}  {r.latency_ms:.1f}ms"
    )


def render_summary(status: LiveStatus, duration_s: float) -> str:
    """A few plain lines for the end of a session."""
    n, total = status.windows_scored, status.windows_total
    dropped = status.dropped_samples / status.sample_rate if status.sample_rate else 0.0
    scored = [s for _, s, _ in status.scores if s is not None]
    sm = next((s for _, _, s in reversed(status.scores) if s is not None), None)
    lines = [
        f"specmon listen: {_fmt_duration(duration_s)} ({duration_s:.1f} s), {total} windows "
        f"({n} scored, {total - n} no-speech)"
    ]
    if n:
        share = 100.0 * status.negative_windows / n
        lines.append(
            f"negative: {status.negative_windows} of {n} scored windows ({share:.1f}%) "
            f"at threshold {status.threshold:.2f}"
        )
    if scored:
        of = "" if len(scored) >= n else f" (last {len(scored)} scored windows)"
        fin = "" if sm is None else f", final smoothed {sm:.3f}"
        lines.append(f"mean score {float(np.mean(scored)):.3f}{of}{fin}")
    lines.append(f"dropped audio: {dropped:.1f} s")
    if status.csv_path:
        lines.append(f"log: {status.csv_path}")
    lines.append(DISCLAIMER)
    return "\n".join(lines)
