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


class OneHoleSource(FileSource):
    """Loses one second of audio once, 5 s in, the way an overflowing ring would."""

    hole = 16000

    def poll(self) -> None:
        if not getattr(self, "_holed", False) and self.ring._w >= 5 * 16000:
            self._holed = True
            self._skip_hole()
        super().poll()

    def _skip_hole(self) -> None:
        # Read and throw away one second of the file, counted as dropped by the ring.
        lost = 0
        while lost < self.hole:
            lost += self._next_block(self.hole - lost).shape[0]
        self._pos += lost
        self.ring.dropped += lost


def test_a_hole_starts_a_new_segment_and_keeps_the_clock(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    t = np.arange(16000 * 20) / 16000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    src = OneHoleSource(wav, realtime=False)
    status = LiveStatus(device="x", sample_rate=16000, csv_path="", threshold=0.5)
    sink = Recorder()
    pipe = Pipeline(src, Scorer(model_for_tests(tmp_path)), [sink], status, ListenConfig())
    summary = pipe.run()
    starts = [w.result.start_s for w in sink.windows]
    assert summary.dropped_s == 1.0
    # No window spans the hole: after it, the next window starts at or after the hole's end ...
    jumps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert max(jumps) > 4.0
    # ... and the stream clock still ends at the file's length (the lost second is counted).
    assert abs(pipe.offset_s - 20.0) < 0.1
