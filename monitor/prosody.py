"""Prosody of one window from its samples: the pitch contour and the formants the spectrogram blurs.

The 513 x 125 window's 32-ms frames and 15.6-Hz bins cannot follow F0 or place formants; the
feature probe (model/feature_probe.py, model/MODEL_CARD.md) found these, measured on the window's
own samples, the largest gain for the stats head under leave-one-corpus-out. Per 10-ms frame:

- F0 by the normalized autocorrelation of a 40-ms frame (lags for 500-60 Hz), in semitones;
- F1-F3 and their bandwidths from the roots of an order-16 LPC of a pre-emphasized, Hamming-windowed
  25-ms frame centred on it (only for frames that may be voiced).

Frames lie on a grid of the signal's own samples (frame j starts at sample 160 j), and a window
takes the frames wholly inside it, so `listen`, `specmon score` and training compute the same frames
and agree exactly; `WindowProsody` computes each frame once for overlapping windows. The window's
N_PROSODY functionals follow eGeMAPS: F0 mean, spread, percentiles, rising and falling slopes;
formant frequency and bandwidth means and spreads; the voiced share; the loudness contour (each
frame's energy to the power 0.3, relative to the window's loudest frame, so a microphone's gain does
not move it): mean, spread, percentiles, rising and falling slopes; and the rhythm: loudness peaks
and voiced segments per second, and the mean and spread of voiced and unvoiced segment lengths.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from monitor.features import _TABLES, SAMPLE_RATE, WINDOW_SAMPLES, fft_half

HOP = SAMPLE_RATE // 100  # 10 ms
F0_FRAME = 640  # 40 ms: two periods of 60 Hz
LPC_FRAME = 400  # 25 ms
LPC_OFFSET = (F0_FRAME - LPC_FRAME) // 2  # centred on the F0 frame
LPC_ORDER = 16
LAG_MIN, LAG_MAX = SAMPLE_RATE // 500, SAMPLE_RATE // 60  # 500-60 Hz (lags 32-265)
VOICING = 0.45  # normalized autocorrelation above which a frame is periodic
VOICED_RANGE_DB = 30.0  # voiced frames are within this of the window's loudest frame
N_FRAME = 9  # per frame: level dB, periodicity, F0 semitones, F1-F3 Hz, B1-B3 Hz (NaN: none)
NAMES = ([f"f0_{n}" for n in ("mean", "stddevNorm", "p20", "p50", "p80", "range20_80",
                              "rise_mean", "rise_std", "fall_mean", "fall_std")]
         + [f"F{j}_{q}" for j in (1, 2, 3) for q in ("freq_mean", "freq_stddevNorm", "bw_mean",
                                                    "bw_stddevNorm")]
         + ["voiced_share"]
         + [f"loudness_{n}" for n in ("mean", "stddevNorm", "p20", "p50", "p80", "range20_80",
                                      "rise_mean", "rise_std", "fall_mean", "fall_std")]
         + ["loudness_peaks_per_s", "voiced_segments_per_s", "voiced_length_mean", "voiced_length_std",
            "unvoiced_length_mean", "unvoiced_length_std"])
N_PROSODY = len(NAMES)  # 39
_LPC_WIN = np.hamming(LPC_FRAME)  # symmetric, as in the probe


@nb.njit(cache=True, nogil=True)
def _frames(x, starts, lpc_win, rev, twr, twi, postr, posti, out, lpc):
    """Frame values (out rows, N_FRAME) and LPC coefficients (lpc rows, a1..a16; NaN when the frame
    cannot be voiced) of the frames starting at x[starts[i]]. One frame at a time, the same
    arithmetic whichever frames are asked for together."""
    half = rev.shape[0]
    n_fft = 2 * half
    buf = np.zeros(n_fft)
    zr = np.empty(half)
    zi = np.empty(half)
    outr = np.empty(half + 1)
    outi = np.empty(half + 1)
    y = np.empty(LPC_FRAME)
    r = np.empty(LPC_ORDER + 1)
    a = np.empty(LPC_ORDER + 1)
    tmp = np.empty(LPC_ORDER + 1)
    for f in range(starts.shape[0]):
        i = starts[f]
        m = 0.0
        for k in range(F0_FRAME):
            m += x[i + k]
        m /= F0_FRAME
        e = 0.0
        for k in range(F0_FRAME):
            v = x[i + k] - m
            buf[k] = v
            e += v * v
        level = 10.0 * np.log10(e + 1e-12)
        # Autocorrelation by the Wiener-Khinchin theorem: the power spectrum's transform. 1024
        # points hold the 640-sample frame's lags up to 384 without wrapping (we need 265).
        fft_half(buf, F0_FRAME, rev, twr, twi, postr, posti, zr, zi, outr, outi)
        for k in range(half + 1):
            buf[k] = outr[k] * outr[k] + outi[k] * outi[k]
        for k in range(1, half):
            buf[n_fft - k] = buf[k]
        fft_half(buf, n_fft, rev, twr, twi, postr, posti, zr, zi, outr, outi)
        ac0 = outr[0] / n_fft + 1e-12
        best, lag = -np.inf, LAG_MIN
        for k in range(LAG_MIN, LAG_MAX):
            v = (outr[k] / n_fft) / ac0
            if v > best:
                best, lag = v, k
        out[f, 0] = level
        out[f, 1] = best
        out[f, 2] = 12.0 * np.log2(SAMPLE_RATE / lag / 27.5)
        for k in range(3, N_FRAME):
            out[f, k] = np.nan
        for k in range(LPC_ORDER):
            lpc[f, k] = np.nan
        if not (best > VOICING and level > -100.0):
            continue
        j0 = i + LPC_OFFSET
        for k in range(LPC_FRAME):
            y[k] = (x[j0 + k] - 0.97 * x[j0 + k - 1]) * lpc_win[k]  # pre-emphasis
        for lg in range(LPC_ORDER + 1):
            s = 0.0
            for k in range(LPC_FRAME - lg):
                s += y[k] * y[k + lg]
            r[lg] = s
        r[0] = r[0] * 1.0001 + 1e-9  # a little white noise: stable on digital silence
        # Levinson-Durbin
        a[0] = 1.0
        for k in range(1, LPC_ORDER + 1):
            a[k] = 0.0
        err = r[0]
        for p in range(1, LPC_ORDER + 1):
            acc = r[p]
            for j in range(1, p):
                acc += a[j] * r[p - j]
            kk = -acc / err
            for j in range(1, p):
                tmp[j] = a[j] + kk * a[p - j]
            for j in range(1, p):
                a[j] = tmp[j]
            a[p] = kk
            err = err * (1.0 - kk * kk)
        for k in range(LPC_ORDER):
            lpc[f, k] = a[k + 1]


@nb.njit(cache=True, nogil=True)
def _formants(roots, out):
    """F1-F3 and bandwidths (Hz) into out[:, 3:9] from each frame's LPC roots: the lowest three
    resonances between 150 and 5000 Hz narrower than 500 Hz."""
    for f in range(roots.shape[0]):
        fr = np.full(LPC_ORDER, np.inf)
        bw = np.zeros(LPC_ORDER)
        for k in range(LPC_ORDER):
            z = roots[f, k]
            hz = np.arctan2(z.imag, z.real) * SAMPLE_RATE / (2 * np.pi)
            b = -np.log(np.abs(z) + 1e-12) * SAMPLE_RATE / np.pi
            if hz > 150.0 and hz < 5000.0 and b < 500.0:
                fr[k] = hz
                bw[k] = b
        order = np.argsort(fr)
        for j in range(3):
            k = order[j]
            out[f, 3 + j] = fr[k] if np.isfinite(fr[k]) else np.nan
            out[f, 6 + j] = bw[k] if np.isfinite(fr[k]) else np.nan


_COMPANION_SUB = (np.arange(1, LPC_ORDER), np.arange(LPC_ORDER - 1))


def frame_values(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """N_FRAME values of the frames starting at x[starts] (x float64)."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    out = np.empty((len(starts), N_FRAME))
    lpc = np.empty((len(starts), LPC_ORDER))
    if not len(starts):
        return out
    _frames(x, starts, _LPC_WIN, *_TABLES, out, lpc)
    cand = np.flatnonzero(np.isfinite(lpc).all(1))
    if len(cand):
        comp = np.zeros((len(cand), LPC_ORDER, LPC_ORDER))
        comp[:, 0, :] = -lpc[cand]
        comp[:, _COMPANION_SUB[0], _COMPANION_SUB[1]] = 1.0
        # LAPACK one matrix at a time (numpy's gufunc loop): a frame's roots do not depend on
        # which frames come with it.
        try:
            roots = np.linalg.eigvals(comp).astype(np.complex128)
        except np.linalg.LinAlgError:  # one frame that does not converge: it alone has no formants
            roots = np.full((len(cand), LPC_ORDER), np.nan, np.complex128)
            for i, m in enumerate(comp):
                try:
                    roots[i] = np.linalg.eigvals(m)
                except np.linalg.LinAlgError:
                    pass
        sub = np.empty((len(cand), N_FRAME))
        _formants(roots, sub)
        out[cand, 3:] = sub[:, 3:]
    return out


