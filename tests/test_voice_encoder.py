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


def voice_head_model(tmp_path: Path, x: np.ndarray, voice_weight: float = 1.0,
                     encoder: str = "voice_encoder") -> Path:
    """The shipped network with a head on statistics, prosody and the encoder's states: standardized
    on x's own windows, seeded coefficients (the encoder's ones times voice_weight)."""
    import json
    import shutil

    from model.dataset import stream_prosody, stream_windows
    from monitor.scorer import DEFAULT_MODEL
    from monitor.window_stats import StatsHead, head_inputs

    pros = stream_prosody(x, 31, encoder=encoder)
    feats = np.stack([head_inputs(w, p) for w, p in zip(stream_windows(x, 31), pros, strict=True)])
    n = feats.shape[1]
    coef = np.random.default_rng(0).normal(0, 1 / np.sqrt(n), n)
    coef[n - FEATURES:] *= voice_weight
    head = StatsHead(feats.mean(0), feats.std(0) + 1e-3, coef, 0.0, 1.0, encoder=encoder)
    model = tmp_path / f"{encoder}{voice_weight:g}.tflite"
    shutil.copy(DEFAULT_MODEL, model)
    meta = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    meta["stats_head"] = head.to_dict()
    model.with_suffix(".json").write_text(json.dumps(meta))
    return model


@pytest.mark.parametrize("encoder", ["voice_encoder", "whisper_block3"])
def test_a_head_on_the_encoders_states_scores_alike_offline_streamed_and_live(
        tmp_path: Path, encoder: str) -> None:
    """A model whose head takes the encoder's states: the scorer asks for them; `specmon score`
    (block by block) and the whole signal at once give the same scores, exactly, and `listen
    --input` the same as printed (as test_live_replay checks the shipped model); and the states
    count (other voice coefficients, other scores)."""
    import csv
    import subprocess
    import sys

    from monitor.scorer import FAST_MODEL, Scorer
    from monitor.scoring import score_file, score_signal

    wav = ROOT / "scripts" / "sample.flac"
    x, _ = sf.read(wav, dtype="float32")
    x = x[:16000 * 12]
    clip = tmp_path / "clip.flac"
    sf.write(clip, x, 16000, subtype="PCM_16")
    x, _ = sf.read(clip, dtype="float32")
    model = voice_head_model(tmp_path, x, encoder=encoder)
    scorer = Scorer(model)
    assert scorer.needs_prosody and scorer.head_encoder == encoder
    assert Scorer(FAST_MODEL).head_encoder is None
    whole = [(r.start_s, r.score) for r in score_signal(x, scorer)]
    streamed = score_file(clip, scorer, block_frames=5000)
    assert streamed.error is None and [(r.start_s, r.score) for r in streamed.results] == whole
    assert len(whole) >= 8 and all(s is not None for _, s in whole)
    out = tmp_path / "live.csv"
    r = subprocess.run([sys.executable, "-m", "monitor.cli", "listen", "--input", str(clip), "--fast",
                        "--csv", str(out), "--headless", "--model", str(model)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    want = {f"{s:.3f}": v for s, v in whole}
    assert len(rows) == len(whole) - 1  # offline adds one tail window; live only the schedule
    assert all(abs(float(row["score"]) - want[row["start_s"]]) <= 1e-3 for row in rows), rows
    other = Scorer(voice_head_model(tmp_path, x, voice_weight=-1.0, encoder=encoder))
    assert [r.score for r in score_signal(x, other)] != [s for _, s in whole]


@pytest.mark.parametrize("change, message", [
    ({"encoder": "wav2vec"}, "an encoder specmon does not have: 'wav2vec'"),
    ({"encoder": None}, "specmon computes 131 or 170"),  # the states without the encoder named
    ({"drop": 1}, "on the voice_encoder's states has 681 statistics, specmon computes 682"),
])
def test_a_head_on_encoder_states_must_name_a_known_encoder_and_fit_it(
        tmp_path: Path, change: dict, message: str) -> None:
    """The sidecar names the encoder whose states the head takes (a size alone could be any
    encoder's); an unknown name, a missing one or a size that is not the encoder's: one line."""
    import json

    from monitor.errors import SpecmonError
    from monitor.scorer import Scorer

    x, _ = sf.read(ROOT / "scripts" / "sample.flac", dtype="float32")
    model = voice_head_model(tmp_path, x[:16000 * 6])
    meta = json.loads(model.with_suffix(".json").read_text())
    head = meta["stats_head"]
    if "drop" in change:
        for k in ("mean", "scale", "coef"):
            head[k] = head[k][:-1]
        head["statistics"] -= 1
    elif change["encoder"] is None:
        del head["encoder"]
    else:
        head["encoder"] = change["encoder"]
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(SpecmonError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        Scorer(model)
    assert "\n" not in str(e.value)
