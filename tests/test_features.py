"""The one feature path: batch = rolling = numpy/scipy reference, windows, normalization."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from monitor import features as F


def reference_logpower(x: np.ndarray) -> np.ndarray:
    """Plain numpy/scipy STFT with the documented conventions."""
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), F.N_FFT)[:: F.HOP]
    spec = np.fft.rfft(frames * scipy.signal.get_window("hamming", F.N_FFT), axis=1)
    return (10 * np.log10(np.abs(spec) ** 2 + 1e-10)).T


@pytest.fixture(scope="module")
def speechlike() -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(6 * F.SAMPLE_RATE) / F.SAMPLE_RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.5 * t)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / F.SAMPLE_RATE) * (t % 1 < 0.7)
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_hamming_matches_scipy() -> None:
    np.testing.assert_allclose(F.hamming(), scipy.signal.get_window("hamming", F.N_FFT), atol=1e-12)


def test_batch_matches_reference(speechlike: np.ndarray) -> None:
    spec, _ = F.stft_logpower(speechlike)
    ref = reference_logpower(speechlike)
    assert spec.shape == ref.shape == (513, F.n_frames_for(speechlike.size))
    np.testing.assert_allclose(spec, ref, atol=1e-4)


def test_rolling_matches_batch_with_ragged_pushes(speechlike: np.ndarray) -> None:
    spec, levels = F.stft_logpower(speechlike)
    roll = F.RollingSTFT()
    rng = np.random.default_rng(0)
    i, checked = 0, 0
    while i < speechlike.size:
        k = int(rng.integers(1, 3000))
        roll.push(speechlike[i : i + k])
        i += k
        n = roll.columns_total
        if roll.ready():
            # Same kernel arithmetic on both paths: not just close, identical.
            np.testing.assert_array_equal(roll.window(), spec[:, n - 125 : n])
            np.testing.assert_array_equal(roll.levels(), levels[n - 125 : n])
            checked += 1
    assert roll.columns_total == spec.shape[1]
    assert checked > 10


def test_threaded_batch_equals_serial(speechlike: np.ndarray) -> None:
    long = np.tile(speechlike, 8)  # > PARALLEL_MIN_FRAMES: the threaded kernel
    assert F.n_frames_for(long.size) >= F.PARALLEL_MIN_FRAMES
    spec, _ = F.stft_logpower(long)
    short, _ = F.stft_logpower(speechlike)
    np.testing.assert_array_equal(spec[:, : short.shape[1]], short)
    np.testing.assert_allclose(spec, reference_logpower(long), atol=1e-4)


def test_window_geometry() -> None:
    assert F.WINDOW_SAMPLES == 64512
    assert F.n_frames_for(F.WINDOW_SAMPLES) == 125
    assert F.stride_hops(1.0) == 31
    assert list(F.window_ends(200, 31)) == [125, 156, 187]
    assert F.window_span_s(125) == (0.0, 64512 / 16000)


def test_short_clip_is_looped_not_zero_padded() -> None:
    clip = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)
    w = F.loop_to_window(clip)
    assert w.size == F.WINDOW_SAMPLES
    np.testing.assert_array_equal(w[16000:32000], clip)
    long = np.zeros(F.WINDOW_SAMPLES + 5, np.float32)
    assert F.loop_to_window(long) is long


def test_normalize_removes_gain_and_floor(speechlike: np.ndarray) -> None:
    a, _ = F.stft_logpower(speechlike[: F.WINDOW_SAMPLES])
    b, _ = F.stft_logpower(speechlike[: F.WINDOW_SAMPLES] * 0.05)  # -26 dB
    na, nb = F.normalize(a), F.normalize(b)
    assert abs(na.mean()) < 1e-4 and abs(na.std() - 1) < 1e-3
    np.testing.assert_allclose(na, nb, atol=1e-2)


def test_levels_in_dbfs() -> None:
    t = np.arange(F.WINDOW_SAMPLES) / F.SAMPLE_RATE
    _, levels = F.stft_logpower(np.sin(2 * np.pi * 440 * t))  # full-scale sine = 0 dBFS
    assert np.all(np.abs(levels) < 0.1)
    _, quiet = F.stft_logpower(0.01 * np.sin(2 * np.pi * 440 * t))
    assert np.all(np.abs(quiet + 40) < 0.1)
