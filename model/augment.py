"""Training augmentations: what a real microphone in a real room brings that acted corpora lack.

Waveform level (before the shared STFT): gain changes with occasional clipping, coloured background
noise at a random SNR, a random microphone/channel response (high-pass, low-pass, tilt) and a little
synthetic reverberation. Spectrogram level (after normalization): a frequency warp (optional, `warp`)
and SpecAugment-style frequency and time masks. Time shifts come from the random crops themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from monitor.features import SAMPLE_RATE

NAMES = ("gain", "noise", "channel", "reverb", "mask", "warp")
WARP = (0.85, 1.15)  # frequency scale factors: roughly the spread of vocal tracts between adults


@dataclass
class Augment:
    gain: bool = True
    noise: bool = True
    channel: bool = True
    reverb: bool = True
    mask: bool = True
    warp: bool = False  # an ablation (loco --augment ...,warp), not in the shipped set

    @classmethod
    def from_names(cls, names: str) -> Augment | None:
        """'all' (the shipped set), 'none' or a comma list of NAMES."""
        if names == "none":
            return None
        if names == "all":
            return cls()
        chosen = {n.strip() for n in names.split(",") if n.strip()}
        bad = chosen - set(NAMES)
        if bad:
            raise ValueError(f"unknown augmentation(s) {', '.join(sorted(bad))}; known: {NAMES}")
        return cls(**{n: n in chosen for n in NAMES})

    def describe(self) -> str:
        return ",".join(n for n in NAMES if getattr(self, n)) or "none"

    def wave(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = x.astype(np.float64)
        if self.channel and rng.random() < 0.5:
            x = _channel(x, rng)
        if self.reverb and rng.random() < 0.3:
            x = _reverb(x, rng)
        if self.noise and rng.random() < 0.5:
            x = _add_noise(x, rng, snr_db=rng.uniform(10.0, 40.0))
        if self.gain:
            peak = np.max(np.abs(x)) + 1e-9
            target = 10 ** (rng.uniform(-40.0, 3.0) / 20.0)  # peak from -40 dBFS to 3 dB over
            x = np.clip(x * (target / peak), -1.0, 1.0)
        return x.astype(np.float32)

    def spec(self, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.warp and rng.random() < 0.8:
            s = warp_frequency(s, rng.uniform(*WARP))
        if not self.mask or rng.random() < 0.5:
            return s
        s = s.copy()
        for _ in range(2):
            f = rng.integers(0, 40)
            f0 = rng.integers(0, s.shape[0] - f)
            s[f0:f0 + f, :] = 0.0
            t = rng.integers(0, 12)
            t0 = rng.integers(0, s.shape[1] - t)
            s[:, t0:t0 + t] = 0.0
        return s


def warp_frequency(s: np.ndarray, alpha: float) -> np.ndarray:
    """Scale a (bins, frames) spectrogram's frequency axis by alpha (vocal tract length perturbation):
    the content of bin k moves to bin alpha * k, so harmonics and formants move together, as between
    a shorter and a longer voice. Bins with no source (alpha < 1) take the window's floor."""
    n = s.shape[0]
    src = np.arange(n) / alpha
    i0 = np.minimum(src.astype(np.int64), n - 2)
    frac = (src - i0)[:, None].astype(s.dtype)
    out = s[i0] * (1 - frac) + s[i0 + 1] * frac
    out[src > n - 1] = s.min()
    return out.astype(s.dtype, copy=False)


def _coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with a 1/f^exponent power spectrum (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    spec *= f ** (-exponent / 2.0)
    out = np.fft.irfft(spec, n)
    return out / (np.std(out) + 1e-12)


_BANK: dict[float, np.ndarray] = {}
BANK_SAMPLES = 1 << 20  # 65 s of each colour


def _noise_slice(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """n samples of coloured noise: a random slice of a long, once-made buffer (an FFT per window
    was a third of the training time)."""
    bank = _BANK.get(exponent)
    if bank is None:
        bank = _BANK.setdefault(exponent, _coloured_noise(BANK_SAMPLES, np.random.default_rng(
            int(exponent * 10) + 1), exponent))
    if n >= len(bank):
        return _coloured_noise(n, rng, exponent)
    off = rng.integers(0, len(bank) - n)
    seg = bank[off:off + n]
    return seg * (1.0 if rng.random() < 0.5 else -1.0) / (np.std(seg) + 1e-12)


def _add_noise(x: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    noise = _noise_slice(len(x), rng, float(rng.choice([0.0, 1.0, 2.0])))
    p_sig = np.mean(x**2) + 1e-12
    return x + noise * np.sqrt(p_sig / 10 ** (snr_db / 10.0))


def _channel(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random microphone: high-pass 50-300 Hz, low-pass 3.4-7.5 kHz, and a spectral tilt."""
    nyq = SAMPLE_RATE / 2
    if rng.random() < 0.7:
        b, a = signal.butter(2, rng.uniform(50, 300) / nyq, "highpass")
        x = signal.lfilter(b, a, x)
    if rng.random() < 0.5:
        b, a = signal.butter(4, rng.uniform(3400, 7500) / nyq, "lowpass")
        x = signal.lfilter(b, a, x)
    if rng.random() < 0.5:
        # First-order pre-emphasis (+) or de-emphasis (-): tilts the spectrum by a few dB/octave.
        k = rng.uniform(-0.6, 0.6)
        x = signal.lfilter([1.0, -k], [1.0], x)
    return x


def _reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convolve with an exponentially decaying noise impulse response (RT60 0.15-0.6 s)."""
    rt60 = rng.uniform(0.15, 0.6)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path, stronger than the tail
    y = signal.fftconvolve(x, ir)[: len(x)]
    return y * (np.std(x) / (np.std(y) + 1e-12))


def recording_condition(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random 'phone in a room' condition for a whole stream: a random microphone response,
    reverberation half the time, and background noise at 10-30 dB SNR."""
    y = _channel(x.astype(np.float64), rng)
    if rng.random() < 0.5:
        y = _reverb(y, rng)
    y = _add_noise(y, rng, snr_db=rng.uniform(10.0, 30.0))
    return (y / (np.max(np.abs(y)) + 1e-9) * 0.5).astype(np.float32)


def degrade(x: np.ndarray, seed: int = 0, snr_db: float = 15.0) -> np.ndarray:
    """A fixed 'real room, cheap microphone' condition for robustness tests: band-limited to
    100 Hz-6 kHz, reverberation (RT60 0.35 s) and pink noise at snr_db."""
    rng = np.random.default_rng(seed)
    nyq = SAMPLE_RATE / 2
    b, a = signal.butter(2, [100 / nyq, 6000 / nyq], "bandpass")
    y = signal.lfilter(b, a, x.astype(np.float64))
    n = int(0.35 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / 0.35) * 0.3
    ir[0] = 1.0
    y = signal.fftconvolve(y, ir)[: len(y)]
    noise = _coloured_noise(len(y), rng, 1.0)
    y = y + noise * np.sqrt((np.mean(y**2) + 1e-12) / 10 ** (snr_db / 10.0))
    return (y / (np.max(np.abs(y)) + 1e-9) * 0.5).astype(np.float32)
