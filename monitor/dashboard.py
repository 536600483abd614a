"""What `specmon listen` shows: a terminal dashboard (rich), a plain line printer, the exit summary.

Both sinks implement the `Sink` protocol of monitor/events.py. The pipeline calls on_window() once
per judged window, on_tick() several times a second and close() once at the end.

Dashboard lifecycle: constructing one does not touch the terminal. rich's Live starts on the first
on_window()/on_tick() (or an explicit start(), or `with Dashboard() as d:`) and stops in close().
Live redraws `refresh_per_second` times a second from its own thread by calling render(), which
reads the latest status, so on_tick() only records the status and costs nothing.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import TextIO

import numpy as np
from rich.color import Color
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
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


def _bar(frac: float, width: int, fill_style: str, mark: float | None = None) -> Text:
    """A horizontal bar of `width` cells filled to frac (0..1), with an optional marker at mark."""
    frac = min(max(frac, 0.0), 1.0)
    filled = int(round(frac * width))
    mark_at = None if mark is None else min(width - 1, max(0, int(round(mark * width))))
    t = Text()
    for i in range(width):
        if i == mark_at:
            t.append("┃", style="bold white" if i >= filled else "bold white on " + fill_style)
        elif i < filled:
            t.append("█", style=fill_style)
        else:
            t.append("─", style="grey37")
    return t


def sparkline(values: list[float | None], width: int, threshold: float) -> Text:
    """The last `width` values (0..1) as block characters; None (no speech) is a gap."""
    vals = values[-width:] if width > 0 else []
    t = Text(" " * max(0, width - len(vals)))
    for v in vals:
        if v is None or not math.isfinite(v):
            t.append(" ")
            continue
        i = min(len(SPARK) - 1, max(0, int(round(min(max(v, 0.0), 1.0) * (len(SPARK) - 1)))))
        t.append(SPARK[i], style="red" if v >= threshold else "green")
    return t


def _pool(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Max-pool array a along axis into n groups of (nearly) equal size."""
    size = a.shape[axis]
    edges = np.linspace(0, size, n + 1).astype(int)[:-1]
    return np.maximum.reduceat(a, edges, axis=axis)


