"""The live loop: ring buffer -> 16 kHz -> rolling STFT -> windows (and their samples'
prosody) -> gate, scorer -> sinks.

Windows end on the schedule monitor.features.window_ends uses offline (column counts 125,
125 + stride, ...), and each window's samples reach RollingSTFT exactly up to its last frame before
it is taken, so a replayed file gives the same windows, and scores, as `specmon score`.

Stream clock: offset_s counts 16 kHz samples since capture started, lost ones included, so it is
monotonic and every second is accounted for. Audio goes missing in two ways, and either way the audio
before the loss is analysed with its own time and the rolling analysis restarts after it (no window
spans a loss):
- a hole: the ring buffer was full, or the driver overran (RingBuffer records where); the clock moves
  on by the samples lost (AudioDropped event);
- a device loss: the clock moves on by the wall-clock time from the last sample received to the first
  one after the reconnect (DeviceLost, DeviceBack events).
time_utc comes from monitor.streamclock: anchored to the system clock at the first audio and
re-anchored when they part by more than a tolerance (ClockStep event).

Signals (main thread only): SIGINT and SIGTERM stop the session; SIGHUP asks the sinks that have a
reopen() (the CSV log) to reopen their files between two windows, so logrotate can move the log away.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from monitor.errors import SpecmonError
from monitor.events import (
    AudioDropped,
    ClockStep,
    DeviceBack,
    DeviceLost,
    DeviceRetry,
    Event,
    LiveStatus,
    LiveWindow,
    Sink,
    dropped_text,
)
from monitor.features import (
    HOP,
    N_FFT,
    SAMPLE_RATE,
    WINDOW_FRAMES,
    RollingSTFT,
    stride_hops,
    window_span_s,
)
from monitor.prosody import RecentSamples
from monitor.prosody import warm_up as prosody_warm_up
from monitor.resample import Resampler
from monitor.sample_features import SampleFeatures
from monitor.scorer import Scorer
from monitor.source import DeviceLost as DeviceGone
from monitor.streamclock import CLOCK_CHECK_S, CLOCK_TOLERANCE_S, StreamClock, utc_text
from monitor.window_stats import warm_up as stats_warm_up
from monitor.windows import NEGATIVE, Gate, assess

# Weight of the newest score in the smoothed score (EMA). 0.3 follows a change within ~3 windows
# (3 s at the default stride) while damping single-window swings. No-speech windows leave it as is.
EMA_ALPHA = 0.3
TICK_S = 0.2  # status refresh
LOOP_SLEEP_S = 0.02
TICK_SLACK = 0.5  # share of tick_s a tick may move (either way) to share a window's wake-up
BACKOFF_MAX_S = 30.0
TREND_POINTS = 600


@dataclass
class ListenConfig:
    stride_s: float = 1.0
    threshold: float | None = None  # None: the model's
    gate: Gate = field(default_factory=Gate)
    duration_s: float | None = None
    record_path: Path | None = None
    alpha: float = EMA_ALPHA
    tick_s: float = TICK_S  # status refresh period; 1 s is plenty without a dashboard
    live_view: bool = True  # a dashboard wants CPU % and the spectrogram on every tick
    clock_tolerance_s: float = CLOCK_TOLERANCE_S  # re-anchor time_utc past this difference
    clock_check_s: float = CLOCK_CHECK_S
    heartbeat: Callable[[], None] | None = None  # called on every status tick (service watchdog)


@dataclass
class Summary:
    duration_s: float = 0.0
    windows_total: int = 0
    windows_scored: int = 0
    negative_windows: int = 0
    score_sum: float = 0.0
    final_smoothed: float | None = None
    dropped_s: float = 0.0
    overflows: int = 0
    clock_steps: int = 0
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (offset_s, length_s)
    stopped_by: str = ""

    @property
    def negative_share(self) -> float:
        return self.negative_windows / self.windows_scored if self.windows_scored else 0.0

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.windows_scored if self.windows_scored else None

    def lines(self) -> list[str]:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        out = [
            f"listened {self.duration_s:.1f} s ({self.stopped_by})",
            f"windows: {self.windows_total} ({self.windows_scored} with speech), "
            f"negative: {self.negative_windows} ({100 * self.negative_share:.0f}% of scored)",
            f"mean score: {f(self.mean_score)}, final smoothed: {f(self.final_smoothed)}",
            f"dropped audio: {dropped_text(self.dropped_s, self.overflows)}",
        ]
        if self.gaps:
            total = sum(g for _, g in self.gaps)
            out.append(f"device gaps: {len(self.gaps)} ({total:.1f} s without audio)")
        if self.clock_steps:
            out.append(f"clock steps: {self.clock_steps} (time_utc re-anchored to the system clock)")
        return out


def warm_up() -> None:
    """Compile, or load from numba's cache, the rolling STFT's, the prosody's and the window
    statistics' kernels (start-up, not first audio)."""
    RollingSTFT().push(np.zeros(N_FFT + HOP, np.float32))
    prosody_warm_up()
    stats_warm_up()


