"""Dashboard, PlainPrinter and exit summary: drawn for real (rich recording console and tmux)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from waiting import wait_until

from monitor.dashboard import (
    RENDER_THREAD,
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
    stdout = sys.stdout
    d.on_tick(st)
    print("a line printed by someone else")  # goes above the dashboard, not into it
    d.on_window(make_window(), st)
    d.on_tick(st)
    d.close(st)
    assert sys.stdout is stdout  # given back
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", c.file.getvalue())  # all frames, codes stripped
    # What reached the terminal, cut at every escape sequence and carriage return: no line may be
    # wider than the terminal (it would wrap and scroll the dashboard).
    raw = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "\n", c.file.getvalue())
    lines = raw.splitlines()
    assert len(lines) > 20 and all(len(ln) <= 80 for ln in lines), max(lines, key=len)
    for want in ("0.812", "negative", "-23.1 dBFS", "CLIPPING", "▀", "dropped 0.5 s", "12.3 ms",
                 "CPU 23%", "48000 Hz", "2026-11-25T10-00-00Z.csv", "microphone lost",
                 "not a diagnosis", "a line printed by someone else"):  # fmt: skip
        assert want in text, want
    assert text.index("a line printed") < text.rindex("specmon listen")  # the frame redrawn below
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


# The live view, fed windows that slide over a long chirp (with a message line appearing and going, so
# both the incremental path and a relayout are exercised), next to one frame of the final state drawn
# by rich from scratch: the two terminals must show the same cells in the same colours.
TMUX_LIVE = """
import sys, time
import numpy as np
sys.path.insert(0, {tests!r})
from test_dashboard import make_status, make_window, sliding
from monitor.dashboard import Dashboard
d = Dashboard(refresh_per_second=8)
for i, st in enumerate(sliding(np.load({npy!r}))):
    d.on_window(make_window(), st) if i % 5 == 0 else d.on_tick(st)
    time.sleep(0.07)
d.close(st)
open({done!r}, "w").close()
time.sleep(60)
"""
TMUX_FULL = """
import sys, time
import numpy as np
sys.path.insert(0, {tests!r})
from rich.console import Console
from test_dashboard import make_status, make_window, sliding
from monitor.dashboard import Dashboard
st = list(sliding(np.load({npy!r})))[-1]
Console().print(Dashboard().render(st, make_window()))
open({done!r}, "w").close()
time.sleep(60)
"""
STEPS, STEP_COLS = 30, 5


def sliding(long_spec: np.ndarray):
    """Statuses whose spectrogram slides STEP_COLS columns a step over long_spec."""
    for i in range(STEPS):
        msg = "microphone lost, retrying in 2 s" if 10 <= i < 16 else ""
        yield make_status(long_spec[:, i * STEP_COLS : i * STEP_COLS + 125], message=msg,
                          level_dbfs=-20.0 - i % 7, elapsed_s=65.0 + i)  # fmt: skip


@pytest.fixture(scope="module")
def long_spec() -> np.ndarray:
    noise = 0.003 * np.random.default_rng(0).standard_normal(3 * WINDOW_SAMPLES)
    spec, _ = stft_logpower(np.tile(chirp(), 3) + noise)
    assert spec.shape[1] >= (STEPS - 1) * STEP_COLS + 125
    return spec


def tmux_panes(tmp_path: Path, scripts: dict[str, str], size: tuple[int, int]) -> dict[str, str]:
    """Run each script in its own tmux window of this size; the panes (with colours) once all
    have written their done file."""
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux is not installed: this test needs it (apt-get install tmux)")
    sock = f"specmon-test-{os.getpid()}"
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    base = [tmux, "-u", "-L", sock, "-f", "/dev/null"]
    done = {}
    try:
        for name, code in scripts.items():
            done[name] = tmp_path / f"{name}.done"
            script = tmp_path / f"{name}.py"
            script.write_text(code.format(tests=str(Path(__file__).parent),
                                          npy=str(tmp_path / "spec.npy"), done=str(done[name])))
            subprocess.run(
                base + ["new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]),
                        f"{sys.executable} {script}"],
                check=True, env=env, timeout=20,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(f.exists() for f in done.values()):
            time.sleep(0.3)
        panes = {
            name: subprocess.run(base + ["capture-pane", "-e", "-p", "-t", name],
                                 capture_output=True, text=True, env=env, timeout=10).stdout
            for name in scripts
        }  # fmt: skip
        for name, f in done.items():
            assert f.exists(), f"{name}: the script did not finish:\n{panes[name]}"
            (tmp_path / f"{name}.pane").write_text(panes[name])
        return panes
    finally:
        subprocess.run(base + ["kill-server"], env=env, timeout=10, capture_output=True)


def test_dashboard_in_a_real_terminal(tmp_path: Path, long_spec):
    np.save(tmp_path / "spec.npy", long_spec)
    panes = tmux_panes(tmp_path, {"live": TMUX_LIVE, "full": TMUX_FULL}, (100, 30))
    live, full = (panes[k].splitlines() for k in ("live", "full"))
    plain = [re.sub(r"\x1b\[[0-9;:]*m", "", ln) for ln in live]
    text = "\n".join(plain)
    assert "0.812" in text and "negative" in text, text
    assert "-21.0 dBFS" in text and "0:01:34" in text, text  # the last step's level and time
    assert "microphone lost" not in text  # the message line came and went
    spec_rows = [ln for ln in plain if ln.count("▀") > 50]
    assert len(spec_rows) >= 8, text  # the spectrogram uses the 100-column width
    assert all(len(ln) <= 100 for ln in plain)
    assert "not a diagnosis" in text
    n = next(i for i, ln in enumerate(plain) if ln.startswith("infer")) + 1  # the frame's lines
    assert "\x1b[" in "".join(live[:n]), "no colours captured"
    # Drawn incrementally (columns shifted in, lines rewritten) == drawn once from scratch.
    diff = [f"{i}: live {a!r}\n{i}: full {b!r}"
            for i, (a, b) in enumerate(zip(live[:n], full[:n], strict=False)) if a != b]
    assert live[:n] == full[:n], "\n".join(diff)


def wait_for(cond, timeout: float = 10.0) -> bool:
    return wait_until(cond, timeout, poll=0.01)


def test_live_view_writes_only_what_changed(long_spec):
    c = recording_console(100, 30)
    out = c.file
    d = Dashboard(console=c, refresh_per_second=20)
    sts = list(sliding(long_spec))
    d.on_window(make_window(), sts[0])
    assert wait_for(lambda: d.frames >= 1)
    first = out.getvalue()
    assert first.count("▀") > 20 * 90  # the first frame draws every cell
    d.on_tick(sts[1])  # 5 new spectrogram columns, another level and time
    assert wait_for(lambda: len(out.getvalue()) > len(first))
    n = d.frames
    assert wait_for(lambda: d.frames >= n + 3)  # frames with nothing new write nothing
    delta = out.getvalue()[len(first):]
    d.close(sts[1])  # (the final frame is drawn whole)
    spec_rows = sum("▀" in ln for ln in frame(d, 100, 30))
    assert re.findall(r"\x1b\[\d+P", delta) == ["\x1b[5P"] * spec_rows  # each row shifted by 5
    assert delta.count("▀") == 5 * spec_rows  # and only the new columns drawn
    assert "-21.0 dBFS" in delta and "0:01:06" in delta  # the changed lines rewritten
    assert "0.812" not in delta and "USB Mic" not in delta  # the unchanged ones not
    assert len(delta) < len(first) / 5


class SlowTerminal(io.StringIO):
    """A terminal that takes `delay` s per write and remembers which threads wrote to it."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.writers: set[str] = set()

    def write(self, s: str) -> int:
        self.writers.add(threading.current_thread().name)
        time.sleep(self.delay)
        return super().write(s)

    def isatty(self) -> bool:
        return True


