"""Streaming resampling of the capture stream to 16 kHz (soxr.ResampleStream, HQ)."""

from __future__ import annotations

import numpy as np
import soxr

from monitor.features import SAMPLE_RATE


class Resampler:
    """Chunk in at in_rate, chunk out at 16 kHz; a pass-through when the rates already agree.

    HQ, as monitor.audio.AudioReader (offline scoring) resamples with its own streaming soxr, so a
    44.1/48 kHz microphone yields the same spectra as the same audio scored from a file, up to the
    filter's edge effects.
    """

    def __init__(self, in_rate: int, out_rate: int = SAMPLE_RATE) -> None:
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._stream = (
            None
            if self.in_rate == self.out_rate
            else soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ")
        )

    @property
    def passthrough(self) -> bool:
        return self._stream is None

    def process(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next chunk; last=True flushes the filter's delay line."""
        x = np.asarray(x, np.float32)
        if self._stream is None:
            return x
        return np.asarray(self._stream.resample_chunk(x, last=last), np.float32)
