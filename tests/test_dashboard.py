"""Dashboard, PlainPrinter and exit summary: drawn for real (rich recording console and tmux)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from monitor.dashboard import (
    SPARK,
    Dashboard,
    PlainPrinter,
    format_window,
    render_summary,
    sparkline,
    spectrogram_cells,
)
from monitor.events import LiveStatus, LiveWindow
from monitor.features import SAMPLE_RATE, WINDOW_SAMPLES, stft_logpower
from monitor.windows import NEGATIVE, NEUTRAL, NO_SPEECH, WindowResult


def chirp(f0: float = 200.0, f1: float = 7500.0, n: int = WINDOW_SAMPLES) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    f = f0 * (f1 / f0) ** (t / t[-1])
    return 0.3 * np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE)


def tone(freq: float, n: int = WINDOW_SAMPLES) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * freq * np.arange(n) / SAMPLE_RATE)


@pytest.fixture(scope="module")
def chirp_spec() -> np.ndarray:
    spec, _ = stft_logpower(chirp())
    assert spec.shape == (513, 125)
    return spec


def make_status(spec: np.ndarray | None, **kw) -> LiveStatus:
    st = LiveStatus(
        device="USB Mic (hw:1,0)",
        sample_rate=48000,
        csv_path="/home/user/specmon/logs/2026-11-25T10-00-00Z.csv",
        threshold=0.5,
    )
    st.spectrogram = spec
    st.windows_scored, st.windows_total, st.negative_windows = 40, 45, 12
    st.dropped_samples = 24000  # 0.5 s at 48 kHz
    st.latency_ms, st.cpu_percent, st.level_dbfs, st.elapsed_s = 12.3, 23.0, -23.1, 65.0
    sm = 0.3
    for i in range(60):
        sc = None if i % 15 < 2 else 0.5 + 0.4 * np.sin(i / 8)
        sm = sm if sc is None else 0.8 * sm + 0.2 * sc
        st.scores.append((4.032 + 0.992 * i, sc, sm))
    for k, v in kw.items():
        setattr(st, k, v)
    return st


def make_window(score: float | None = 0.812, label: str = NEGATIVE) -> LiveWindow:
    r = WindowResult(60.0, 64.032, score, label, -23.1, 0.91, 12.3)
    return LiveWindow("2026-11-25T10:01:04.032Z", 64.032, r, 0.640, "m1")


def recording_console(width: int, height: int) -> Console:
    return Console(
        file=io.StringIO(), record=True, width=width, height=height, force_terminal=True,
        color_system="truecolor",
    )  # fmt: skip


def frame(d: Dashboard, width: int, height: int) -> list[str]:
    """One rendered frame as plain lines."""
    c = recording_console(width, height)
    c.print(d.render())
    return c.export_text().splitlines()


def score_line(lines: list[str]) -> str:
    return next(ln for ln in lines if ln.startswith("score"))


def test_live_dashboard_80x24_draws_everything_and_fits(chirp_spec):
    c = recording_console(80, 24)
    d = Dashboard(console=c, refresh_per_second=4)
    st = make_status(chirp_spec, clipping=True, message="microphone lost, retrying in 2 s")
    d.on_tick(st)
    d.on_window(make_window(), st)
    d.on_tick(st)
    d.close(st)
    text = c.export_text()  # every frame Live drew, control codes stripped
    # What reached the terminal, cut at every escape sequence and carriage return: no line may be
    # wider than the terminal (it would wrap and scroll the dashboard).
    raw = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "\n", c.file.getvalue())
    lines = raw.splitlines()
    assert len(lines) > 20 and all(len(ln) <= 80 for ln in lines), max(lines, key=len)
    for want in ("0.812", "negative", "-23.1 dBFS", "CLIPPING", "▀", "dropped 0.5 s", "12.3 ms",
                 "CPU 23%", "48000 Hz", "2026-11-25T10-00-00Z.csv", "microphone lost",
                 "not a diagnosis"):  # fmt: skip
        assert want in text, want
    # the last frame alone fits the terminal height (one line kept free for the cursor)
    last = frame(d, 80, 24)
    assert len(last) <= 23
    assert sum("▀" in ln for ln in last) >= 10  # the spectrogram got most of the spare rows


def test_narrow_terminal_fits(chirp_spec):
    d = Dashboard(console=recording_console(40, 15))
    st = make_status(chirp_spec, clipping=True, message="microphone lost, retrying in 2 s")
    d.on_window(make_window(), st)
    d.close(st)
    lines = frame(d, 40, 15)
    assert lines and len(lines) <= 14
    assert all(len(ln) <= 40 for ln in lines), max(lines, key=len)
    assert "0.812" in score_line(lines)
    assert any("▀" in ln for ln in lines)
    assert "diagnosis" in lines[0]
    for w, h in ((20, 5), (12, 2)):  # absurdly small: no crash, still fits
        tiny = frame(d, w, h)
        assert len(tiny) <= max(1, h - 1) and all(len(ln) <= w for ln in tiny)


def test_gauge_fill_follows_score_and_labels(chirp_spec):
    d = Dashboard(console=recording_console(80, 24))
    st = make_status(chirp_spec)
    fills = {}
    for score, label in ((0.2, NEUTRAL), (0.9, NEGATIVE)):
        d.on_window(make_window(score, label), st)
        line = score_line(frame(d, 80, 24))
        assert label in line and f"{score:.3f}" in line
        fills[score] = line.count("█")
    d.on_window(make_window(None, NO_SPEECH), st)
    line = score_line(frame(d, 80, 24))
    d.close(st)
    assert NO_SPEECH in line and "—" in line and line.count("█") == 0
    assert fills[0.2] < fills[0.9]
    bar = line[line.index("[") + 1 : line.index("]")]
    assert abs(bar.index("┃") / len(bar) - 0.5) < 0.05  # threshold marker in the middle


def test_waiting_state_and_no_spectrogram():
    d = Dashboard(console=recording_console(80, 24))
    assert any("waiting" in ln for ln in frame(d, 80, 24))
    st = make_status(None)
    d.on_tick(st)
    lines = frame(d, 80, 24)
    d.close(st)
    assert "waiting" in score_line(lines)
    assert not any("▀" in ln for ln in lines)
    assert "CLIPPING" not in "\n".join(lines)


def test_spectrogram_low_frequencies_at_the_bottom():
    low, _ = stft_logpower(tone(300.0))
    high, _ = stft_logpower(tone(7800.0))
    for spec, brightest_row in ((low, -1), (high, 0)):
        cells = spectrogram_cells(spec, rows=8, cols=60)
        assert cells.shape == (16, 60)
        assert int(np.argmax(cells.mean(axis=1))) == (brightest_row % 16)
    short = spectrogram_cells(low[:, :10], rows=4, cols=60)
    assert short.shape == (8, 10)  # never stretched


def test_sparkline_levels_and_gaps():
    t = sparkline([0.0, None, 1.0, 0.5], 6, threshold=0.5)
    assert t.plain == "  " + SPARK[0] + " " + SPARK[-1] + SPARK[4]
    assert sparkline([0.1] * 100, 10, 0.5).plain == SPARK[1] * 10


def test_plain_printer_line_format():
    buf = io.StringIO()
    p = PlainPrinter(stream=buf)
    st = make_status(None)
    p.on_tick(st)
    p.on_window(make_window(), st)
    p.on_window(LiveWindow("2026-11-25T10:01:05.024Z", 65.024,
                           WindowResult(61, 65.024, None, NO_SPEECH, -61.0, 0.02, 0.0), None, "m1"),
                st)  # fmt: skip
    p.close(st)
    assert buf.getvalue().splitlines() == [
        "2026-11-25T10:01:04.032Z  t=64.03s  score=0.812  negative   smoothed=0.640  "
        "level=-23.1dBFS  voiced=0.91  12.3ms",
        "2026-11-25T10:01:05.024Z  t=65.02s  score=-      no-speech  smoothed=-      "
        "level=-61.0dBFS  voiced=0.02  0.0ms",
    ]
    assert format_window(make_window()) == buf.getvalue().splitlines()[0]


def test_summary():
    st = make_status(None)
    s = render_summary(st, 65.0)
    assert "0:01:05" in s and "45 windows" in s and "40 scored" in s
    assert "12 of 40" in s and "30.0%" in s
    scored = [x for _, x, _ in st.scores if x is not None]
    assert f"mean score {np.mean(scored):.3f}" in s
    assert f"final smoothed {st.scores[-1][2]:.3f}" in s
    assert "dropped audio: 0.5 s" in s
    assert "not a diagnosis" in s
    assert len(s.splitlines()) <= 7


TMUX_SCRIPT = """
import sys, time
import numpy as np
sys.path.insert(0, {tests!r})
from test_dashboard import make_status, make_window
from monitor.dashboard import Dashboard
st = make_status(np.load({npy!r}))
d = Dashboard(refresh_per_second=4)
for i in range(8):
    d.on_window(make_window(), st) if i % 4 == 0 else d.on_tick(st)
    time.sleep(0.25)
