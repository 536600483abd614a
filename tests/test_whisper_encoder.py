"""The numpy Whisper encoder (monitor/whisper_encoder.py) against CTranslate2's own encoder output
(tests/data/whisper_reference.npz, written by scripts/whisper_reference.py) and librosa's front end,
and what a window's states are made of. Needs the weights scripts/convert_whisper.py writes (the
test script fetches them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from monitor.errors import SpecmonError
from monitor.features import WINDOW_SAMPLES
from monitor.whisper_encoder import POOLINGS, WEIGHTS, WhisperEncoder, WindowWhisper, active_positions

ROOT = Path(__file__).resolve().parent.parent
REF = np.load(ROOT / "tests" / "data" / "whisper_reference.npz")


@pytest.fixture(scope="module")
def encoder() -> WhisperEncoder:
    if not WEIGHTS.is_file():
        pytest.fail(f"{WEIGHTS} is missing: run `python scripts/convert_whisper.py` (scripts/test.sh does)")
    return WhisperEncoder()


def windows() -> np.ndarray:
    x, sr = sf.read(ROOT / "scripts" / "sample.flac", dtype="float32")
    assert sr == 16000
    return np.stack([g * x[a:a + 64000] for a, g in zip(REF["starts"], REF["gains"], strict=True)])


def test_log_mel_is_whispers_front_end(encoder) -> None:
    """Whisper's log-mel (centred reflect-padded STFT, last frame dropped, log10, floor 8 below the
    peak, (x + 4) / 4), here through librosa; a quiet copy floors at its own peak, not the loud one's."""
    import librosa

    w = windows()
    power = np.abs(librosa.stft(w.astype(np.float64), n_fft=400, hop_length=160, window="hann",
                                center=True, pad_mode="reflect"))[..., :-1] ** 2
    mel = np.log10(np.maximum(librosa.filters.mel(sr=16000, n_fft=400, n_mels=80) @ power, 1e-10))
    mel = np.maximum(mel, mel.max(axis=(1, 2), keepdims=True) - 8.0)
    want = ((mel + 4.0) / 4.0).transpose(0, 2, 1)
    got = encoder.log_mel(w)
    assert got.shape == (2, 400, 80)
    np.testing.assert_allclose(got, want, atol=2e-4)
    np.testing.assert_allclose(got, REF["mel"], atol=1e-6)


def test_kept_mel_filterbank_is_librosas() -> None:
    """scripts/convert_whisper.py takes the filterbank from the repository (the runtime install has
    no librosa): it must be the one librosa gives Whisper's front end."""
    import librosa

    kept = np.load(ROOT / "monitor" / "whisper_mel_80.npy")
    assert kept.dtype == np.float32
    np.testing.assert_array_equal(kept, librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)
                                  .astype(np.float32))


def test_encoder_output_is_ctranslate2s(encoder) -> None:
    """The final layer norm's output, averaged and at the first positions, as CTranslate2 computes it
    (within the tanh GELU's 1e-3 of the exact one)."""
    out = encoder.encode(REF["mel"])
    assert len(out) == 7 and out[-1].shape == (2, 200, 512)
    np.testing.assert_allclose(out[-1].mean(1), REF["final_mean"], atol=0.02)
    np.testing.assert_allclose(out[-1][:, :4], REF["final_first"], atol=0.05)
    assert np.abs(REF["final_mean"]).max() > 1.0  # the tolerance is small against the values
    three = encoder.encode(REF["mel"], blocks=3)  # the first blocks only: the same as in the whole run
    assert len(three) == 3 and all(np.array_equal(a, b) for a, b in zip(three, out[:3], strict=True))


