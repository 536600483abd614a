"""The feature probe (model/feature_probe.py): its raw-audio prosody on signals with a known answer,
and a tiny real run over ../shared with a tiny LOCO run's networks (the CI version of the
~19-minute probe)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from model.feature_probe import (
    RAW_NAMES,
    VIEWS,
    family,
    loco_aucs,
    raw_prosody,
    whisper_pooled,
    within_aucs,
)
from monitor.features import WINDOW_SAMPLES
from monitor.whisper_encoder import LAYERS, POOLINGS, WEIGHTS, WhisperEncoder

SR = 16000
SUBSET = ["--speakers-per-corpus", "2", "--max-clips", "2"]


def vowel(f0: float, formants: tuple[float, ...], bandwidth: float = 80.0) -> np.ndarray:
    """A pulse train at f0 through two-pole resonators at the formants."""
    n = WINDOW_SAMPLES + SR // 10
    x = np.zeros(n)
    x[::int(round(SR / f0))] = 1.0
    for f in formants:
        r = np.exp(-np.pi * bandwidth / SR)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / SR), r * r], x)
    x += np.random.default_rng(0).normal(0, 1e-4 * np.abs(x).max(), n)
    return (x / np.abs(x).max() * 0.5)[:WINDOW_SAMPLES].astype(np.float32)


def by_name(v: np.ndarray) -> dict:
    return dict(zip(RAW_NAMES, v.tolist(), strict=True))


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_raw_prosody_finds_pitch_and_formants_of_a_synthetic_vowel(f0: float) -> None:
    p = by_name(raw_prosody(vowel(f0, (700.0, 1200.0, 2600.0))))
    assert p["f0_p50"] == pytest.approx(12 * np.log2(f0 / 27.5), abs=0.5)  # semitones over 27.5 Hz
    assert p["f0_range20_80"] < 0.5  # a steady pitch
    assert p["voiced_share"] > 0.9
    assert p["F1_freq_mean"] == pytest.approx(700, rel=0.12)
    assert p["F2_freq_mean"] == pytest.approx(1200, rel=0.12)
    assert p["F3_freq_mean"] == pytest.approx(2600, rel=0.12)
    assert 20 < p["F1_bw_mean"] < 250  # resonators of 80 Hz: narrow, not the 500-Hz cut-off


def test_raw_prosody_finds_no_voice_in_silence_or_noise() -> None:
    silence = by_name(raw_prosody(np.zeros(WINDOW_SAMPLES, np.float32)))
    assert silence["voiced_share"] == 0.0 and silence["f0_p50"] == 0.0
    noise = by_name(raw_prosody(np.random.default_rng(1).normal(0, 0.1, WINDOW_SAMPLES)))
    assert noise["voiced_share"] < 0.1


def probe_data(held: str, view: str, rng: np.random.Generator) -> dict:
    """Four corpora whose column 0 tells the label one way (+2) where the head may train (the
    other corpora as recorded and their training copies) and in the windows it is tested on, and
    the other way, ten times stronger (-20), everywhere else."""
    feats = {}
    for c in ("a", "b", "c", "d"):
        y = np.repeat([0, 1], 100)
        odd = np.arange(200) % 2 == 1  # both arousal sides hold both classes (for gated heads)
        emotion = np.where(y == 1, np.where(odd, "anger", "sadness"), np.where(odd, "happiness", "neutral"))
        d = {"y": y, "emotion": emotion, "speaker": np.full(200, c)}
        for v in VIEWS:
            x = rng.normal(size=(200, 3)).astype(np.float32)
            allowed = (c != held and v in ("", "t_")) or (c == held and v == view)
            x[:, 0] += (2.0 if allowed else -20.0) * y
            d[v + "window_stats"] = x
        feats[c] = d
    return feats


@pytest.mark.parametrize("form", ["linear", "gated", "multinomial"])
@pytest.mark.parametrize("view", ["", "c_"])
def test_heads_never_train_on_the_held_out_corpus_or_the_test_conditions(view: str, form: str) -> None:
    rng = np.random.default_rng(0)
    for held in ("a", "d"):
        row = loco_aucs(probe_data(held, view, rng), {}, ("window_stats",), view, (), form)[held]
        assert row["head_auc"] > 0.9, (view, held, row)  # a leak would turn the head around


def test_within_corpus_auc_trains_inside_the_corpus_on_other_speakers() -> None:
    """Corpus "a" tells the label by column 0 one way, the other corpora the other way: held out, the
    head is turned around; inside "a" (its other speakers) it is right. A corpus of one speaker has
    no figure inside."""
    rng = np.random.default_rng(0)
    feats = {}
    for c in ("a", "b", "c", "d"):
        y = np.tile(np.repeat([0, 1], 25), 4)
        d = {"y": y, "emotion": np.where(y == 1, "anger", "neutral"),
             "speaker": np.repeat([f"{c}{k}" for k in range(4)] if c != "d" else ["d0"] * 4, 50)}
        for v in VIEWS:
            x = rng.normal(size=(200, 3)).astype(np.float32)
            x[:, 0] += (3.0 if c == "a" else -3.0) * y
            d[v + "window_stats"] = x
        feats[c] = d
    within = within_aucs(feats, ("window_stats",))
    assert within["a"] > 0.95 and within["b"] > 0.95 and "d" not in within
    assert loco_aucs(feats, {}, ("window_stats",))["a"]["head_auc"] < 0.05


def run(module: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def networks(tmp_path_factory, speech_dir: Path) -> Path:
    """A tiny network-alone LOCO run over every corpus (what --networks wants)."""
    work = tmp_path_factory.mktemp("loco-network")
    p = run("model.loco", "--manifest", str(speech_dir / "manifest.csv"), "--work", str(work),
            "--no-stats-head", *SUBSET, "--epochs", "1", "--steps", "2")
    assert p.returncode == 0, p.stderr[-3000:]
    return work


def test_tiny_probe_run_agrees_with_the_loco_run(tmp_path: Path, speech_dir: Path,
                                                networks: Path) -> None:
    rep_path = tmp_path / "probe.json"
    p = run("model.feature_probe", "--manifest", str(speech_dir / "manifest.csv"), "--report",
            str(rep_path), "--networks", str(networks), "--voice-encoder", *SUBSET,
            "--keep-features", str(tmp_path / "kept"))
    assert p.returncode == 0, p.stderr[-2000:]
    # The kept windows give the same rows again, without extracting them.
    again = tmp_path / "again.json"
    p2 = run("model.feature_probe", "--manifest", str(speech_dir / "manifest.csv"), "--report",
             str(again), "--networks", str(networks), "--voice-encoder", *SUBSET,
             "--features-from", str(tmp_path / "kept"), "--sets", "voice encoder")
    assert p2.returncode == 0, p2.stderr[-2000:]
    assert "windows (" not in p2.stderr
    rep2 = json.loads(again.read_text())
    assert set(rep2["feature_sets"]) == {"window_stats", "voice encoder states alone",
                                         "window_stats + voice encoder states",
                                         "shipped head inputs + voice encoder states"}
    for name, fs in rep2["feature_sets"].items():
        assert fs == json.loads(rep_path.read_text())["feature_sets"][name], name
    # Windows kept from another subset cannot stand in for these: one line, before any work.
    p3 = run("model.feature_probe", "--manifest", str(speech_dir / "manifest.csv"), "--report",
             str(tmp_path / "other.json"), "--networks", str(networks), "--voice-encoder",
             "--speakers-per-corpus", "2", "--max-clips", "1", "--features-from", str(tmp_path / "kept"))
    assert p3.returncode == 2 and "Traceback" not in p3.stderr
    assert p3.stderr.strip().splitlines()[-1] == (
        f"feature_probe: error: --features-from {tmp_path / 'kept'}: kept from another max_clips")
    assert "windows (" in p.stderr  # progress per corpus
    rep = json.loads(rep_path.read_text())
    loco = json.loads((networks / "loco_report.json").read_text())["per_corpus"]
    assert set(rep["windows"]) == set(loco) and rep["seed"] == 0
    assert set(rep["ms_per_window"]) == {"window_stats", "raw_prosody", "egemaps", "voice_encoder"}
    assert set(rep["feature_sets"]) >= {"window_stats", "window_stats + eGeMAPS F0 and formants",
                                        "shipped head inputs + voice encoder states"}
    for name, fs in rep["feature_sets"].items():
        assert set(fs["per_corpus"]) == set(loco), name  # every corpus held out once
        for corpus, row in fs["per_corpus"].items():
            # The probe's windows are the LOCO run's: the network's AUC is the fold's own, as
            # recorded and through the worse recording (same seeds, same conditions).
            two_class = loco[corpus]["int8"]["windows"]["roc_auc"] is not None
            assert ("fused_auc" in row) == two_class, (name, corpus)
            if two_class:
                assert row["network_auc"] == pytest.approx(loco[corpus]["int8"]["windows"]["roc_auc"],
                                                           abs=1e-4)
                c_row = fs["conditioned_per_corpus"][corpus]
                assert c_row["network_auc"] == pytest.approx(
                    loco[corpus]["conditioned"]["windows"]["roc_auc"], abs=1e-4)
        assert "fused_auc_mean" in fs["mean"] and "fused_auc_mean" in fs["conditioned_mean"]


def test_probe_refuses_a_folder_with_heads_in_one_line(tmp_path: Path, speech_dir: Path) -> None:
    # The shipped model has a stats head: its folder is not a network-alone LOCO run.
    nets = tmp_path / "nets"
    nets.mkdir()
    shipped = Path(__file__).resolve().parents[1] / "model"
    corpora = sorted({r.split(",")[1] for r in (speech_dir / "manifest.csv").read_text().splitlines()[1:]})
    for c in corpora:
        (nets / f"{c}.tflite").write_bytes((shipped / "specmon.tflite").read_bytes())
        (nets / f"{c}.json").write_bytes((shipped / "specmon.json").read_bytes())
        np.savez(nets / f"{c}-scores.npz", s=np.zeros(3))
    p = run("model.feature_probe", "--manifest", str(speech_dir / "manifest.csv"), "--report",
            str(tmp_path / "r.json"), "--networks", str(nets), *SUBSET, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().startswith("feature_probe: error: ") and len(p.stderr.strip().splitlines()) == 1
    assert "has a stats head" in p.stderr and "windows (" not in p.stderr  # before any extraction
    assert not (tmp_path / "r.json").exists()


def test_probe_refuses_scores_of_other_windows_in_one_line(tmp_path: Path, speech_dir: Path,
                                                           networks: Path) -> None:
    nets = tmp_path / "nets"
    nets.mkdir()
    for f in networks.iterdir():
        (nets / f.name).write_bytes(f.read_bytes())
    np.savez(nets / "emodb-scores.npz", s=np.zeros(3), y=np.zeros(3), speaker=np.zeros(3),
             emotion=np.zeros(3))  # scores of other windows
    p = run("model.feature_probe", "--manifest", str(speech_dir / "manifest.csv"), "--report",
            str(tmp_path / "r.json"), "--networks", str(nets), "--no-egemaps", *SUBSET)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("feature_probe: error: ")
    assert "emodb-scores.npz: 3 scores that are not of these" in p.stderr
    assert not (tmp_path / "r.json").exists()


def test_probe_bad_head_is_one_line(tmp_path: Path, speech_dir: Path) -> None:
    p = run("model.feature_probe", "--manifest", str(speech_dir / "manifest.csv"), "--report",
            str(tmp_path / "r.json"), "--head", "forest", timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == "feature_probe: error: --head 'forest': choose linear, gated or multinomial"


def test_probe_bad_manifest_is_one_line(tmp_path: Path) -> None:
    p = run("model.feature_probe", "--manifest", str(tmp_path / "none.csv"), "--report",
            str(tmp_path / "r.json"), timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"feature_probe: error: {tmp_path / 'none.csv'}: manifest not found"


def test_egemaps_groups_split_the_88_functionals_once_each() -> None:
    """Each eGeMAPS column is in exactly one probed group, so the group rows add up to the whole
    set (a prefix that caught two groups' columns, or none, would mislead the table)."""
    from model.feature_probe import EGEMAPS_GROUPS, family, smile

    names = tuple(smile().feature_names)
    assert len(names) == 88
    d = {"egemaps": np.arange(len(names), dtype=np.float32)[None, :]}
    cols = [int(c) for g in EGEMAPS_GROUPS for c in family(d, f"egemaps:{g}", "", names)[0]]
    assert sorted(cols) == list(range(88))
    f0 = family(d, "egemaps:F0", "", names)[0].astype(int)
    assert [names[i] for i in f0] == [n for n in names if n.startswith("F0semitone")]



def test_whisper_pooled_families_are_the_encoders_poolings() -> None:
    """family("whisper:<block>:<pooling>") reads the encoder's own pooling of that block (the
    layout whisper_pooled builds), on a real window with pauses."""
    if not WEIGHTS.is_file():
        pytest.fail(f"{WEIGHTS} is missing: run `python scripts/convert_whisper.py` (scripts/test.sh does)")
    import soundfile as sf

    x, _ = sf.read(Path(__file__).resolve().parents[1] / "scripts" / "sample.flac", dtype="float32")
    segs = [x[:WINDOW_SAMPLES], x[SR:SR + WINDOW_SAMPLES]]
    enc = WhisperEncoder()
    d = {"whisper": whisper_pooled(enc, segs)}
    for block in ("block2", "block4"):
        for how in POOLINGS:
            want = enc.features(np.stack(segs), LAYERS.index(block) + 1, (how,))[:, -1]
            np.testing.assert_allclose(family(d, f"whisper:{block}:{how}"), want, atol=1e-5)
    np.testing.assert_array_equal(family(d, "whisper:block3"), family(d, "whisper:block3:mean"))
