"""What the live pipeline hands to its sinks (CSV log, dashboard, plain printer)."""

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
    latency_ms: float = 0.0  # last inference latency
    cpu_percent: float = 0.0  # this process, share of one core
    level_dbfs: float = -120.0  # input level over the last ~100 ms
    clipping: bool = False  # samples at full scale seen recently
    elapsed_s: float = 0.0
    scores: list[tuple[float, float | None, float | None]] = field(default_factory=list)
    # ^ recent (offset_s, score or None for no-speech, smoothed) for the trend
    spectrogram: np.ndarray | None = None  # 513 x k newest log-power columns, oldest first
    message: str = ""  # e.g. "microphone lost, retrying in 2 s"


class Sink(Protocol):
    def on_window(self, w: LiveWindow, status: LiveStatus) -> None: ...

    def on_tick(self, status: LiveStatus) -> None: ...

    def close(self, status: LiveStatus) -> None: ...
