"""The numpy voice encoder (model/voice_encoder.py) against Resemblyzer's own mel spectrogram and
torch's LSTM states (tests/data/voice_encoder_reference.npz, written by
scripts/convert_voice_encoder.py from the same weights), and what its features are made of."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.voice_encoder import FEATURES, PARTIAL, VoiceEncoder

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


def test_features_average_three_partials_and_refuse_short_segments(encoder) -> None:
    segs = segments()
    f = encoder.features(segs)
    assert f.shape == (2, FEATURES) and np.isfinite(f).all()
    seq, h = encoder.lstm(REF["mels"][:, :PARTIAL])  # the first partial alone
    assert not np.allclose(f[:, :256], h, atol=1e-3)  # the other two partials count too
    assert encoder.features([]).shape == (0, FEATURES)
    assert np.isfinite(encoder.features(np.zeros((1, 64000), np.float32))).all()  # silence: no log(0)
    with pytest.raises(ValueError, match="at least 160"):
        encoder.features([segs[0][:16000]])