def _mean_spread(v: np.ndarray) -> list[float]:
    v = v[np.isfinite(v)]
    return [float(v.mean()), float(v.std() / (abs(v.mean()) + 1e-9))] if len(v) > 2 else [0.0, 0.0]


def functionals(frames: np.ndarray) -> np.ndarray:
    """N_PROSODY functionals (float32) of one window's frame values (oldest first)."""
    level, per, st = frames[:, 0], frames[:, 1], frames[:, 2].copy()
    # Voiced: within 30 dB of the loudest frame (and not digital silence) and clearly periodic.
    voiced = (level > max(level.max(initial=-np.inf) - VOICED_RANGE_DB, -100.0)) & (per > VOICING)
    if voiced.sum() > 4:  # a 5-frame median over the voiced frames against octave errors
        sv = np.pad(st[voiced], 2, mode="edge")
        st[voiced] = np.median(np.lib.stride_tricks.sliding_window_view(sv, 5), axis=1)
    f0 = [0.0] * 10
    fv = st[voiced]
    if len(fv) > 4:
        d = np.diff(st)[voiced[1:] & voiced[:-1]] * (SAMPLE_RATE / HOP)  # semitones per second
        d = d[np.abs(d) < 300]
        rise, fall = d[d > 0], d[d < 0]
        p20, p50, p80 = np.percentile(fv, [20, 50, 80])
        f0 = [fv.mean(), fv.std() / fv.mean(), p20, p50, p80, p80 - p20,
              rise.mean() if len(rise) else 0.0, rise.std() if len(rise) > 1 else 0.0,
              fall.mean() if len(fall) else 0.0, fall.std() if len(fall) > 1 else 0.0]
    formants = [0.0] * 12
    if voiced.sum() > 3:
        fv3 = frames[voiced]
        formants = [v for j in range(3) for v in _mean_spread(fv3[:, 3 + j])
                    + _mean_spread(fv3[:, 6 + j])]
    share = float(voiced.mean()) if len(voiced) else 0.0
    loud = _relative_loudness(level)
    return np.nan_to_num(np.array(f0 + formants + [share] + _loudness(loud) + _rhythm(loud, voiced),
                                  dtype=np.float32))