def _disk_full(path: Path | None) -> bool:
    import shutil

    try:
        return path is not None and shutil.disk_usage(path.parent).free < 1 << 16
    except OSError:
        return False


class Pipeline:
    """Runs one listening session; stop() (or SIGINT/SIGTERM) ends it cleanly."""

    def __init__(self, source, scorer: Scorer, sinks: list[Sink], status: LiveStatus,
                 config: ListenConfig, start_utc: datetime | None = None,
                 wall_clock: Callable[[], datetime] | None = None) -> None:
        self.source = source
        self.scorer = scorer
        self.sinks = sinks
        self.status = status
        self.cfg = config
        self.threshold = scorer.threshold if config.threshold is None else config.threshold
        self.stride = stride_hops(config.stride_s)
        self.summary = Summary()
        self._stop = threading.Event()
        self._reopen = threading.Event()  # SIGHUP: reopen the log files at the next safe point
        # start_utc fixes time_utc to start_utc + offset_s (tests, benchmarks); otherwise the clock
        # anchors at the first audio and follows the system clock (wall_clock, for tests).
        self.clock = StreamClock(start_utc, config.clock_tolerance_s, config.clock_check_s)
        self._now = wall_clock or (lambda: datetime.now(timezone.utc))
        self._smoothed: float | None = None
        self._record = None
        self._clip_until = 0.0
        self.started = False  # set once the source is open: before that, nothing to summarise
        # A device loss in progress: (stream clock of the last sample, its monotonic time). The
        # gap's true size is only known when audio flows again.
        self._lost: tuple[int, float] | None = None
        self._missing_s = 0.0  # audio found missing by the clock (not reported by the driver)
        self._reset_segment(0)

    def stop(self, reason: str = "stopped") -> None:
        if not self._stop.is_set():
            self.summary.stopped_by = reason
        self._stop.set()

    # -- segments: one per continuous run of audio (a hole or a device loss starts a new one) -------
    def _reset_segment(self, origin: int) -> None:
        self._origin = origin  # stream clock (16 kHz samples) of this segment's first sample
        self._pushed = 0  # 16 kHz samples pushed into the rolling STFT in this segment
        self._read_in = 0  # capture-rate samples read from the ring in this segment
        self._rate = int(self.source.rate or 0)
        self._rolling = RollingSTFT()
        self._recent = RecentSamples()  # the current window's samples, for its prosody
        # frames and partials counted from this segment's first sample
        self._prosody = SampleFeatures(self.scorer.head_encoder)
        self._next_end = WINDOW_FRAMES
        self._resampler = Resampler(self._rate) if self._rate else None

    @property
    def offset_s(self) -> float:
        return (self._origin + self._pushed) / SAMPLE_RATE

    def _read_end(self) -> int:
        """Stream clock (16 kHz samples) just after the last sample read from the ring: counted
        at the capture rate, so the resampler's delay does not shift it."""
        if not self._rate:
            return self._origin + self._pushed
        return max(self._origin + int(round(self._read_in * SAMPLE_RATE / self._rate)),
                   self._origin + self._pushed)

    def _emit(self, event: Event) -> None:
        for s in self.sinks:
            on_event = getattr(s, "on_event", None)
            if on_event is not None:
                on_event(event, self.status)

    # -- the data path -----------------------------------------------------------------------------
    def _feed(self, x16: np.ndarray) -> None:
        """Push 16 kHz samples, stopping at each scheduled window end to judge that window."""
        while x16.shape[0]:
            target = N_FFT + (self._next_end - 1) * HOP  # samples that complete column _next_end
            need = target - self._pushed
            if need > x16.shape[0]:
                self._rolling.push(x16)
                self._recent.push(x16)
                self._pushed += x16.shape[0]
                return
            self._rolling.push(x16[:need])
            self._recent.push(x16[:need])
            self._pushed += need
            x16 = x16[need:]
            self._judge()
            self._next_end += self.stride

    def _judge(self) -> None:
        s0, s1 = window_span_s(self._next_end)
        base = self._origin / SAMPLE_RATE
        first = (self._next_end - WINDOW_FRAMES) * HOP  # the window's first sample in this segment
        r = assess(self._rolling.window(), self._rolling.levels(), self.scorer, self.cfg.gate,
                   self.threshold, base + s0, base + s1,
                   lambda first=first: self._prosody(self._recent.last(), first))
        st, sm = self.status, self.summary
        st.windows_total += 1
        sm.windows_total += 1
        if r.score is not None:
            a = self.cfg.alpha
            self._smoothed = r.score if self._smoothed is None else (
                self._smoothed + a * (r.score - self._smoothed))
            st.windows_scored += 1
            sm.windows_scored += 1
            sm.score_sum += r.score
            st.latency_ms = r.latency_ms
            if r.label == NEGATIVE:
                st.negative_windows += 1
                sm.negative_windows += 1
        sm.final_smoothed = self._smoothed
        end_s = base + s1
        st.scores.append((end_s, r.score, self._smoothed))
        del st.scores[:-TREND_POINTS]
        w = LiveWindow(
            time_utc=utc_text(self.clock.utc(end_s)),
            offset_s=end_s, result=r, smoothed=self._smoothed, model_id=self.scorer.model_id,
        )
        for s in self.sinks:
            s.on_window(w, st)

    def _drain(self, last: bool = False) -> None:
        """Everything waiting in the ring, segment by segment: audio before a hole is analysed
        with its own time, then the hole moves the stream clock and a new segment starts."""
        ring = self.source.ring
        while True:
            x = ring.read()
            if x.shape[0]:
                self._take(x)
            ring_n, driver_n = ring.take_hole()
            if not (ring_n or driver_n):
                break
            self._hole(ring_n, driver_n)
        if last:
            self._process(np.zeros(0, np.float32), last=True)

    def _take(self, x: np.ndarray) -> None:
        if self._lost is not None:
            self._back(x.shape[0])
        newest = (self._read_end() + x.shape[0] * SAMPLE_RATE / self._rate) / SAMPLE_RATE
        obs = self.clock.observe(newest, self._now(), time.monotonic(), paced=self.source.paced)
        if obs.missing_s:
            # Audio went missing unreported (the stream fell behind the monotonic clock): account
            # for it here, before this chunk, which arrived after it.
            self._process(np.zeros(0, np.float32), last=True)
            at = self._read_end()
            self._emit(AudioDropped(at / SAMPLE_RATE, obs.missing_s, "clock"))
            self._missing_s += obs.missing_s
            self._reset_segment(at + int(round(obs.missing_s * SAMPLE_RATE)))
            newest += obs.missing_s
        if obs.step_s:
            self.status.clock_steps += 1
            self.summary.clock_steps += 1
            self._emit(ClockStep(newest, obs.step_s, utc_text(self.clock.utc(newest))))
        self._read_in += x.shape[0]
        self._meter(x)
        self._process(x)

    def _process(self, x: np.ndarray, last: bool = False) -> None:
        if self._resampler is None or (x.shape[0] == 0 and not last):
            return
        y = self._resampler.process(x, last=last)
        if self.cfg.duration_s is not None and self.source.timed_by_stream:
            # --fast drains seconds at a time: stop exactly at --duration of audio
            room = int(round(self.cfg.duration_s * SAMPLE_RATE)) - (self._origin + self._pushed)
            y = y[: max(room, 0)]
        if self._record is None:
            self._feed(y)
            return
        # A second at a time, recorded before it is analysed: if the disk fills, every logged
        # window lies inside the recording (--fast reads up to the ring's 10 s at once).
        for i in range(0, y.shape[0], SAMPLE_RATE):
            self._write_record(y[i : i + SAMPLE_RATE])
            self._feed(y[i : i + SAMPLE_RATE])

    def _write_record(self, y: np.ndarray) -> None:
        import soundfile as sf

        try:
            self._record.write(y)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            path = self.cfg.record_path
            why = "disk full" if _disk_full(path) else (str(e).splitlines() or ["write error"])[0]
            raise SpecmonError(f"{path}: cannot write the recording ({why}); stopped after "
                               f"{self.offset_s:.1f} s") from None

    def _hole(self, ring_n: int, driver_n: int) -> None:
        """Samples went missing after what was read so far (a full ring, a driver overrun)."""
        self._process(np.zeros(0, np.float32), last=True)  # the audio before it, to its last sample
        at = self._read_end()
        for n, cause in ((ring_n, "ring"), (driver_n, "driver")):
            if n:
                self._emit(AudioDropped(at / SAMPLE_RATE, n / self._rate, cause))
        self._reset_segment(at + int(round((ring_n + driver_n) * SAMPLE_RATE / self._rate)))

    def _meter(self, x: np.ndarray) -> None:
        tail = x[-max(1, self._rate // 10):]  # ~100 ms
        ms = float(np.mean(np.square(tail, dtype=np.float64)))
        self.status.level_dbfs = 10.0 * np.log10(max(ms * 2.0, 1e-12))
        now = time.monotonic()
        if max(float(x.max()), -float(x.min())) >= 0.999:  # the peak, without |x|'s temporary
            self._clip_until = now + 1.0
        self.status.clipping = now < self._clip_until

    # -- device loss -------------------------------------------------------------------------------
    def _lose(self, why: str) -> None:
        """The device stopped: analyse what it delivered, then remember where and when it ended."""
        try:
            self._drain()
        except AttributeError:  # no ring (the stream never opened)
            pass
        if self._lost is None:
            self._process(np.zeros(0, np.float32), last=True)
            at = self._read_end()
            last = getattr(self.source, "last_data", None) or time.monotonic()
            self._lost = (at, last)
            self._emit(DeviceLost(at / SAMPLE_RATE, why))
            self._reset_segment(at)

    def _back(self, n_first: int) -> None:
        """Audio flows again: the gap runs from the old stream's last sample to this first one
        (the silence timeout, the retries, and any start-up delay included)."""
        at, last = self._lost
        first = time.monotonic() - n_first / max(self._rate, 1)
        gap = max(0.0, first - last)
        self._lost = None
        self._origin = at + int(round(gap * SAMPLE_RATE))  # nothing pushed yet in this segment
        self.summary.gaps.append((at / SAMPLE_RATE, gap))
        self._emit(DeviceBack(at / SAMPLE_RATE, gap))

    def _reconnect(self, why: str, t0: float, proc) -> bool:
        """Retry the device with exponential backoff; True once it is open again (the gap is
        measured when its first audio arrives)."""
        self.source.close()
        delay = 1.0
        while not self._stop.is_set():
            self._emit(DeviceRetry(why, delay))
            self._wait(delay, t0, proc)
            if self._stop.is_set():
                break
            try:
                self.source.open()
            except SpecmonError as e:
                why = str(e).split(";")[0]
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            self._reset_segment(self._lost[0] if self._lost else self._read_end())
            self.status.sample_rate = self.source.rate
            return True
        return False

    # -- control -----------------------------------------------------------------------------------
    def _reopen_sinks(self) -> None:
        """SIGHUP: between two windows, so no row is split between the old file and the new."""
        if not self._reopen.is_set():
            return
        self._reopen.clear()
        for s in self.sinks:
            reopen = getattr(s, "reopen", None)
            if reopen is not None:
                reopen()

    def _account(self) -> None:
        st = self.status
        st.dropped_s = float(self.source.dropped_s) + self._missing_s
        st.overflows = int(self.source.overflows)
        rate = self.source.rate or SAMPLE_RATE
        st.dropped_samples = int(np.ceil(st.dropped_s * rate - 1e-9)) if st.dropped_s > 0 else 0

    def _tick(self, t0: float, proc) -> None:
        st = self.status
        st.elapsed_s = time.monotonic() - t0
        self._account()
        if proc is not None and self.cfg.live_view:
            st.cpu_percent = proc.cpu_percent(interval=None)
        if self._rolling.columns_total and self.cfg.live_view:
            st.spectrogram = self._rolling.window()
        for s in self.sinks:
            s.on_tick(st)
        if self.cfg.heartbeat is not None:
            self.cfg.heartbeat()

    def _wait(self, seconds: float, t0: float, proc) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < end:
            self._reopen_sinks()
            self._check_duration(t0)
            self._tick(t0, proc)
            self._stop.wait(min(self.cfg.tick_s, max(0.0, end - time.monotonic())))

    def _check_duration(self, t0: float) -> None:
        d = self.cfg.duration_s
        if d is None:
            return
        # A file is timed by its stream clock (so --fast works); a microphone by the wall clock.
        elapsed = self.offset_s if self.source.timed_by_stream else time.monotonic() - t0
        if elapsed >= d:
            self.stop(f"--duration {d:g} s reached")

    def _tick_slack(self) -> float:
        """How far a status tick may move to share a wake-up with a window (half a period); none
        when the loop does not sleep (--fast)."""
        return TICK_SLACK * self.cfg.tick_s if self.source.paced else 0.0

    def _idle_s(self, next_tick: float, t0: float) -> float:
        """Sleep until the next window's last sample is due, or the next status tick: waking
        50 times a second for nothing was most of the headless CPU cost. A tick due a little
        before the window waits for it (and one due a little after is taken early, in run()), so
        at a 1-s tick and stride the loop wakes once a second, not twice."""
        due = (N_FFT + (self._next_end - 1) * HOP - self._pushed) / SAMPLE_RATE
        now = time.monotonic()
        tick = next_tick - now
        wake = due if due <= tick + self._tick_slack() else tick
        d = self.cfg.duration_s
        if d is not None and not self.source.timed_by_stream:  # a wall-clock --duration: on time
            wake = min(wake, t0 + d - now)
        return max(LOOP_SLEEP_S, wake)

    def run(self) -> Summary:
        """Capture until stopped, the duration is reached, or the input file ends."""
        try:
            import psutil

            proc = psutil.Process()
            proc.cpu_percent(interval=None)
        except ImportError:  # pragma: no cover - psutil is a dependency
            proc = None
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig, name in ((signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")):
                handlers[sig] = signal.signal(sig, lambda *_a, _n=name: self.stop(_n))
            handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_a: self._reopen.set())
        if self.cfg.record_path is not None:
            import soundfile as sf

            # 32-bit float where the format allows it (WAV): the recording is then exactly the
            # audio that was scored, so `specmon score` on it reproduces the live scores.
            fmt = self.cfg.record_path.suffix[1:].upper()
            subtype = "FLOAT" if sf.check_format(fmt, "FLOAT") else None
            try:
                self._record = sf.SoundFile(str(self.cfg.record_path), "w", SAMPLE_RATE, 1,
                                            subtype=subtype)
            except (sf.LibsndfileError, RuntimeError, OSError) as e:
                raise SpecmonError(f"{self.cfg.record_path}: cannot write the recording ({e})"
                                   ) from None
        t0 = time.monotonic()
        next_tick = t0
        try:
            self.source.open()
            self.started = True
            self._reset_segment(0)
            self.status.sample_rate = self.source.rate
            self.status.device = self.source.name
            while not self._stop.is_set():
                try:
                    self.source.poll()
                except DeviceGone as e:
                    self._lose(str(e))
                    if not self._reconnect(str(e), t0, proc):
                        break
                    continue
                self._drain()
                self._reopen_sinks()
                if self.source.finished() and self.source.ring.available() == 0:
                    self._drain(last=True)
                    self.stop("end of input")
                    break
                self._check_duration(t0)
                now = time.monotonic()
                if now >= next_tick - self._tick_slack():  # see _idle_s
                    self._tick(t0, proc)
                    next_tick = now + self.cfg.tick_s
                if self.source.paced and self.source.ring.available() == 0:
                    self._stop.wait(self._idle_s(next_tick, t0))
        finally:
            for sig, h in handlers.items():
                signal.signal(sig, h)
            self.source.close()
            if self._record is not None:
                try:
                    self._record.close()  # rewrites the header: the file stays readable
                except (RuntimeError, OSError):
                    pass
            self.summary.duration_s = self.offset_s
            if self._lost is not None:  # stopped while the device was away: the gap so far
                at, last = self._lost
                gap = max(0.0, time.monotonic() - last)
                self.summary.gaps.append((at / SAMPLE_RATE, gap))
                self.summary.duration_s = at / SAMPLE_RATE + gap
            self._account()
            self.summary.dropped_s = self.status.dropped_s
            self.summary.overflows = self.status.overflows
            self.status.elapsed_s = time.monotonic() - t0
            errors = []
            for s in self.sinks if self.started else []:
                try:
                    s.close(self.status)
                except SpecmonError as e:
                    errors.append(e)
            if errors:
                raise errors[0]
        return self.summary
