"""The feature probe (model/feature_probe.py): its raw-audio prosody on signals with a known answer,
and a tiny real run over ../shared (the CI version of the ~16-minute full probe)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from model.feature_probe import RAW_NAMES, WINDOW_SPAN, raw_prosody

SR = 16000


def vowel(f0: float, formants: tuple[float, ...], seconds: float = 4.1) -> np.ndarray:
    """A glottal pulse train at f0 through two-pole resonators at the formants (bandwidth 80 Hz)."""
    n = int(seconds * SR)
    x = np.zeros(n)
    x[::int(round(SR / f0))] = 1.0
    for f in formants:
        r = np.exp(-np.pi * 80 / SR)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / SR), r * r], x)
    x += np.random.default_rng(0).normal(0, 1e-4 * np.abs(x).max(), n)
    return (x / np.abs(x).max() * 0.5)[:WINDOW_SPAN].astype(np.float32)


def by_name(v: np.ndarray) -> dict:
    return dict(zip(RAW_NAMES, v.tolist(), strict=True))


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_raw_prosody_finds_pitch_and_formants_of_a_synthetic_vowel(f0: float) -> None:
    p = by_name(raw_prosody(vowel(f0, (700.0, 1200.0, 2600.0))))
    assert p["f0_p50"] == pytest.approx(12 * np.log2(f0 / 27.5), abs=0.5)  # semitones
    assert p["f0_range20_80"] < 0.5  # a steady pitch
    assert p["voiced_share"] > 0.5
    assert p["F1_freq_mean"] == pytest.approx(700, rel=0.12)
    assert p["F2_freq_mean"] == pytest.approx(1200, rel=0.12)
    assert p["F3_freq_mean"] == pytest.approx(2600, rel=0.12)


def test_raw_prosody_is_finite_on_silence_and_noise() -> None:
    for x in (np.zeros(WINDOW_SPAN, np.float32),
              np.random.default_rng(1).normal(0, 0.1, WINDOW_SPAN).astype(np.float32)):
        v = raw_prosody(x)
        assert v.shape == (len(RAW_NAMES),) and np.all(np.isfinite(v))


def run_probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model.feature_probe", *args],
                          capture_output=True, text=True, timeout=600)


def test_tiny_probe_run(tmp_path: Path, speech_dir: Path) -> None:
    rep_path = tmp_path / "probe.json"
    p = run_probe("--manifest", str(speech_dir / "manifest.csv"), "--report", str(rep_path),
                  "--speakers-per-corpus", "1", "--max-clips", "2")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "windows (" in p.stderr  # progress per corpus
    rep = json.loads(rep_path.read_text())
    corpora = set(rep["windows"])
    assert len(corpora) >= 9 and rep["manifest_sha256"]
    assert set(rep["ms_per_window"]) == {"window_stats", "raw_prosody", "egemaps"}
    for name, fs in rep["feature_sets"].items():
        # Every corpus is held out once; only corpora with both classes get an AUC.
        assert set(fs["per_corpus"]) == corpora, name
        assert all(0.0 <= r["head_auc"] <= 1.0 for r in fs["per_corpus"].values() if "head_auc" in r)
        assert "head_auc" not in fs["per_corpus"]["librispeech"]  # neutral only
        assert 0.0 <= fs["conditioned_mean"]["head_auc_mean"] <= 1.0


def test_probe_refuses_scores_of_other_windows_in_one_line(tmp_path: Path, speech_dir: Path) -> None:
    nets = tmp_path / "nets"
    nets.mkdir()
    np.savez(nets / "emodb-scores.npz", s=np.zeros(3))  # a run on other windows
    p = run_probe("--manifest", str(speech_dir / "manifest.csv"), "--report", str(tmp_path / "r.json"),
                  "--speakers-per-corpus", "1", "--max-clips", "2", "--no-egemaps",
                  "--networks", str(nets))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1].startswith("feature_probe: error: ")
    assert "emodb-scores.npz: 3 scores for" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "r.json").exists()


def test_probe_bad_manifest_is_one_line(tmp_path: Path) -> None:
    p = run_probe("--manifest", str(tmp_path / "none.csv"), "--report", str(tmp_path / "r.json"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"feature_probe: error: {tmp_path / 'none.csv'}: manifest not found"