def _contour(v: np.ndarray) -> list[float]:
    """eGeMAPS's functionals of a contour over all frames: mean, spread, percentiles and range,
    rising and falling slopes (per second)."""
    d = np.diff(v) * (SAMPLE_RATE / HOP)
    rise, fall = d[d > 0], d[d < 0]
    p20, p50, p80 = np.percentile(v, [20, 50, 80])
    return [v.mean(), v.std() / (v.mean() + 1e-9), p20, p50, p80, p80 - p20,
            rise.mean() if len(rise) else 0.0, rise.std() if len(rise) > 1 else 0.0,
            fall.mean() if len(fall) else 0.0, fall.std() if len(fall) > 1 else 0.0]


def _relative_loudness(level: np.ndarray) -> np.ndarray:
    # Energy^0.3 (Stevens' power law, as eGeMAPS's loudness), over the window's loudest frame.
    return 10.0 ** (0.03 * np.maximum(level - level.max(), -100.0))


def _loudness(loud: np.ndarray) -> list[float]:
    return _contour(loud) if len(loud) > 2 else [0.0] * 10


@nb.njit(cache=True, nogil=True)
def _peak_count(x, prominence):
    """How many peaks of x stand out by at least `prominence`: scipy.signal.find_peaks(x,
    prominence=...)'s count, by its definitions (a plateau is one peak; a peak's bases are the
    lowest points on each side before a higher sample). Ours because importing scipy.signal would
    add about 0.6 s to every specmon command's start-up (more on a Pi)."""
    n = x.shape[0]
    count = 0
    i = 1
    while i < n - 1:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < n - 1 and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                left_min = x[i]
                j = i
                while j >= 0 and x[j] <= x[i]:
                    left_min = min(left_min, x[j])
                    j -= 1
                right_min = x[i]
                j = i
                while j < n and x[j] <= x[i]:
                    right_min = min(right_min, x[j])
                    j += 1
                if x[i] - max(left_min, right_min) >= prominence:
                    count += 1
                i = ahead
                continue
        i += 1
    return count


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths (frames) of the runs of True and of False in mask."""
    edges = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    bounds = np.concatenate(([0], edges, [len(mask)]))
    lengths = np.diff(bounds)
    first = bool(mask[0])
    on = lengths[0 if first else 1::2]
    off = lengths[1 if first else 0::2]
    return on, off


def _rhythm(loud: np.ndarray, voiced: np.ndarray) -> list[float]:
    """Loudness peaks and voiced segments per second; voiced and unvoiced segment lengths (s)."""
    if len(loud) < 3:
        return [0.0] * 6
    seconds = len(loud) * HOP / SAMPLE_RATE
    lo = np.convolve(np.pad(loud, 1, mode="edge"), np.ones(3) / 3, mode="valid")  # as eGeMAPS's sma3
    # A peak stands out from its surroundings by a tenth of the window's loudness range.
    peaks = _peak_count(lo, max(0.1 * float(lo.max() - lo.min()), 1e-6))
    on, off = _runs(voiced)
    on, off = on * HOP / SAMPLE_RATE, off * HOP / SAMPLE_RATE
    return [peaks / seconds, len(on) / seconds,
            on.mean() if len(on) else 0.0, on.std() if len(on) > 1 else 0.0,
            off.mean() if len(off) else 0.0, off.std() if len(off) > 1 else 0.0]


def frame_range(start: int, n_samples: int = WINDOW_SAMPLES) -> range:
    """Indices of the frames wholly inside samples [start, start + n_samples)."""
    return range(-(-start // HOP), (start + n_samples - F0_FRAME) // HOP + 1)


class WindowProsody:
    """Window prosody with each frame computed once: frame values are kept by their index on the
    signal's grid, for as long as an overlapping window may still need them."""

    def __init__(self, keep: int = 1024) -> None:
        self._index = np.full(keep, -1, np.int64)  # ring: slot j % keep holds frame j
        self._values = np.empty((keep, N_FRAME))

    def reset(self) -> None:
        """A new signal: frame indices start again."""
        self._index[:] = -1

    def frames(self, samples: np.ndarray, start: int) -> np.ndarray:
        """Frame values of the window whose samples (16 kHz) begin at sample `start` of the signal."""
        js = np.array(frame_range(start, len(samples)), dtype=np.int64)
        if len(js) > len(self._index):
            raise ValueError(f"a window of {len(js)} frames does not fit a cache of {len(self._index)}")
        slots = js % len(self._index)
        todo = js[self._index[slots] != js]
        if len(todo):
            lo = todo[0] * HOP - start  # only the new frames' samples go to float64
            x = np.asarray(samples[lo:todo[-1] * HOP - start + F0_FRAME], np.float64)
            self._values[todo % len(self._index)] = frame_values(x, todo * HOP - start - lo)
            self._index[todo % len(self._index)] = todo
        return self._values[slots]

    def __call__(self, samples: np.ndarray, start: int) -> np.ndarray:
        """N_PROSODY functionals of the window whose samples begin at sample `start`."""
        return functionals(self.frames(samples, start))


