"""Pipeline internals without a sound server: every lost sample is accounted for where it was lost,
audio before a loss keeps its time, no window spans a loss, and time_utc follows the system clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from live_support import concat_clips, model_for_tests, prosody_model

from monitor.events import AudioDropped, ClockStep, LiveStatus
from monitor.pipeline import ListenConfig, Pipeline
from monitor.scorer import Scorer
from monitor.scoring import score_signal
from monitor.source import FileSource, MicSource


class Recorder:
    def __init__(self) -> None:
        self.windows, self.events, self.ticks, self.closed = [], [], 0, None

    def on_window(self, w, status) -> None:
        self.windows.append(w)

    def on_event(self, ev, status) -> None:
        self.events.append(ev)

    def on_tick(self, status) -> None:
        self.ticks += 1

    def close(self, status) -> None:
        self.closed = status


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return model_for_tests(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def speech(manifest_rows, speech_dir) -> np.ndarray:
    """About 28 s of speech: eight RAVDESS clips end to end."""
    x = concat_clips(manifest_rows, speech_dir, "ravdess", 8)
    assert x.shape[0] > 24 * 16000
    return x


def status() -> LiveStatus:
    return LiveStatus(device="x", sample_rate=16000, csv_path="", threshold=0.5)


class FillThenOverflow(FileSource):
    """Replays a file; once the ring is full of its audio (a stalled consumer), the next `hole`
    samples of the file are written into the full ring, which drops them, as it would a microphone's."""

    hole = 24000  # 1.5 s

    def poll(self) -> None:
        super().poll()
        if not getattr(self, "overflowed", False) and self.ring.free() == 0:
            self.overflowed = True
            lost = []
            while sum(b.shape[0] for b in lost) < self.hole:
                lost.append(self._next_block(self.hole - sum(b.shape[0] for b in lost)))
            assert self.ring.write(np.concatenate(lost)) == 0
            self._pos += self.hole


def offline(x: np.ndarray, model: Path) -> dict[str, float | None]:
    return {f"{r.start_s:.3f}": r.score for r in score_signal(x, Scorer(model))}


@pytest.mark.parametrize("head", ["bundled", "prosody"])
def test_ring_overflow_after_the_ring_filled_with_audio(tmp_path: Path, speech: np.ndarray,
                                                       model: Path, head: str) -> None:
    """(With a prosody head too: the prosody's frame grid starts again after the hole.)"""
    if head == "prosody":
        model = prosody_model(tmp_path, model)
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech, 16000, subtype="FLOAT")
    src = FillThenOverflow(wav, realtime=False)
    sink = Recorder()
    pipe = Pipeline(src, Scorer(model), [sink], status(), ListenConfig())
    summary = pipe.run()
    at = src.ring.capacity  # the hole is where the full ring stopped taking samples: 10 s in
    after = at + src.hole
    assert summary.dropped_s == 1.5
    holes = [e for e in sink.events if isinstance(e, AudioDropped)]
    assert [(e.offset_s, e.lost_s, e.cause) for e in holes] == [(at / 16000, 1.5, "ring")]
    ends = [w.result.end_s for w in sink.windows]
    assert all(b > a for a, b in zip(ends, ends[1:], strict=False)), "offsets must be monotonic"
    before = [w for w in sink.windows if w.result.end_s <= at / 16000]
    later = [w for w in sink.windows if w.result.start_s >= after / 16000]
    # No window spans the hole ...
    assert len(before) + len(later) == len(sink.windows)
    # ... the audio that was in the ring before it keeps its own time (same windows, same scores
    # as the same samples scored offline) ...
    want = offline(speech[:at], model)
    assert len(before) >= len(want) - 1  # every scheduled window of the first 10 s (offline may add a tail)
    for w in before:
        s = want[f"{w.result.start_s:.3f}"]
        assert (w.result.score is None) == (s is None)
        assert s is None or abs(w.result.score - s) <= 1e-3
    # ... and the audio after it is timed after the hole.
    want = offline(speech[after:], model)
    assert len(later) >= len(want) - 2
    for w in later:
        s = want[f"{w.result.start_s - after / 16000:.3f}"]
        assert s is None or abs(w.result.score - s) <= 1e-3
    assert abs(pipe.offset_s - speech.shape[0] / 16000) < 0.1  # the lost 1.5 s is counted