def test_pipeline_thread_never_draws(tmp_path):
    """The real pipeline on a real file (--fast) with a dashboard on a terminal that takes 0.4 s a
    write: only the render thread writes, and the windows come no slower for it."""
    from live_support import REPO, model_for_tests

    from monitor.pipeline import ListenConfig, Pipeline
    from monitor.scorer import FAST_MODEL, Scorer
    from monitor.source import FileSource

    delay = 0.4
    term = SlowTerminal(delay)
    console = Console(file=term, width=100, height=30, force_terminal=True, color_system="256")
    dash = Dashboard(console=console, refresh_per_second=4)
    judged: list[float] = []

    class Stopwatch:
        def on_window(self, w, status):
            judged.append(time.monotonic())

        def on_tick(self, status):
            pass

        def close(self, status):
            pass

    src = FileSource(REPO / "scripts" / "sample.flac", realtime=False)
    # The fast model: this is about who draws, and Whisper's ~0.1 s a window (more on a loaded
    # machine) would make the windows slow for a reason of their own.
    scorer = Scorer(FAST_MODEL if FAST_MODEL.is_file() else model_for_tests(tmp_path))
    st = LiveStatus(device=src.name, sample_rate=src.rate, csv_path="-", threshold=scorer.threshold)
    Pipeline(src, scorer, [Stopwatch(), dash], st, ListenConfig(tick_s=0.05)).run()
    assert term.writers == {RENDER_THREAD}, term.writers
    assert dash.frames >= 1 and "▀" in term.getvalue()  # the final frame, at least
    # Drawing each window on the pipeline thread would take >= delay a window.
    print(f"{len(judged)} windows in {judged[-1] - judged[0]:.2f} s, {dash.frames} frames")
    assert len(judged) >= 15 and judged[-1] - judged[0] < len(judged) * delay / 3
    assert threading.active_count() == 1 or RENDER_THREAD not in {
        t.name for t in threading.enumerate()}  # close() ended the render thread
