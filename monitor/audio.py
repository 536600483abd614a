"""Reading audio files: any format soundfile reads, any rate and channel count -> 16 kHz mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from monitor.errors import SpecmonError
from monitor.features import SAMPLE_RATE


def to_mono_16k(x: np.ndarray, rate: int) -> np.ndarray:
    """Average channels (frames x channels or 1-D) and resample to 16 kHz with soxr (HQ)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != SAMPLE_RATE:
        x = soxr.resample(x, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return x


def load_audio(path: str | Path) -> np.ndarray:
    """A whole file as 16 kHz mono float32; SpecmonError for missing, unreadable or empty files."""
    p = Path(path)
    if not p.exists():
        raise SpecmonError(f"{p}: no such file")
    if p.is_dir():
        raise SpecmonError(f"{p}: is a directory, not an audio file")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecmonError(f"{p}: not a readable audio file ({msg})") from None
    if data.shape[0] == 0:
        raise SpecmonError(f"{p}: contains no audio samples")
    x = to_mono_16k(data, rate)
    if not np.all(np.isfinite(x)):
        raise SpecmonError(f"{p}: contains non-finite samples")
    return x
