"""Pipeline internals without a sound server: dropped audio is reported, never silent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from live_support import model_for_tests

from monitor.events import LiveStatus
from monitor.pipeline import ListenConfig, Pipeline
from monitor.scorer import Scorer
from monitor.source import FileSource


class Recorder:
    def __init__(self) -> None:
        self.windows, self.ticks, self.closed = [], 0, None

    def on_window(self, w, status) -> None:
        self.windows.append(w)

    def on_tick(self, status) -> None:
        self.ticks += 1

    def close(self, status) -> None:
        self.closed = status


class OverflowingSource(FileSource):
    """A file source whose ring is made to overflow, as a stalled consumer would."""

    def poll(self) -> None:
        super().poll()
        self.ring.write(np.zeros(self.ring.free() + 800, np.float32))  # 800 samples dropped


def test_dropped_samples_reported(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    t = np.arange(16000 * 6) / 16000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    src = OverflowingSource(wav, realtime=False)
    status = LiveStatus(device="x", sample_rate=16000, csv_path="", threshold=0.5)
    sink = Recorder()
    pipe = Pipeline(src, Scorer(model_for_tests(tmp_path)), [sink], status,
                    ListenConfig(duration_s=5.0))
    summary = pipe.run()
    assert sink.closed is status and sink.windows
    assert status.dropped_samples > 0 and summary.dropped_s > 0
    assert any(line.startswith("dropped audio: ") and not line.endswith(" 0.00 s")
               for line in summary.lines())
