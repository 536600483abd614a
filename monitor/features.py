"""The one feature code path: log-power STFT (batch and rolling), window scheduling, normalization.

Training, offline scoring and live listening all call these functions, so a model sees the same
numbers whichever way the audio reached it.

Conventions (recorded in every model's sidecar and checked at load time):
- 16 kHz mono float32 in [-1, 1];
- frame i covers samples [i*HOP, i*HOP + N_FFT): no centring, no padding;
- periodic Hamming window (scipy.signal.get_window("hamming", 1024));
- column = 10*log10(|rfft(frame*window)|^2 + 1e-10): 513 bins, 0-8 kHz;
- a window is WINDOW_FRAMES = 125 consecutive columns (64 512 samples, 4.03 s);
- per-window normalization: clamp to DYN_RANGE_DB below the window's maximum, then zero mean and
  unit variance over the window. It removes overall gain and the recording's noise floor depth.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numba as nb
import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 1024
HOP = 512
N_BINS = N_FFT // 2 + 1  # 513
WINDOW_FRAMES = 125
WINDOW_SAMPLES = N_FFT + (WINDOW_FRAMES - 1) * HOP  # 64 512
POWER_FLOOR = 1e-10
DYN_RANGE_DB = 80.0
PARALLEL_MIN_FRAMES = 1000  # ~32 s of audio


@dataclass(frozen=True)
class FeatureParams:
    """What a model was trained on; compared field by field with a model's sidecar."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop: int = HOP
    window: str = "hamming-periodic"
    n_bins: int = N_BINS
    window_frames: int = WINDOW_FRAMES
    scaling: str = "10*log10(|X|^2 + 1e-10)"
    normalization: str = f"per-window: clamp to max-{DYN_RANGE_DB:g} dB, then z-score"
    short_clip: str = "loop (tile) to one window"

    def to_dict(self) -> dict:
        return asdict(self)


FEATURES = FeatureParams()


def hamming(n: int = N_FFT) -> np.ndarray:
    """Periodic Hamming window, identical to scipy.signal.get_window('hamming', n)."""
    k = np.arange(n)
    return (0.54 - 0.46 * np.cos(2.0 * np.pi * k / n)).astype(np.float64)