d.close(st)
open({done!r}, "w").close()
time.sleep(60)
"""


def test_dashboard_in_a_real_terminal(tmp_path: Path, chirp_spec):
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux is not installed: this test needs it (apt-get install tmux)")
    npy = tmp_path / "spec.npy"
    np.save(npy, chirp_spec)
    script, done = tmp_path / "feed.py", tmp_path / "done"
    script.write_text(
        TMUX_SCRIPT.format(tests=str(Path(__file__).parent), npy=str(npy), done=str(done))
    )
    sock = f"specmon-test-{os.getpid()}"
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.pop("NO_COLOR", None)
    base = [tmux, "-u", "-L", sock, "-f", "/dev/null"]
    subprocess.run(
        base + ["new-session", "-d", "-s", "dash", "-x", "100", "-y", "30",
                f"{sys.executable} {script}"],
        check=True, env=env, timeout=20,
    )  # fmt: skip
    try:
        pane = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pane = subprocess.run(
                base + ["capture-pane", "-p", "-t", "dash"],
                capture_output=True, text=True, env=env, timeout=10,
            ).stdout  # fmt: skip
            if done.exists():
                break
            time.sleep(0.3)
        assert done.exists(), f"the dashboard script did not finish:\n{pane}"
        pane = subprocess.run(
            base + ["capture-pane", "-p", "-t", "dash"],
            capture_output=True, text=True, env=env, timeout=10,
        ).stdout  # fmt: skip
        (tmp_path / "pane.txt").write_text(pane)
        assert "0.812" in pane and "negative" in pane, pane
        assert "-23.1 dBFS" in pane, pane
        spec_rows = [ln for ln in pane.splitlines() if ln.count("▀") > 50]
        assert len(spec_rows) >= 8, pane  # spectrogram uses the 100-column width
        assert all(len(ln) <= 100 for ln in pane.splitlines())
        assert "not a diagnosis" in pane
    finally:
        subprocess.run(base + ["kill-server"], env=env, timeout=10, capture_output=True)
