"""The stats head's window statistics and its fusion with the network in the scorer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from monitor.errors import SpecmonError
from monitor.features import SAMPLE_RATE, WINDOW_SAMPLES, normalize, stft_logpower
from monitor.prosody import window_prosody
from monitor.sample_features import SampleFeatures
from monitor.scorer import DEFAULT_MODEL, FAST_MODEL, Scorer, read_model_info
from monitor.window_stats import (
    N_MELS,
    N_STATS,
    Linear,
    StatsHead,
    fuse,
    head_inputs,
    window_stats,
)

MEDIAN_LOG_F0 = 3 * N_MELS  # index of the median log F0 among the statistics


def _window(x: np.ndarray) -> np.ndarray:
    spec, _ = stft_logpower(x.astype(np.float32))
    return normalize(spec[:, :125].copy())


def _harmonic(f0: float, seconds: float = WINDOW_SAMPLES / SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE) + 1) / SAMPLE_RATE
    # a voice-like source: 20 harmonics falling 6 dB per octave, syllable-like loudness
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 21))
    return 0.1 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_pitch_statistic_follows_the_fundamental(f0: float) -> None:
    stats = window_stats(_window(_harmonic(f0)))
    assert stats.shape == (N_STATS,) and stats.dtype == np.float32
    assert abs(np.exp(stats[MEDIAN_LOG_F0]) / f0 - 1.0) < 0.08


def test_statistics_are_finite_for_silence_and_noise() -> None:
    rng = np.random.default_rng(0)
    for x in (np.zeros(WINDOW_SAMPLES), 0.01 * rng.standard_normal(WINDOW_SAMPLES)):
        assert np.all(np.isfinite(window_stats(_window(x))))


def test_statistics_do_not_depend_on_memory_layout() -> None:
    # the live window is a view into a ring, the offline one a slice: the scores must agree exactly
    w = _window(_harmonic(150.0))
    assert np.array_equal(window_stats(w), window_stats(np.asfortranarray(w)))


@pytest.mark.parametrize("silent_from", [0.3, 0.5, 0.65])
def test_statistics_of_a_window_with_digital_silence_do_not_depend_on_blas_threads(
        silent_from: float) -> None:
    # A sound server's monitor gives exact zeros before and after speech: the window's silent
    # columns are identical, and tie at the quantile that picks the active frames. `listen` runs
    # BLAS on one thread and `specmon score` may run it on two: a BLAS product rounded identical
    # columns apart by their place in its tiles, so the two scored such a window up to 0.02 apart.
    x = _harmonic(150.0)
    x[int(silent_from * x.shape[0]):] = 0.0
    w = _window(x)
    with threadpool_limits(1):
        one = window_stats(w)
    with threadpool_limits(2):
        two = window_stats(w)
    assert np.array_equal(one, two)


def test_a_head_sure_past_floats_range_fuses_to_0_or_1_without_a_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exp's overflow warning would fail the test
        got = fuse(np.array([0.5, 0.5, 0.5]), np.array([-4000.0, 4000.0, 0.0]))
    assert got[0] < 1e-30 and got[1] == 1.0 and got[2] == 0.5


def test_scorer_fuses_the_network_and_the_head(tmp_path: Path) -> None:
    scorer = Scorer(DEFAULT_MODEL)
    assert scorer.head is not None, "the shipped model carries a stats head"
    x = _harmonic(180.0)
    w = _window(x)
    # the window's sample features as `score` and `listen` compute them (prosody, then the states
    # of the encoder the sidecar names, if any)
    p = SampleFeatures(scorer.head_encoder)(x[:WINDOW_SAMPLES], 0)
    inputs = head_inputs(w, p if scorer.needs_prosody else None)
    expect = fuse(scorer.cnn_score(w), scorer.head.logit(inputs))
    assert scorer.score_normalized(w, p) == pytest.approx(expect, abs=1e-12)
    # a head that always says 'negative' moves the score up, one that says 'not' moves it down
    up = StatsHead(scorer.head.mean, scorer.head.scale, 0 * scorer.head.coef, 4.0, 1.0)
    down = StatsHead(scorer.head.mean, scorer.head.scale, 0 * scorer.head.coef, -4.0, 1.0)
    assert fuse(scorer.cnn_score(w), up.logit(inputs)) > scorer.cnn_score(w) or \
        scorer.cnn_score(w) > 0.98
    assert fuse(scorer.cnn_score(w), down.logit(inputs)) < scorer.cnn_score(w) or \
        scorer.cnn_score(w) < 0.02


def _broken_copy(tmp_path: Path) -> Path:
    model = tmp_path / "m.tflite"
    shutil.copy(DEFAULT_MODEL, model)
    meta = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    meta["stats_head"]["coef"] = meta["stats_head"]["coef"][:-1]
    model.with_suffix(".json").write_text(json.dumps(meta))
    return model


def test_a_head_of_an_older_prosody_is_refused_with_what_to_do(tmp_path: Path) -> None:
    """A sidecar whose head takes the 23 prosody functionals of before is refused, saying why."""
    model = tmp_path / "m.tflite"
    shutil.copy(FAST_MODEL, model)
    meta = json.loads(FAST_MODEL.with_suffix(".json").read_text())
    for k in ("mean", "scale", "coef"):
        meta["stats_head"][k] = meta["stats_head"][k][:N_STATS + 23]
    meta["stats_head"]["statistics"] = N_STATS + 23
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(SpecmonError, match="before loudness and rhythm: retrain it"):
        Scorer(model)


def test_the_network_alone_is_read_past_a_head_on_other_inputs(tmp_path: Path) -> None:
    """Reusing a network for a head on other inputs (loco --networks-from after a prosody change):
    head=False reads the sidecar without its head, and the network scores as before."""
    model = _broken_copy(tmp_path)
    with pytest.raises(SpecmonError, match="not a valid stats head"):
        read_model_info(model)
    assert read_model_info(model, head=False).head is None
    net, shipped = Scorer(model, head=False), Scorer(DEFAULT_MODEL)
    assert net.head is None and shipped.head is not None
    w = np.random.default_rng(0).normal(-40, 20, (513, 125)).astype(np.float32)
    assert net.cnn_score(w) == shipped.cnn_score(w)


def test_a_broken_stats_head_is_refused_in_one_line(tmp_path: Path, speech_dir: Path) -> None:
    model = _broken_copy(tmp_path)
    with pytest.raises(SpecmonError, match="not a valid stats head"):
        Scorer(model)
    p = subprocess.run([sys.executable, "-m", "monitor.cli", "score", "--model", str(model),
                        str(speech_dir / "tess/OAF/OAF_doll_happy.flac")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "not a valid stats head" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def _gated_copy(tmp_path: Path) -> tuple[Path, StatsHead]:
    """The fast model with its head turned into a gated one: the shipped regression for high
    arousal, its negation for low arousal, and a gate on the first statistic."""
    model = tmp_path / "gated.tflite"
    shutil.copy(FAST_MODEL, model)
    meta = json.loads(FAST_MODEL.with_suffix(".json").read_text())
    h = StatsHead.from_dict(meta["stats_head"])
    gate_coef = np.zeros_like(h.coef)
    gate_coef[0] = 2.0
    gated = StatsHead(h.mean, h.scale, h.coef, h.intercept, h.c, Linear(gate_coef, 0.5),
                      Linear(-h.coef, -h.intercept))
    meta["stats_head"] = gated.to_dict()
    model.with_suffix(".json").write_text(json.dumps(meta))
    return model, gated


def test_a_gated_head_mixes_its_two_regressions_by_the_gate(tmp_path: Path) -> None:
    """The logit is g * high + (1 - g) * low, g = sigmoid(gate); the sidecar carries all three, and
    the scorer that reads it back scores as the head it was written from."""
    model, gated = _gated_copy(tmp_path)
    scorer = Scorer(model)
    assert scorer.head.gate is not None
    x = _harmonic(180.0)
    w = _window(x)
    inputs = head_inputs(w, window_prosody(x[:WINDOW_SAMPLES]))
    z = (inputs - gated.mean) / gated.scale
    g = 1.0 / (1.0 + np.exp(-(2.0 * z[0] + 0.5)))
    high = float(z @ gated.coef + gated.intercept)
    assert gated.logit(inputs) == pytest.approx(g * high - (1 - g) * high, rel=1e-9)
    assert 0.01 < g < 0.99 and high != 0, "the gate mixes both sides here"
    assert scorer.head.logit(inputs) == pytest.approx(gated.logit(inputs), rel=1e-12)
    plain = Scorer(FAST_MODEL)
    assert scorer.head.logit(inputs) != pytest.approx(plain.head.logit(inputs))


def _multinomial_copy(tmp_path: Path, negative: list[str]) -> Path:
    """The fast model with a multinomial head: anger and sadness both score as the shipped
    regression, neutral 0, so P(negative) / P(neutral) = 2 exp(shipped logit) when both are
    negative."""
    model = tmp_path / "multinomial.tflite"
    shutil.copy(FAST_MODEL, model)
    meta = json.loads(FAST_MODEL.with_suffix(".json").read_text())
    h = meta["stats_head"]
    one = {"coef": h.pop("coef"), "intercept": h.pop("intercept")}
    h.update(emotions={"anger": one, "sadness": one,
                       "neutral": {"coef": [0.0] * len(one["coef"]), "intercept": 0.0}},
             negative=negative)
    model.with_suffix(".json").write_text(json.dumps(meta))
    return model


def test_a_multinomial_head_sums_its_negative_emotions(tmp_path: Path) -> None:
    """The logit is log P(negative emotions) - log P(the rest): here the shipped logit + log 2."""
    scorer = Scorer(_multinomial_copy(tmp_path, ["anger", "sadness"]))
    plain = Scorer(FAST_MODEL)
    x = _harmonic(180.0)
    inputs = head_inputs(_window(x), window_prosody(x[:WINDOW_SAMPLES]))
    assert scorer.head.emotions is not None and scorer.head.coef is None
    assert scorer.head.logit(inputs) == pytest.approx(plain.head.logit(inputs) + np.log(2), rel=1e-9)


@pytest.mark.parametrize("negative", [[], ["anger", "sadness", "neutral"], ["fear"]])
def test_a_multinomial_head_without_a_proper_negative_side_is_refused_in_one_line(
        tmp_path: Path, negative: list[str]) -> None:
    with pytest.raises(SpecmonError, match="not a valid stats head.*some, not all, of its emotions"):
        Scorer(_multinomial_copy(tmp_path, negative))


@pytest.mark.parametrize("change, message", [
    ({"emotions": []}, "emotions must be an object"),
    ({"negative": "anger"}, "negative emotions a list"),
    ({"coef": [0.0]}, "both regressions per emotion and a single one"),
    ({"emotions": {"anger": {"coef": [[0.0, 1.0]], "intercept": 0.0}}}, "not one flat list"),
])
def test_a_malformed_multinomial_sidecar_is_refused_in_one_line(tmp_path: Path, change: dict,
                                                               message: str) -> None:
    model = _multinomial_copy(tmp_path, ["anger", "sadness"])
    meta = json.loads(model.with_suffix(".json").read_text())
    meta["stats_head"].update(change)
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(SpecmonError, match=f"not a valid stats head.*{message}"):
        Scorer(model)


def test_negative_emotions_without_regressions_per_emotion_are_refused(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    shutil.copy(FAST_MODEL, model)
    meta = json.loads(FAST_MODEL.with_suffix(".json").read_text())
    meta["stats_head"]["negative"] = ["anger"]
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(SpecmonError, match="not a valid stats head.*no regression per emotion"):
        Scorer(model)


@pytest.mark.parametrize("drop", ["gate", "low"])
def test_a_gated_head_missing_a_part_is_refused_in_one_line(tmp_path: Path, drop: str) -> None:
    model, _ = _gated_copy(tmp_path)
    meta = json.loads(model.with_suffix(".json").read_text())
    del meta["stats_head"][drop]
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(SpecmonError, match="not a valid stats head.*gate without its low-arousal"):
        Scorer(model)
