"""The numpy voice encoder (monitor/voice_encoder.py) against Resemblyzer's own mel spectrogram and
torch's LSTM states (tests/data/voice_encoder_reference.npz, written by
scripts/convert_voice_encoder.py from the same weights), and what its features are made of."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from monitor.voice_encoder import (
    FEATURES,
    GRID,
    PARTIAL,
    PARTIAL_SAMPLES,
    VoiceEncoder,
    WindowVoice,
    partial_starts,
)

ROOT = Path(__file__).resolve().parent.parent
REF = np.load(ROOT / "tests" / "data" / "voice_encoder_reference.npz")


@pytest.fixture(scope="module")
def encoder() -> VoiceEncoder:
    return VoiceEncoder()


def segments() -> list[np.ndarray]:
    x, sr = sf.read(ROOT / "scripts" / "sample.flac", dtype="float32")
    assert sr == 16000
    return [g * x[a:a + 64000] for a, g in zip(REF["starts"], REF["gains"], strict=True)]


def test_mel_is_resemblyzers_including_the_volume_raised_on_a_quiet_window(encoder) -> None:
    mels = np.stack([encoder.mel(s) for s in segments()])
    assert mels.shape == REF["mels"].shape == (2, 401, 40)
    np.testing.assert_allclose(mels, REF["mels"], rtol=1e-4, atol=1e-6 * REF["mels"].max())
    # The quiet copy (1 % of the amplitude) is raised to -30 dBFS: not 10^-4 of the loud one's power.
    assert mels[1].sum() > 0.1 * mels[0].sum()


def test_lstm_states_are_torchs(encoder) -> None:
    seq, h = encoder.lstm(REF["mels"][:, :PARTIAL])
    np.testing.assert_allclose(h, REF["last_state"], atol=1e-5)
    np.testing.assert_allclose(seq.mean(1), REF["mean_output"], atol=1e-5)


def test_window_features_average_the_grid_partials_inside_it(encoder) -> None:
    """A window's features are the mean of the partials on the signal's 0.8-s grid wholly inside
    it: 4 when it starts on the grid, 3 otherwise; each partial is the encoder's own output."""
    assert list(partial_starts(0, 64000)) == [0, GRID, 2 * GRID, 3 * GRID]
    assert list(partial_starts(100, 64000)) == [GRID, 2 * GRID, 3 * GRID]
    x = segments()[0]
    f = WindowVoice(encoder)(x, 0)
    assert f.shape == (FEATURES,) and np.isfinite(f).all()
    parts = encoder.partials(x, partial_starts(0, len(x)))
    np.testing.assert_allclose(f, parts.mean(0), rtol=1e-5, atol=1e-6)
    seq, h = encoder.lstm(encoder.mel(x[:PARTIAL_SAMPLES])[None, :PARTIAL])
    np.testing.assert_allclose(parts[0], np.hstack([h[0], seq[0].mean(0)]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(f[:256], parts[0, :256], atol=1e-3)  # the other partials count too


def test_window_by_window_equals_the_whole_signal_at_once(encoder) -> None:
    """Live (window by window, each partial kept for the next windows) and batch (fill, every
    partial of the signal at once) give the same features; a window too short for a partial and
    silence are handled."""
    x, _ = sf.read(ROOT / "scripts" / "sample.flac", dtype="float32")
    x = x[:16000 * 9]
    live, batch = WindowVoice(encoder), WindowVoice(encoder)
    batch.fill(x)
    for a in range(0, len(x) - 64000 + 1, 16000):  # a window every second
        np.testing.assert_allclose(live(x[a:a + 64000], a), batch(x[a:a + 64000], a),
                                   rtol=1e-4, atol=1e-5)
    assert np.isfinite(WindowVoice(encoder)(np.zeros(64000, np.float32), 0)).all()  # no log(0)
    with pytest.raises(ValueError, match="holds no"):
        WindowVoice(encoder)(x[:16000], 0)
