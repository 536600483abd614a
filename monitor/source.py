"""Where samples come from: a microphone (pyaudio callback) or a file replayed at its own rate.

Both fill a RingBuffer at their native rate; the pipeline reads, resamples and analyses the same
way whatever the source, which is what makes `--input FILE` a faithful test of the live path.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf

from monitor.audio import AudioReader
from monitor.devices import choose_rate, open_pyaudio, quiet_stderr, resolve_device, supported
from monitor.errors import SpecmonError
from monitor.ringbuffer import RingBuffer

RING_SECONDS = 10.0  # headroom for a stalled consumer (e.g. a slow first inference)
FRAMES_PER_BUFFER = 1024
STARTUP_GRACE_S = 5.0  # sound servers can take a couple of seconds to deliver the first buffer
SILENT_TIMEOUT_S = 2.0  # no callback for this long after data flowed = device lost


class DeviceLost(Exception):
    """The capture stream stopped delivering audio (unplugged device, sound server gone)."""


class MicSource:
    """A PortAudio input stream whose callback only copies into the ring buffer."""

    timed_by_stream = False  # --duration counts wall-clock time
    paced = True  # audio arrives in real time: the loop sleeps when the ring is empty

    def __init__(self, device: str | int | None = None, rate: int | None = None) -> None:
        self.device = device
        self.wanted_rate = rate
        self.name = "?"
        self.rate = 0
        self.ring: RingBuffer | None = None
        self.overflows = 0  # callbacks flagged with paInputOverflow (samples lost in the driver)
        self._pa = None
        self._stream = None
        self._channels = 1
        self._scratch = np.zeros(0, np.float32)
        self._opened_at = 0.0
        self._last_data = 0.0
        self._got_data = False
        self._dropped_before_s = 0.0  # audio lost in earlier (closed) streams, seconds
        self._prev_adc = 0.0  # PortAudio's capture time of the previous callback's first frame
        self._prev_frames = 0

    @property
    def dropped_s(self) -> float:
        """Audio lost so far: ring-buffer overflows and (estimated) driver overruns, seconds."""
        now = (self.ring.dropped + self.ring.lost) / self.rate if self.ring and self.rate else 0.0
        return self._dropped_before_s + now

    @property
    def last_data(self) -> float:
        """Monotonic time of the last callback that brought audio (0.0 if none yet)."""
        return self._last_data if self._got_data else 0.0

    def open(self) -> None:
        """Open and start the stream; SpecmonError if there is no usable device."""
        import pyaudio

        self.close()
        self._pa = open_pyaudio()
        try:
            dev = resolve_device(self._pa, self.device)
            rate = choose_rate(
                lambda r: supported(self._pa, dev.index, r), dev.default_rate, self.wanted_rate
            )
            mono = supported(self._pa, dev.index, rate, 1)
            channels = 1 if mono else min(2, dev.max_input_channels)
            self.name, self.rate, self._channels = dev.name, rate, channels
            self.ring = RingBuffer(int(RING_SECONDS * rate))
            # Pre-allocated so the callback's stereo mixdown allocates nothing.
            self._scratch = np.zeros(FRAMES_PER_BUFFER * 8, np.float32)
            self._got_data = False
            self._prev_adc, self._prev_frames = 0.0, 0
            self._opened_at = self._last_data = time.monotonic()
            with quiet_stderr():
                self._stream = self._pa.open(
                    format=pyaudio.paFloat32, channels=channels, rate=rate, input=True,
                    input_device_index=dev.index, frames_per_buffer=FRAMES_PER_BUFFER,
                    stream_callback=self._callback,
                )
                self._stream.start_stream()
        except SpecmonError:
            self.close()
            raise
        except (OSError, ValueError) as e:
            self.close()
            raise SpecmonError(f"cannot open input device {self.name!r} ({e})") from None

    def _callback(self, in_data, frame_count, time_info, status):
        # Runs on PortAudio's thread: no locks, no I/O, no logging; just copy into the ring.
        import pyaudio

        adc = float(time_info.get("input_buffer_adc_time", 0.0)) if time_info else 0.0
        if status & pyaudio.paInputOverflow:
            # The driver discarded input before this buffer: a hole at the write position. Its size
            # from the capture timestamps where the host API provides them, else one buffer (the
            # least it can be).
            self.overflows += 1
            lost = frame_count
            if adc > 0.0 and self._prev_adc > 0.0:
                lost = max(lost, int(round((adc - self._prev_adc) * self.rate)) - self._prev_frames)
            self.ring.mark_hole(lost)
        self._prev_adc, self._prev_frames = adc, frame_count
        if in_data is not None:
            x = np.frombuffer(in_data, np.float32)
            if self._channels > 1:
                n = x.shape[0] // self._channels
                if n <= self._scratch.shape[0]:
                    m = self._scratch[:n]
                    np.mean(x[: n * self._channels].reshape(n, self._channels), axis=1, out=m)
                    x = m
                else:
                    x = x[: n * self._channels].reshape(n, self._channels).mean(axis=1)
            self.ring.write(x)
            self._got_data = True
            self._last_data = time.monotonic()
        return (None, pyaudio.paContinue)

    def poll(self) -> None:
        """Raise DeviceLost if the stream died or went silent (a working device never goes quiet:
        silence still arrives as zero samples)."""
        if self._stream is None:
            raise DeviceLost("no stream")
        try:
            active = self._stream.is_active()
        except OSError as e:
            raise DeviceLost(str(e)) from None
        if not active:
            raise DeviceLost("audio stream stopped")
        now = time.monotonic()
        if self._got_data and now - self._last_data > SILENT_TIMEOUT_S:
            raise DeviceLost(f"no audio for {now - self._last_data:.0f} s")
        if not self._got_data and now - self._opened_at > STARTUP_GRACE_S:
            raise DeviceLost(f"no audio within {STARTUP_GRACE_S:.0f} s of opening")

    def finished(self) -> bool:
        return False

    def close(self) -> None:
        if self._stream is not None:
            try:
                with quiet_stderr():
                    self._stream.stop_stream()
                    self._stream.close()
            except OSError:
                pass
            self._stream = None
        if self.ring is not None and self.rate:  # the callback has stopped: count its losses
            self._dropped_before_s += (self.ring.dropped + self.ring.lost) / self.rate
            self.ring.dropped = self.ring.lost = 0
        if self._pa is not None:
            with quiet_stderr():
                self._pa.terminate()
            self._pa = None


class FileSource:
    """Replays an audio file (mixed to mono, at the file's own rate) into a ring buffer.

    realtime=True paces the file at its duration; realtime=False fills the ring as fast as the
    pipeline drains it. Replay never drops samples: it waits for room instead.
    """

    BLOCK = 4096
    timed_by_stream = True  # --duration counts audio seconds, so --fast honours it too

    def __init__(self, path: str | Path, realtime: bool = True) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.paced = realtime
        # The header checks of `specmon score` (same limits, same one-line errors): an implausible
        # rate or channel count is refused; below 16 kHz a warning for the caller to show.
        with AudioReader(self.path) as reader:
            self.warnings = list(reader.warnings)
        try:
            self._sf = sf.SoundFile(str(self.path))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SpecmonError(f"{self.path}: not a readable audio file ({msg})") from None
        if self._sf.frames == 0:
            raise SpecmonError(f"{self.path}: contains no audio samples")
        self.name = f"file:{self.path.name}"
        self.rate = int(self._sf.samplerate)
        self.ring: RingBuffer | None = None
        self.overflows = 0
        self._pos = 0  # samples handed to the ring
        self._eof = False
        self._t0 = 0.0
        self._pending = np.zeros(0, np.float32)

    @property
    def dropped_s(self) -> float:
        r = self.ring
        return (r.dropped + r.lost) / self.rate if r is not None else 0.0

    def open(self) -> None:
        self.ring = RingBuffer(int(RING_SECONDS * self.rate))
        self._t0 = time.monotonic()

    def _next_block(self, n: int) -> np.ndarray:
        if self._pending.shape[0] == 0 and not self._eof:
            # All that is due in one read (a paced replay polls once a stride); a mono file's
            # samples as read, without a copy (the ring copies them).
            data = self._sf.read(max(n, self.BLOCK), dtype="float32", always_2d=False)
            if data.shape[0] == 0:
                self._eof = True
            else:
                self._pending = data.mean(axis=1) if data.ndim > 1 else data
        take, self._pending = self._pending[:n], self._pending[n:]
        return take

    def poll(self) -> None:
        """Move the samples that are due (all that fit, with --fast) into the ring."""
        room = self.ring.free()
        if self.realtime:
            due = int((time.monotonic() - self._t0) * self.rate) - self._pos
            room = min(room, due)
        while room > 0 and not (self._eof and self._pending.shape[0] == 0):
            x = self._next_block(room)
            if x.shape[0] == 0:
                continue
            if not np.isfinite(np.sum(x, dtype=np.float64)):  # a NaN or inf anywhere (no temporary)
                raise SpecmonError(f"{self.path}: contains non-finite samples")
            self.ring.write(x)
            self._pos += x.shape[0]
            room -= x.shape[0]

    def finished(self) -> bool:
        """The whole file has gone into the ring (the pipeline drains the rest)."""
        return self._eof and self._pending.shape[0] == 0

    def close(self) -> None:
        self._sf.close()
