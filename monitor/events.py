"""What the live pipeline hands to its sinks (CSV log, dashboard, plain printer): judged windows,
status ticks, and events (audio lost, device lost/back, clock steps, log repairs). Events are facts
with numbers; the CLI layer words them (monitor.live_cli.describe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from monitor.windows import WindowResult


@dataclass
class LiveWindow:
    """One scheduled window of the live stream, judged."""

    time_utc: str  # ISO-8601 UTC time of the window's end
    offset_s: float  # stream offset (s) of the window's end
    result: WindowResult  # start_s/end_s are stream offsets
    smoothed: float | None  # exponential moving average of scores (None before the first score)
    model_id: str


@dataclass
class LiveStatus:
    """The pipeline's state, refreshed several times a second."""

    device: str
    sample_rate: int  # the device's capture rate
    csv_path: str
    threshold: float
    windows_scored: int = 0
    windows_total: int = 0
    negative_windows: int = 0
    dropped_samples: int = 0  # overflowed ring buffer or device overruns, at capture rate
    dropped_s: float = 0.0  # the same in seconds (exact across reconnects at other rates)
    overflows: int = 0  # input overruns reported by the driver (PortAudio status flags)
    clock_steps: int = 0  # times time_utc was re-anchored to the system clock
    latency_ms: float = 0.0  # last inference latency
    cpu_percent: float = 0.0  # this process, share of one core
    level_dbfs: float = -120.0  # input level over the last ~100 ms
    clipping: bool = False  # samples at full scale seen recently
    elapsed_s: float = 0.0
    scores: list[tuple[float, float | None, float | None]] = field(default_factory=list)
    # ^ recent (offset_s, score or None for no-speech, smoothed) for the trend
    spectrogram: np.ndarray | None = None  # 513 x k newest log-power columns, oldest first
    message: str = ""  # e.g. "microphone lost, retrying in 2 s"


@dataclass
class AudioDropped:
    """Audio missing at stream offset offset_s: the ring buffer was full (cause "ring": the
    pipeline fell behind), the driver reported an overrun (cause "driver"; its size is an estimate),
    or the stream fell behind the monotonic clock unreported (cause "clock": found up to two check
    periods late, so it is placed where it was found)."""

    offset_s: float
    lost_s: float
    cause: str  # "ring" | "driver" | "clock"


@dataclass
class DeviceLost:
    offset_s: float  # stream offset of the last sample received
    reason: str


@dataclass
class DeviceRetry:
    reason: str  # why the last attempt failed (or the loss itself)
    retry_in_s: float


@dataclass
class DeviceWaiting:
    """--wait-device: no input device at start yet; the next look in retry_in_s."""

    reason: str
    retry_in_s: float


@dataclass
class DeviceBack:
    offset_s: float  # where the gap starts
    gap_s: float  # wall-clock time without audio: silence timeout and reconnect included


@dataclass
class ClockStep:
    """time_utc was re-anchored to the system clock (which differed by step_s; positive: the
    system clock is ahead of the stream clock). offset_s is untouched: it stays monotonic."""

    offset_s: float
    step_s: float
    time_utc: str  # the new time of offset_s


@dataclass
class LogRepaired:
    """An existing log ended in a torn row (power cut): it was cut back to its last whole row."""

    path: str
    bytes_cut: int


@dataclass
class LogOpened:
    """--csv-dir: a new day's file was opened (appending if it existed); or, reopened=True, the
    log was reopened on SIGHUP (logrotate)."""

    path: str
    appending: bool
    reopened: bool = False


@dataclass
class LogDeleted:
    """--keep-days: an old day's file was deleted."""

    path: str


Event = (AudioDropped | DeviceLost | DeviceRetry | DeviceWaiting | DeviceBack | ClockStep | LogRepaired
         | LogOpened | LogDeleted)


def dropped_text(seconds: float, overflows: int = 0) -> str:
    """'0.00 s' only when nothing at all was lost; any loss reads as at least 0.01 s."""
    if seconds <= 0 and overflows == 0:
        return "0.00 s"
    text = f"{seconds:.2f} s" if seconds >= 0.005 else "<0.01 s"
    if overflows:
        text += f" (incl. {overflows} driver overrun{'s' if overflows != 1 else ''}, size estimated)"
    return text


class Sink(Protocol):
    """on_event(event, status) is optional: sinks without it do not see events."""

    def on_window(self, w: LiveWindow, status: LiveStatus) -> None: ...

    def on_tick(self, status: LiveStatus) -> None: ...

    def close(self, status: LiveStatus) -> None: ...
