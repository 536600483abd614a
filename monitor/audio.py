"""Reading audio files: any format soundfile reads, any plausible rate and channel count -> 16 kHz
mono float32, block by block.

One code path: `load_audio` (training, evaluation) is the concatenation of `AudioReader.blocks()`
(`specmon score`), so a file's samples are the same whichever way it is read. Channels are averaged
per frame and soxr's streaming resampler (HQ) gives the same samples whatever the block size, and
the same as its one-shot `soxr.resample` (checked in tests/test_stream_score.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from monitor.errors import SpecmonError
from monitor.features import SAMPLE_RATE

# What a real recording can be. A header outside these (a WAV that claims 1 Hz and 64 channels) is
# damaged or not speech audio at all; resampling it would score garbage (or take gigabytes).
MIN_RATE = 8_000  # telephone
MAX_RATE = 384_000  # the highest rate audio interfaces offer
MAX_CHANNELS = 8  # 7.1 surround; a speech recording has 1 or 2
BLOCK_FRAMES = 1 << 16  # frames read at a time (1.4 s at 48 kHz; 2 MB at 8 channels)
QUALITY = "HQ"


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


class AudioReader:
    """An open, plausible audio file: its 16 kHz mono samples come out block by block.

    Opening checks the header (SpecmonError for a missing, unreadable or implausible file);
    `warnings` lists what the user should know but does not stop scoring (telephone-band audio).
    Use as a context manager, or call close().
    """

    def __init__(self, path: str | Path) -> None:
        p = self.path = Path(path)
        if not p.exists():
            raise SpecmonError(f"{p}: no such file")
        if p.is_dir():
            raise SpecmonError(f"{p}: is a directory, not an audio file")
        try:
            self._f = sf.SoundFile(str(p))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as e:
            raise SpecmonError(f"{p}: not a readable audio file ({_first_line(e)})") from None
        self.rate = int(self._f.samplerate)
        self.channels = int(self._f.channels)
        self.warnings: list[str] = []
        if not MIN_RATE <= self.rate <= MAX_RATE or not 1 <= self.channels <= MAX_CHANNELS:
            self._f.close()
            raise SpecmonError(
                f"{p}: implausible audio header ({self.rate} Hz, {self.channels} channel(s)); "
                f"expected {MIN_RATE // 1000}-{MAX_RATE // 1000} kHz and 1-{MAX_CHANNELS} channels"
            )
        if self.rate < SAMPLE_RATE:
            self.warnings.append(
                f"{p}: {self.rate} Hz audio has nothing above {self.rate / 2000:g} kHz, so the top "
                f"of the 0-8 kHz band the model listens to is empty (as in telephone audio); "
                "scores are less reliable"
            )
        self.samples_out = 0  # 16 kHz samples produced so far

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def blocks(self, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """16 kHz mono float32 blocks of the whole file (the last one flushes the resampler).

        SpecmonError for a decoding error, non-finite samples or a file without samples."""
        p = self.path
        stream = None
        if self.rate != SAMPLE_RATE:
            stream = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality=QUALITY)
        frames_in = 0
        while True:
            try:
                data = self._f.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as e:
                raise SpecmonError(
                    f"{p}: cannot decode after {frames_in / self.rate:.1f} s ({_first_line(e)})"
                ) from None
            last = data.shape[0] < block_frames
            frames_in += data.shape[0]
            x = data.mean(axis=1) if self.channels > 1 else data[:, 0]
            if not np.all(np.isfinite(x)):
                raise SpecmonError(f"{p}: contains non-finite samples")
            if stream is not None:
                x = np.asarray(stream.resample_chunk(x, last=last), np.float32)
            if last and frames_in == 0:
                raise SpecmonError(f"{p}: contains no audio samples")
            self.samples_out += x.shape[0]
            if x.shape[0]:
                yield np.ascontiguousarray(x, dtype=np.float32)
            if last:
                return


def load_audio(path: str | Path) -> np.ndarray:
    """A whole file as 16 kHz mono float32; SpecmonError for missing, unreadable, implausible or
    empty files."""
    with AudioReader(path) as r:
        parts = list(r.blocks())
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
