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


def _fft_tables(n_complex: int):
    """Tables for an n-point radix-2 FFT and its 2n-point real-FFT post-processing, real and
    imaginary parts apart (the kernels keep real and imaginary parts in separate arrays)."""
    bits = int(math.log2(n_complex))
    rev = np.array([int(f"{i:0{bits}b}"[::-1], 2) for i in range(n_complex)], dtype=np.int64)
    # Twiddles of the stages of size 4, 8, ..., n, one stage after another (size 2 needs none).
    tw = np.concatenate([np.exp(-2j * np.pi * np.arange(size // 2) / size)
                         for size in (2**k for k in range(2, bits + 1))])
    post = np.exp(-2j * np.pi * np.arange(n_complex + 1) / (2 * n_complex))
    return (rev, np.ascontiguousarray(tw.real), np.ascontiguousarray(tw.imag),
            np.ascontiguousarray(post.real), np.ascontiguousarray(post.imag))


_TABLES = _fft_tables(N_FFT // 2)
_WIN = hamming()
BATCH_LANES = 32  # frames transformed together by the batch kernels


@nb.njit(cache=True, nogil=True)
def _frames_power(x, first, nf, hop, win, rev, twr, twi, postr, posti, zr, zi, spec, ms):
    """Power spectra |X|^2 + 1e-10 of frames first .. first+nf-1 into spec rows, their mean
    squares into ms.

    The frames go through one radix-2 FFT side by side (zr/zi: half x lanes): every butterfly
    loops over the frames innermost, so the batch path runs on SIMD lanes, and the rolling path
    (one frame, one lane) does exactly the same arithmetic. A 2n-point real FFT comes from an
    n-point complex one (even samples real, odd imaginary). No fastmath: the same rounding in
    every lane keeps live and offline windows bit-identical. The log is left to numpy's SIMD log10.
    """
    half = rev.shape[0]
    lanes = zr.shape[1]
    for b in range(nf):
        ms[first + b] = 0.0
    for n in range(half):
        r = rev[n]
        w0 = win[2 * n]
        w1 = win[2 * n + 1]
        for b in range(nf):
            i = (first + b) * hop + 2 * n
            a = x[i]
            c = x[i + 1]
            ms[first + b] += a * a + c * c
            zr[r, b] = a * w0
            zi[r, b] = c * w1
    for s in range(0, half, 2):  # stage of size 2: twiddle 1
        for b in range(lanes):
            ur = zr[s, b]
            ui = zi[s, b]
            vr = zr[s + 1, b]
            vi = zi[s + 1, b]
            zr[s, b] = ur + vr
            zi[s, b] = ui + vi
            zr[s + 1, b] = ur - vr
            zi[s + 1, b] = ui - vi
    size = 4
    off = 0
    while size <= half:
        h = size // 2
        for s in range(0, half, size):
            for j in range(h):
                wr = twr[off + j]
                wi = twi[off + j]
                p = s + j
                q = p + h
                for b in range(lanes):
                    tr = wr * zr[q, b] - wi * zi[q, b]
                    ti = wr * zi[q, b] + wi * zr[q, b]
                    ur = zr[p, b]
                    ui = zi[p, b]
                    zr[p, b] = ur + tr
                    zi[p, b] = ui + ti
                    zr[q, b] = ur - tr
                    zi[q, b] = ui - ti
        off += h
        size *= 2
    # Unpack: X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[n-k]) / 2, O = -i (Z[k] - conj Z[n-k]) / 2.
    for b in range(nf):
        r0 = zr[0, b]
        i0 = zi[0, b]
        spec[first + b, 0] = (r0 + i0) ** 2 + 1e-10
        spec[first + b, half] = (r0 - i0) ** 2 + 1e-10
        ms[first + b] /= 2 * half
    for k in range(1, half):
        pr = postr[k]
        pi = posti[k]
        for b in range(nf):
            ar = zr[k, b]
            ai = zi[k, b]
            cr = zr[half - k, b]
            ci = -zi[half - k, b]
            er = 0.5 * (ar + cr)
            ei = 0.5 * (ai + ci)
            o_r = 0.5 * (ai - ci)
            o_i = -0.5 * (ar - cr)
            xr = er + pr * o_r - pi * o_i
            xi = ei + pr * o_i + pi * o_r
            spec[first + b, k] = xr * xr + xi * xi + 1e-10


@nb.njit(cache=True, nogil=True)
def fft_half(src, n_src, rev, twr, twi, postr, posti, zr, zi, outr, outi):
    """X[0..half] of the 2*half-point real FFT of src[:n_src], zero-padded to 2*half (real and
    imaginary parts into outr, outi); zr, zi: scratch of half. One signal at a time: the same
    butterflies as _frames_power (no fastmath), so the rolling STFT that uses it is bit-identical
    to the batch one; monitor/prosody.py uses it for autocorrelations."""
    half = rev.shape[0]
    for n in range(half):
        r = rev[n]
        zr[r] = src[2 * n] if 2 * n < n_src else 0.0
        zi[r] = src[2 * n + 1] if 2 * n + 1 < n_src else 0.0
    for s in range(0, half, 2):  # stage of size 2: twiddle 1
        ur = zr[s]
        ui = zi[s]
        vr = zr[s + 1]
        vi = zi[s + 1]
        zr[s] = ur + vr
        zi[s] = ui + vi
        zr[s + 1] = ur - vr
        zi[s + 1] = ui - vi
    size = 4
    off = 0
    while size <= half:
        h = size // 2
        for s in range(0, half, size):
            for j in range(h):
                wr = twr[off + j]
                wi = twi[off + j]
                p = s + j
                q = p + h
                tr = wr * zr[q] - wi * zi[q]
                ti = wr * zi[q] + wi * zr[q]
                ur = zr[p]
                ui = zi[p]
                zr[p] = ur + tr
                zi[p] = ui + ti
                zr[q] = ur - tr
                zi[q] = ui - ti
        off += h
        size *= 2
    outr[0] = zr[0] + zi[0]
    outi[0] = 0.0
    outr[half] = zr[0] - zi[0]
    outi[half] = 0.0
    for k in range(1, half):
        ar = zr[k]
        ai = zi[k]
        cr = zr[half - k]
        ci = -zi[half - k]
        er = 0.5 * (ar + cr)
        ei = 0.5 * (ai + ci)
        o_r = 0.5 * (ai - ci)
        o_i = -0.5 * (ar - cr)
        outr[k] = er + postr[k] * o_r - posti[k] * o_i
        outi[k] = ei + postr[k] * o_i + posti[k] * o_r


@nb.njit(cache=True, nogil=True)
def _ring_push(x, n, hop, win, rev, twr, twi, postr, posti, zr, zi, spec, ms, head):
    """The rolling path: n frames of x into the ring rows head, head+1, ... (wrapping).

    One frame at a time through fft_half, whose loops run over j instead of over frames, which
    vectorizes the long stages; every butterfly is the same expression as in _frames_power (and
    no fastmath), so the results are bit-identical to the batch path.
    """
    half = rev.shape[0]
    rows = spec.shape[0]
    frame = np.empty(2 * half)
    outr = np.empty(half + 1)
    outi = np.empty(half + 1)
    for f in range(n):
        start = f * hop
        acc = 0.0
        for k in range(half):
            a = x[start + 2 * k]
            c = x[start + 2 * k + 1]
            acc += a * a + c * c
            frame[2 * k] = a * win[2 * k]
            frame[2 * k + 1] = c * win[2 * k + 1]
        fft_half(frame, 2 * half, rev, twr, twi, postr, posti, zr, zi, outr, outi)
        row = (head + f) % rows
        ms[row] = acc / (2 * half)
        for k in range(half + 1):
            spec[row, k] = outr[k] * outr[k] + outi[k] * outi[k] + 1e-10


@nb.njit(cache=True, nogil=True)
def _stft_serial(x, n_frames, hop, win, rev, twr, twi, postr, posti, lanes):
    spec = np.empty((n_frames, rev.shape[0] + 1), dtype=np.float32)
    ms = np.empty(n_frames, dtype=np.float64)
    zr = np.empty((rev.shape[0], lanes))
    zi = np.empty((rev.shape[0], lanes))
    for first in range(0, n_frames, lanes):
        nf = min(lanes, n_frames - first)
        _frames_power(x, first, nf, hop, win, rev, twr, twi, postr, posti, zr, zi, spec, ms)
    return spec, ms


@nb.njit(cache=True, nogil=True, parallel=True)
def _stft_parallel(x, n_frames, hop, win, rev, twr, twi, postr, posti, lanes):
    spec = np.empty((n_frames, rev.shape[0] + 1), dtype=np.float32)
    ms = np.empty(n_frames, dtype=np.float64)
    n_blocks = (n_frames + lanes - 1) // lanes
    n_chunks = 4  # a couple of chunks per core; each has its own scratch
    for c in nb.prange(n_chunks):
        zr = np.empty((rev.shape[0], lanes))
        zi = np.empty((rev.shape[0], lanes))
        for blk in range(c * n_blocks // n_chunks, (c + 1) * n_blocks // n_chunks):
            first = blk * lanes
            nf = min(lanes, n_frames - first)
            _frames_power(x, first, nf, hop, win, rev, twr, twi, postr, posti, zr, zi, spec, ms)
    return spec, ms


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
    spec, ms = kernel(x, n, HOP, _WIN, *_TABLES, BATCH_LANES)
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
        self._head = 0  # next ring slot to write
        self._buf = np.zeros(4 * N_FFT, np.float64)  # samples not yet in a complete frame ...
        self._fill = 0  # ... are self._buf[:self._fill]
        self._zr = np.empty(N_FFT // 2)  # FFT scratch
        self._zi = np.empty(N_FFT // 2)
        self._ms = np.zeros(frames)  # ring of frame mean squares (levels() derives dBFS)
        self.columns_total = 0  # columns ever produced

    def push(self, samples: np.ndarray) -> int:
        """Add samples; returns how many new columns were produced."""
        end = self._fill + len(samples)
        if end > self._buf.shape[0]:
            self._buf = np.concatenate((self._buf[: self._fill], np.zeros(end, np.float64)))
        buf = self._buf
        buf[self._fill : end] = samples
        n = n_frames_for(end)
        if n:
            h = self._head
            _ring_push(buf, n, HOP, _WIN, *_TABLES, self._zr, self._zi, self._spec, self._ms, h)
            for i in range(min(n, self.frames)):
                _to_db(self._spec[(h + n - 1 - i) % self.frames])
            self._head = (h + n) % self.frames
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
        return _to_dbfs(np.roll(self._ms, -self._head))  # once per window, not per hop


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