def spectrogram_cells(spec: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """513 x k dB columns -> (2*rows) x c colour indices (0..N_COLOURS-1), low frequencies last.

    Frequency is max-pooled into 2*rows linear bands; time is max-pooled into at most `cols`
    columns (fewer when k < cols: new columns are never stretched).
    """
    spec = np.asarray(spec, dtype=np.float32)
    bands = 2 * rows
    f = _pool(spec, min(bands, spec.shape[0]), axis=0)
    if f.shape[0] < bands:  # absurdly tall request: repeat bands
        f = f[np.linspace(0, f.shape[0] - 1, bands).astype(int)]
    if f.shape[1] > cols:
        f = _pool(f, cols, axis=1)
    top = max(float(f.max()), SPEC_MIN_TOP_DB)
    norm = np.clip((f - (top - SPEC_DYN_DB)) / SPEC_DYN_DB, 0.0, 1.0)
    idx = np.rint(norm * (N_COLOURS - 1)).astype(int)
    return idx[::-1]  # row 0 = highest band


def spectrogram_lines(spec: np.ndarray, rows: int, width: int, colour: bool = True) -> list[Text]:
    """The spectrogram as `rows` lines of half-block characters, with a 3-cell kHz axis on the left.

    Each character is two frequency bands: foreground (▀) the upper, background the lower.
    """
    axis_w = 3
    cols = max(1, width - axis_w)
    cells = spectrogram_cells(spec, rows, cols)
    n = cells.shape[1]
    top_khz = SAMPLE_RATE / 2000
    labels = {0: f"{top_khz:g}k", rows // 2: f"{top_khz / 2:g}k", rows - 1: "0k"}
    styles: dict[tuple[int, int], Style] = {}
    lines = []
    for r in range(rows):
        t = Text()
        t.append(labels.get(r, "").rjust(axis_w - 1) + " ", style="dim")
        t.append(" " * (cols - n))
        up, lo = cells[2 * r], cells[2 * r + 1]
        for c in range(n):
            if colour:
                key = (int(up[c]), int(lo[c]))
                st = styles.get(key)
                if st is None:
                    st = styles[key] = Style(color=_PALETTE[key[0]], bgcolor=_PALETTE[key[1]])
                t.append("▀", style=st)
            else:
                v = (int(up[c]) + int(lo[c])) / (2 * (N_COLOURS - 1))
                t.append(_SHADES[min(len(_SHADES) - 1, int(v * len(_SHADES)))])
        lines.append(t)
    return lines


class Dashboard:
    """Live terminal view of `specmon listen` (a Sink); lifecycle in the module docstring."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 4.0) -> None:
        self.console = console if console is not None else Console()
        self.refresh_per_second = refresh_per_second
        self._status: LiveStatus | None = None
        self._last: LiveWindow | None = None
        self._live: Live | None = None
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start drawing (idempotent)."""
        if self._live is None:
            self._live = Live(
                console=self.console,
                get_renderable=self.render,
                refresh_per_second=self.refresh_per_second,
                auto_refresh=True,
                redirect_stdout=True,
                redirect_stderr=True,
                transient=False,
            )
            self._live.start(refresh=True)

    def __enter__(self) -> Dashboard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- Sink --------------------------------------------------------------------------------
    def on_window(self, w: LiveWindow, status: LiveStatus) -> None:
        """A new judged window: redraw now."""
        with self._lock:
            self._last = w
            self._status = status
        self.start()
        self._live.refresh()

    def on_tick(self, status: LiveStatus) -> None:
        """Record the status; Live redraws on its own schedule."""
        with self._lock:
            self._status = status
        self.start()

    def close(self, status: LiveStatus | None) -> None:
        """Draw the final state once and leave it on screen (status None: keep the last one)."""
        with self._lock:
            if status is not None:
                self._status = status
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    # -- drawing -----------------------------------------------------------------------------
    def render(self) -> RenderableType:
        """The dashboard as a renderable that lays itself out for the console it is printed on."""
        return _View(self)

    def lines(self, width: int, height: int) -> list[Text]:
        """At most height-1 lines (one left for the cursor) of at most `width` cells."""
        with self._lock:
            status, last = self._status, self._last
        try:
            return self._lines(status, last, width, max(1, height - 1))
        except Exception as e:  # a drawing bug must not kill Live's refresh thread silently
            return [_fit(Text(f"dashboard error: {type(e).__name__}: {e}", style="red"), width)]

    def _lines(
        self, st: LiveStatus | None, last: LiveWindow | None, width: int, max_lines: int
    ) -> list[Text]:
        header = self._header(st, width)
        if st is None:
            return [header, _fit(Text("waiting for audio…", style="dim"), width)][:max_lines]
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
        lines = [t for _, t in fixed]
        spec_rows = min(SPEC_MAX_ROWS, max_lines - len(lines) - 1)  # -1 for its caption
        spec = st.spectrogram
        if spec is not None and spec.ndim == 2 and spec.shape[1] > 0 and spec_rows >= 2:
            secs = spec.shape[1] * HOP / SAMPLE_RATE
            cap = Text(f"spectrogram · last {secs:.1f} s · 0–{SAMPLE_RATE // 2000} kHz", "dim")
            colour = self.console.color_system is not None
            block = [_fit(cap, width)] + [
                _fit(t, width) for t in spectrogram_lines(spec, spec_rows, width, colour)
            ]
            n_top = 4 if len(lines) >= 4 else len(lines)  # header, score, trend, level above it
            lines = lines[:n_top] + block + lines[n_top:]
        return lines

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

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(1, options.max_width)
        yield Group(*self.dash.lines(width, options.size.height))


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