def _fft_tables(n_complex: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bit-reversal permutation, per-stage twiddles (contiguous, stage after stage) for an n-point
    radix-2 FFT, and the post-twiddles that turn it into a 2n-point real FFT."""
    bits = int(math.log2(n_complex))
    rev = np.array([int(f"{i:0{bits}b}"[::-1], 2) for i in range(n_complex)], dtype=np.int64)
    stages = [np.exp(-2j * np.pi * np.arange(size // 2) / size)
              for size in (2 ** k for k in range(2, bits + 1))]
    tw = np.concatenate(stages) if stages else np.zeros(0, np.complex128)
    post = np.exp(-2j * np.pi * np.arange(n_complex + 1) / (2 * n_complex))
    return rev, tw.astype(np.complex128), post.astype(np.complex128)


_REV, _TW, _POST = _fft_tables(N_FFT // 2)
_WIN = hamming()


@nb.njit(cache=True, nogil=True)
def _frame_power(x, start, win, rev, tw, post, z, out):
    """One frame: window, real FFT via a half-size complex FFT, |X|^2 + POWER_FLOOR into out.

    Returns the frame's mean square (of the unwindowed samples), used by the voice gate.
    The logarithm is left to numpy, whose SIMD log10 is several times faster than a scalar loop.
    """
    half = rev.shape[0]
    energy = 0.0
    for n in range(half):
        a = x[start + 2 * n]
        b = x[start + 2 * n + 1]
        energy += a * a + b * b
        z[rev[n]] = complex(a * win[2 * n], b * win[2 * n + 1])
    for s in range(0, half, 2):  # first stage: twiddle 1, no multiplications
        u = z[s]
        v = z[s + 1]
        z[s] = u + v
        z[s + 1] = u - v
    size = 4
    off = 0
    while size <= half:
        h = size // 2
        for s in range(0, half, size):
            for j in range(h):
                t = tw[off + j] * z[s + j + h]
                u = z[s + j]
                z[s + j] = u + t
                z[s + j + h] = u - t
        off += h
        size *= 2
    # Split the packed spectrum: X[k] = E[k] + W^k O[k]; X[0] and X[half] are real.
    z0 = z[0]
    out[0] = (z0.real + z0.imag) ** 2 + 1e-10
    out[half] = (z0.real - z0.imag) ** 2 + 1e-10
    for k in range(1, half):
        zk = z[k]
        zc = z[half - k].conjugate()
        e = 0.5 * (zk + zc)
        o = -0.5j * (zk - zc)
        xk = e + post[k] * o
        out[k] = xk.real * xk.real + xk.imag * xk.imag + 1e-10
    return energy / (2 * half)


@nb.njit(cache=True, nogil=True)
def _stft_serial(x, n_frames, hop, win, rev, tw, post):
    spec = np.empty((n_frames, rev.shape[0] + 1), dtype=np.float32)
    level = np.empty(n_frames, dtype=np.float64)
    z = np.empty(rev.shape[0], dtype=np.complex128)
    for i in range(n_frames):
        level[i] = _frame_power(x, i * hop, win, rev, tw, post, z, spec[i])
    return spec, level


@nb.njit(cache=True, nogil=True, parallel=True)
def _stft_parallel(x, n_frames, hop, win, rev, tw, post):
    spec = np.empty((n_frames, rev.shape[0] + 1), dtype=np.float32)
    level = np.empty(n_frames, dtype=np.float64)
    n_chunks = 8  # a few chunks per core; each gets its own scratch buffer
    for c in nb.prange(n_chunks):
        z = np.empty(rev.shape[0], dtype=np.complex128)
        for i in range(c * n_frames // n_chunks, (c + 1) * n_frames // n_chunks):
            level[i] = _frame_power(x, i * hop, win, rev, tw, post, z, spec[i])
    return spec, level


def _to_db(power: np.ndarray) -> np.ndarray:
    """In place: power -> 10*log10(power)."""
    np.log10(power, out=power)
    power *= np.float32(10.0)
    return power


def n_frames_for(n_samples: int) -> int:
    """Number of whole frames in a signal of n_samples."""
    return 0 if n_samples < N_FFT else 1 + (n_samples - N_FFT) // HOP


def stft_logpower(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole signal -> (log-power spectrogram 513 x N float32, frame level in dBFS, length N)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = n_frames_for(x.shape[0])
    if n == 0:
        return np.zeros((N_BINS, 0), np.float32), np.zeros(0, np.float32)
    # Threads pay off only for long signals; one window is done faster on the calling thread.
    kernel = _stft_parallel if n >= PARALLEL_MIN_FRAMES else _stft_serial
    spec, ms = kernel(x, n, HOP, _WIN, _REV, _TW, _POST)
    return _to_db(spec).T, _to_dbfs(ms)


def _to_dbfs(mean_square):
    # Full-scale sine = 0 dBFS: RMS of 1/sqrt(2) -> mean square 0.5.
    return (10.0 * np.log10(np.maximum(mean_square, 1e-12) * 2.0)).astype(np.float32)


class RollingSTFT:
    """Keeps the newest WINDOW_FRAMES columns; each HOP new samples add one column, nothing is redone.

    push() accepts any number of samples; columns are computed as soon as a frame is complete.
    """

    def __init__(self, frames: int = WINDOW_FRAMES) -> None:
        self.frames = frames
        self._spec = np.zeros((frames, N_BINS), np.float32)  # ring of columns, row = column
        self._level = np.full(frames, -120.0, np.float32)
        self._head = 0  # next ring slot to write
        self._buf = np.zeros(4 * N_FFT, np.float64)  # samples not yet in a complete frame ...
        self._fill = 0  # ... are self._buf[:self._fill]
        self._z = np.empty(N_FFT // 2, np.complex128)
        self.columns_total = 0  # columns ever produced

    def push(self, samples: np.ndarray) -> int:
        """Add samples; returns how many new columns were produced."""
        end = self._fill + len(samples)
        if end > self._buf.shape[0]:
            self._buf = np.concatenate((self._buf[: self._fill], np.zeros(end, np.float64)))
        buf = self._buf
        buf[self._fill : end] = samples
        n = n_frames_for(end)
        for i in range(n):
            row = self._spec[self._head]
            ms = _frame_power(buf, i * HOP, _WIN, _REV, _TW, _POST, self._z, row)
            _to_db(row)
            self._level[self._head] = 10.0 * math.log10(max(ms * 2.0, 1e-12))  # as _to_dbfs
            self._head = (self._head + 1) % self.frames
        if n:
            rest = end - n * HOP
            buf[:rest] = buf[n * HOP : end]  # numpy copes with the overlap
            end = rest
        self._fill = end
        self.columns_total += n
        return n

    def ready(self) -> bool:
        return self.columns_total >= self.frames

    def window(self) -> np.ndarray:
        """The newest columns, oldest first: 513 x frames float32 (a copy)."""
        return np.roll(self._spec, -self._head, axis=0).T.copy()

    def levels(self) -> np.ndarray:
        """Frame levels in dBFS for the columns of window(), oldest first."""
        return np.roll(self._level, -self._head).copy()


def loop_to_window(x: np.ndarray) -> np.ndarray:
    """A clip shorter than one window is tiled (looped) to exactly one window.

    Tiling repeats the speaker's own speech, as the recipe's joining of a speaker's clips of one class
    does; zero padding would instead feed the model silence it never hears in a live window.
    """
    if x.shape[0] >= WINDOW_SAMPLES or x.shape[0] == 0:
        return x
    reps = -(-WINDOW_SAMPLES // x.shape[0])
    return np.tile(x, reps)[:WINDOW_SAMPLES]


def stride_hops(stride_s: float) -> int:
    """A stride in seconds as a whole number of hops (1 s -> 31 hops = 0.992 s)."""
    return max(1, int(round(stride_s * SAMPLE_RATE / HOP)))


def window_ends(n_frames: int, stride: int) -> range:
    """End column (exclusive) of each scheduled window; live and offline use the same schedule."""
    return range(WINDOW_FRAMES, n_frames + 1, stride)


def window_span_s(end_col: int) -> tuple[float, float]:
    """Start and end time (s) of the samples covered by the window ending at column end_col."""
    start = (end_col - WINDOW_FRAMES) * HOP
    end = (end_col - 1) * HOP + N_FFT
    return start / SAMPLE_RATE, end / SAMPLE_RATE


def normalize(window: np.ndarray) -> np.ndarray:
    """Per-window normalization of a 513 x frames log-power window (see module docstring)."""
    w = np.maximum(window, np.float32(window.max() - DYN_RANGE_DB), dtype=np.float32)
    # float64 sums: a float32 sum depends on memory layout, and the live (rolling) and offline
    # (sliced) windows are laid out differently; their scores must agree exactly.
    mu = w.mean(dtype=np.float64)
    sd = w.std(dtype=np.float64)
    w -= np.float32(mu)  # in place: this runs for every scored window
    w *= np.float32(1.0 / (sd if sd > 1e-6 else 1.0))
    return w


def voiced_fraction(levels_dbfs: np.ndarray, floor_dbfs: float) -> float:
    """Share of frames whose level is at or above floor_dbfs (the voice gate's measure)."""
    if levels_dbfs.size == 0:
        return 0.0
    return float(np.mean(levels_dbfs >= floor_dbfs))