def warm_up() -> None:
    """Compile, or load from numba's cache, the prosody's kernels: a voiced frame runs them all."""
    t = np.arange(WINDOW_SAMPLES) / SAMPLE_RATE
    window_prosody((0.1 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 450 * t)))
                   .astype(np.float32))


def window_prosody(samples: np.ndarray, start: int = 0) -> np.ndarray:
    """N_PROSODY functionals of one window's samples (no cache): for a window on its own."""
    return WindowProsody(keep=len(frame_range(start, len(samples))) + 1)(samples, start)


class RecentSamples:
    """The newest n samples of a stream (live: the current window's, for its prosody)."""

    def __init__(self, n: int = WINDOW_SAMPLES) -> None:
        self._buf = np.zeros(n, np.float32)
        self._head = 0  # next slot to write
        self.total = 0  # samples pushed in all

    def push(self, x: np.ndarray) -> None:
        n = len(self._buf)
        self.total += len(x)
        x = x[-n:]
        k = min(len(x), n - self._head)
        self._buf[self._head:self._head + k] = x[:k]
        self._buf[:len(x) - k] = x[k:]
        self._head = (self._head + len(x)) % n

    def last(self) -> np.ndarray:
        """The newest samples, oldest first (a copy)."""
        return np.concatenate((self._buf[self._head:], self._buf[:self._head]))