def test_window_states_filled_ahead_equal_window_by_window(encoder) -> None:
    """Training fills a stream's windows at once, `listen` computes each as it comes from the
    window's own samples (WINDOW_SAMPLES, the 125 columns' span): the same states; silence is finite."""
    x, _ = sf.read(ROOT / "scripts" / "sample.flac", dtype="float32")
    x = x[:16000 * 8]
    starts = list(range(0, len(x) - WINDOW_SAMPLES + 1, 16000))
    ahead, live = WindowWhisper(3, encoder=encoder), WindowWhisper(3, encoder=encoder)
    ahead.fill(x, starts)
    for a in starts:
        f = live(x[a:a + WINDOW_SAMPLES], a)
        assert f.shape == (512,)
        np.testing.assert_allclose(ahead(x[a:a + WINDOW_SAMPLES], a), f, rtol=1e-4, atol=1e-4)
    third = encoder.features(x[None, :WINDOW_SAMPLES])[0, 2]
    np.testing.assert_allclose(WindowWhisper(3, encoder=encoder)(x[:WINDOW_SAMPLES], 0), third,
                               rtol=1e-4, atol=1e-4)
    assert np.isfinite(WindowWhisper(3, encoder=encoder)(np.zeros(WINDOW_SAMPLES, np.float32), 0)).all()


def test_missing_weights_are_one_line_saying_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(SpecmonError, match="convert_whisper.py") as e:
        WhisperEncoder(tmp_path / "none.npz")
    assert "\n" not in str(e.value)


def speech_then_silence() -> np.ndarray:
    """2 s of the bundled sample's speech, then 2 s of digital silence (as PulseAudio's monitor and
    some corpora's clips give)."""
    x, _ = sf.read(ROOT / "scripts" / "sample.flac", dtype="float32")
    w = np.zeros(WINDOW_SAMPLES, np.float32)
    w[:WINDOW_SAMPLES // 2] = x[16000:16000 + WINDOW_SAMPLES // 2]
    return w


def test_active_positions_leave_digital_silence_out(encoder) -> None:
    """Half the window floors at one log-mel value: the 40 % quantile falls on it, and none of those
    tied silent positions may count as active (with >= all of them would)."""
    mel = encoder.log_mel(speech_then_silence()[None])
    active = active_positions(mel)[0]
    assert active.shape == encoder.encode(mel, 1)[0].shape[1:2]  # one per encoder position
    half = len(active) // 2
    assert 40 < active.sum() <= half + 1 and not active[half + 2:].any()
    assert active_positions(encoder.log_mel(np.zeros((1, WINDOW_SAMPLES), np.float32))).all()


def test_poolings_of_a_block(encoder) -> None:
    """Each pooling of a block's states: the mean is the default's, the std the positions' spread,
    the active mean leaves a half-silent window's silence out; a silent window is finite."""
    segs = np.stack([speech_then_silence(), np.zeros(WINDOW_SAMPLES, np.float32)])
    f = encoder.features(segs, 3, POOLINGS).reshape(2, 3, len(POOLINGS), 512)
    assert np.isfinite(f).all()
    mean, std, act = (POOLINGS.index(p) for p in ("mean", "std", "active"))
    np.testing.assert_array_equal(f[:, :, mean], encoder.features(segs, 3))
    h = encoder.encode(encoder.log_mel(segs), 3)[2]
    np.testing.assert_allclose(f[:, 2, std], h.std(1), atol=1e-5)
    keep = active_positions(encoder.log_mel(segs))[0]
    np.testing.assert_allclose(f[0, 2, act], h[0, keep].mean(0), atol=1e-5)
    assert np.abs(f[0, 2, act] - f[0, 2, mean]).max() > 0.05
    np.testing.assert_allclose(f[1, :, act], f[1, :, mean], atol=1e-5)  # a flat window: all active


def test_window_states_with_pooling_filled_ahead_equal_window_by_window(encoder) -> None:
    x, _ = sf.read(ROOT / "scripts" / "sample.flac", dtype="float32")
    x = x[:16000 * 6]
    starts = [0, 16000]
    ahead, live = (WindowWhisper(3, ("mean", "std"), encoder) for _ in range(2))
    ahead.fill(x, starts)
    for a in starts:
        f = live(x[a:a + WINDOW_SAMPLES], a)
        assert f.shape == (1024,)
        np.testing.assert_allclose(ahead(x[a:a + WINDOW_SAMPLES], a), f, rtol=1e-4, atol=1e-4)