class DriverOverrun(FileSource):
    """Replays a file; 3 s in, 800 samples are reported missing the way MicSource's callback
    reports a driver overrun (and skipped in the file, as the driver would have lost them)."""

    def poll(self) -> None:
        if not getattr(self, "overran", False) and self._pos >= 3 * 16000:
            self.overran = True
            self._next_block(800)
            self._pos += 800
            self.overflows += 1
            self.ring.mark_hole(800)
        super().poll()


def test_driver_overrun_counts_as_dropped_audio(tmp_path: Path, speech: np.ndarray,
                                                model: Path) -> None:
    wav = tmp_path / "s.wav"
    sf.write(wav, speech[: 12 * 16000], 16000, subtype="FLOAT")
    src = DriverOverrun(wav, realtime=False)
    src.BLOCK = 4000  # small polls, so the overrun lands 3 s in
    st, sink = status(), Recorder()
    summary = Pipeline(src, Scorer(model), [sink], st, ListenConfig()).run()
    assert summary.dropped_s == 0.05 and summary.overflows == 1
    assert st.dropped_s == 0.05 and st.dropped_samples == 800 and st.overflows == 1
    line = next(s for s in summary.lines() if s.startswith("dropped audio: "))
    assert line == "dropped audio: 0.05 s (incl. 1 driver overrun, size estimated)"
    ev = [e for e in sink.events if isinstance(e, AudioDropped)]
    assert len(ev) == 1 and ev[0].cause == "driver" and ev[0].lost_s == 0.05


def test_mic_callback_marks_overrun_as_a_hole() -> None:
    """MicSource's PortAudio callback, as PortAudio calls it with the paInputOverflow flag."""
    import pyaudio

    from monitor.ringbuffer import RingBuffer

    src = MicSource()
    src.rate, src.ring, src._scratch = 16000, RingBuffer(16000), np.zeros(8192, np.float32)
    buf = np.ones(1024, np.float32).tobytes()
    src._callback(buf, 1024, {"input_buffer_adc_time": 0.0}, 0)
    src._callback(buf, 1024, {"input_buffer_adc_time": 0.0}, pyaudio.paInputOverflow)
    assert src.overflows == 1
    assert src.ring.read().shape[0] == 1024 and src.ring.take_hole() == (0, 1024)
    assert src.dropped_s == 1024 / 16000
    # With capture timestamps, the overrun's size comes from them: 0.5 s between buffers of 1024.
    src._callback(buf, 1024, {"input_buffer_adc_time": 10.0}, 0)
    src._callback(buf, 1024, {"input_buffer_adc_time": 10.5}, pyaudio.paInputOverflow)
    src.ring.read()
    assert src.ring.take_hole() == (0, 8000 - 1024)


def test_tiny_loss_never_reads_as_zero() -> None:
    from monitor.events import dropped_text

    assert dropped_text(0.0) == "0.00 s"
    assert dropped_text(1 / 16000) == "<0.01 s"
    assert dropped_text(0.0, 2).startswith("<0.01 s (incl. 2 driver overruns")


class SteppedClock:
    """The system clock, stepped forward by `step` seconds after `after` seconds (an NTP sync)."""

    def __init__(self, after: float, step: float) -> None:
        self.t0, self.after, self.step = datetime.now(timezone.utc), after, step
        self.real = lambda: datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        now = self.real()
        return now + timedelta(seconds=self.step) if (now - self.t0).total_seconds() > self.after \
            else now


def test_clock_step_reanchors_time_utc(tmp_path: Path, speech: np.ndarray, model: Path) -> None:
    wav = tmp_path / "s.wav"
    sf.write(wav, speech[: 8 * 16000], 16000, subtype="FLOAT")
    sink = Recorder()
    clock = SteppedClock(after=5.5, step=30.0)
    Pipeline(FileSource(wav, realtime=True), Scorer(model), [sink], status(),
             ListenConfig(clock_check_s=1.0), wall_clock=clock).run()
    steps = [e for e in sink.events if isinstance(e, ClockStep)]
    assert len(steps) == 1 and abs(steps[0].step_s - 30.0) < 0.3, steps
    ends = [w.offset_s for w in sink.windows]
    assert ends == sorted(ends) and len(ends) == 5  # offset_s untouched: the file's own schedule
    times = [datetime.fromisoformat(w.time_utc.replace("Z", "+00:00")) for w in sink.windows]
    dt = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert [round(d, 2) for d in dt].count(0.99) == 3 and abs(max(dt) - 30.99) < 0.3
    # time_utc is the system time at which each window's last sample arrived (real-time replay)
    assert abs((times[0] - clock.t0).total_seconds() - ends[0]) < 0.5
