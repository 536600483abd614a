"""Window prosody (monitor/prosody.py): what it measures, that each frame is computed once without
changing a bit, and that `specmon score` and `listen` give a prosody-head model's scores exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor import prosody as P
from monitor.audio import load_audio
from monitor.features import HOP, SAMPLE_RATE, WINDOW_SAMPLES, loop_to_window
from monitor.scorer import Scorer
from monitor.scoring import WindowStream, score_signal
from tests.conftest import pick
from tests.live_support import model_for_tests, prosody_model


def vowel(f0: float, formants=(700, 1200, 2600), seconds: float = 4.1, glide: float = 0.0,
          seed: int = 0) -> np.ndarray:
    """A glottal pulse train (F0 gliding by `glide` semitones) through three resonators."""
    from scipy.signal import lfilter

    n = int(seconds * SAMPLE_RATE)
    f = f0 * 2 ** (glide * np.arange(n) / n / 12)
    phase = np.cumsum(f) / SAMPLE_RATE
    x = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    for fc in formants:
        r = np.exp(-np.pi * 80 / SAMPLE_RATE)
        x = lfilter([1.0], [1, -2 * r * np.cos(2 * np.pi * fc / SAMPLE_RATE), r * r], x)
    x += np.random.default_rng(seed).standard_normal(n) * 1e-4
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def named(v: np.ndarray) -> dict[str, float]:
    return dict(zip(P.NAMES, v.tolist(), strict=True))


def test_pitch_contour_and_formants_of_a_vowel() -> None:
    """F0 within half a semitone, its glide as a rising slope, F1-F3 within 12 %, nearly all voiced."""
    for f0 in (110.0, 220.0):
        v = named(P.window_prosody(vowel(f0)[:WINDOW_SAMPLES]))
        st = 12 * np.log2(f0 / 27.5)
        assert abs(v["f0_p50"] - st) < 0.5, (f0, v["f0_p50"], st)
        assert v["f0_range20_80"] < 0.5 and v["voiced_share"] > 0.9
        for j, fc in zip((1, 2, 3), (700, 1200, 2600), strict=True):
            assert abs(v[f"F{j}_freq_mean"] - fc) / fc < 0.12, (f0, j, v[f"F{j}_freq_mean"])
    rising = named(P.window_prosody(vowel(150.0, glide=6.0)[:WINDOW_SAMPLES]))
    assert rising["f0_range20_80"] > 2.0 and rising["f0_rise_mean"] > 0.5


def test_silence_and_noise_are_not_voiced() -> None:
    for x in (np.zeros(WINDOW_SAMPLES, np.float32),
              (np.random.default_rng(1).standard_normal(WINDOW_SAMPLES) * 0.1).astype(np.float32)):
        v = P.window_prosody(x)
        assert named(v)["voiced_share"] < 0.05 and np.all(np.isfinite(v))
        assert named(v)["voiced_segments_per_s"] < 1.0


def syllables(rate: float, gain: float = 1.0, seconds: float = 4.1) -> np.ndarray:
    """A 150-Hz vowel switched on and off `rate` times a second (on 60 % of each cycle)."""
    x = vowel(150.0, seconds=seconds).astype(np.float64)
    t = np.arange(len(x)) / SAMPLE_RATE
    on = (t * rate) % 1.0 < 0.6
    x = x * on + np.random.default_rng(2).standard_normal(len(x)) * 1e-4
    return (gain * x).astype(np.float32)[:WINDOW_SAMPLES]


def test_rhythm_counts_syllables_and_their_lengths() -> None:
    """Loudness peaks and voiced segments follow the syllable rate; segment lengths the duty cycle
    (within a frame's 40 ms, which blurs each edge)."""
    for rate in (2.0, 4.0):
        v = named(P.window_prosody(syllables(rate)))
        assert abs(v["loudness_peaks_per_s"] - rate) <= 0.5, (rate, v["loudness_peaks_per_s"])
        assert abs(v["voiced_segments_per_s"] - rate) <= 0.5, (rate, v["voiced_segments_per_s"])
        assert abs(v["voiced_length_mean"] - 0.6 / rate) < 0.05, (rate, v["voiced_length_mean"])
        assert abs(v["unvoiced_length_mean"] - 0.4 / rate) < 0.05, (rate, v["unvoiced_length_mean"])
    steady = named(P.window_prosody(vowel(150.0)[:WINDOW_SAMPLES]))
    assert steady["loudness_peaks_per_s"] <= 0.5 and steady["loudness_range20_80"] < 0.1


def test_peak_count_is_scipy_find_peaks_count() -> None:
    """Our loudness peak count (kept off scipy.signal for start-up time) counts as find_peaks does,
    plateaus and ties included."""
    from scipy.signal import find_peaks

    rng = np.random.default_rng(0)
    for _ in range(500):
        x = np.round(rng.random(int(rng.integers(3, 60))) * rng.choice([3, 10, 1000])) / 7
        prom = max(0.1 * float(x.max() - x.min()), 1e-6)
        assert P._peak_count(x, prom) == len(find_peaks(x, prominence=prom)[0]), (x, prom)


def test_loudness_does_not_follow_the_microphone_gain() -> None:
    """The loudness contour is relative to the window's loudest frame: a gain of 1/20 leaves it."""
    a, b = (named(P.window_prosody(syllables(3.0, g))) for g in (1.0, 0.05))
    for k in [n for n in P.NAMES if n.startswith("loudness")]:
        assert abs(a[k] - b[k]) <= 1e-3 * max(1.0, abs(a[k])), (k, a[k], b[k])
    louder = named(P.window_prosody(syllables(3.0)))
    assert louder["loudness_range20_80"] > 0.3  # on/off: a contour that moves


@pytest.fixture(scope="module")
def speech(speech_dir: Path, manifest_rows) -> np.ndarray:
    """About 30 s of real speech of two speakers, with pauses."""
    rows = pick(manifest_rows, "ravdess-05", "anger", 4) + pick(manifest_rows, "emodb-11", "sadness", 4)
    pause = np.zeros(SAMPLE_RATE // 3, np.float32)
    return np.concatenate([np.concatenate([load_audio(speech_dir / r["path"]), pause]) for r in rows])


def test_each_frame_once_changes_nothing(speech: np.ndarray) -> None:
    """Overlapping windows at several strides, through one WindowProsody (frames reused), equal each
    window computed alone bit for bit; only the frames wholly inside a window are used."""
    x = loop_to_window(speech)
    for stride in (7, 31, 62):
        wp = P.WindowProsody()
        starts = list(range(0, len(x) - WINDOW_SAMPLES + 1, stride * HOP))
        assert len(starts) > 3
        for a in starts:
            w = x[a:a + WINDOW_SAMPLES]
            np.testing.assert_array_equal(wp(w, a), P.window_prosody(w, a))
            js = P.frame_range(a)
            assert js[0] * P.HOP >= a and js[-1] * P.HOP + P.F0_FRAME <= a + WINDOW_SAMPLES
            assert (js[0] - 1) * P.HOP < a and (js[-1] + 1) * P.HOP + P.F0_FRAME > a + WINDOW_SAMPLES
    # The grid is the signal's: the same samples at another offset give other frames.
    w = x[:WINDOW_SAMPLES]
    assert not np.array_equal(P.window_prosody(w, 0), P.window_prosody(w, 80))


def test_recent_samples_keep_the_newest_in_order() -> None:
    x = np.arange(100_000, dtype=np.float32)
    r = P.RecentSamples(WINDOW_SAMPLES)
    rng = np.random.default_rng(0)
    i = 0
    while i < len(x):
        n = int(rng.choice([1, 511, 4000, 70_000]))
        r.push(x[i:i + n])
        i = min(len(x), i + n)
        if i >= WINDOW_SAMPLES:
            np.testing.assert_array_equal(r.last(), x[i - WINDOW_SAMPLES:i])
    assert r.total == len(x)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    return model_for_tests(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def prosody_scorer(tmp_path_factory, base_model: Path) -> Scorer:
    return Scorer(prosody_model(tmp_path_factory.mktemp("prosody"), base_model))


def test_a_prosody_head_needs_and_uses_prosody(prosody_scorer: Scorer, speech: np.ndarray) -> None:
    from monitor.features import normalize, stft_logpower

    assert prosody_scorer.needs_prosody
    spec, _ = stft_logpower(speech[:WINDOW_SAMPLES])
    w = normalize(spec)
    p = P.window_prosody(speech[:WINDOW_SAMPLES])
    with pytest.raises(ValueError, match="prosody"):
        prosody_scorer.score_normalized(w)
    a = prosody_scorer.score_normalized(w, p)
    b = prosody_scorer.score_normalized(w, p * 1.1)
    assert a != b and 0.0 <= a <= 1.0


def test_streamed_prosody_scores_equal_whole_signal(prosody_scorer: Scorer, base_model: Path,
                                                    speech: np.ndarray) -> None:
    """`specmon score`'s WindowStream, fed in ragged chunks, equals score_signal on the whole
    signal exactly with a prosody head, tail window included; and the head changes the scores."""
    want = [(r.start_s, r.score) for r in score_signal(speech, prosody_scorer, 0.5)]
    rng = np.random.default_rng(3)
    for block_frames in (1, 37, 512):
        ws = WindowStream(prosody_scorer, 0.5, block_frames=block_frames)
        got, i = [], 0
        while i < speech.shape[0]:
            n = int(rng.choice([1, HOP - 1, 5000, 20 * SAMPLE_RATE]))
            got += ws.push(speech[i:i + n])
            i += n
        got += ws.finish()
        assert [(r.start_s, r.score) for r in got] == want, block_frames
    other = [r.score for r in score_signal(speech, Scorer(base_model), 0.5)]
    assert other != [s for _, s in want]


def test_live_pipeline_equals_score_exactly(tmp_path: Path, prosody_scorer: Scorer,
                                            speech: np.ndarray) -> None:
    """`listen`'s pipeline on a replayed file gives score_signal's scores bit for bit with a
    prosody head (RecentSamples and the segment's frame grid are the window's samples)."""
    import soundfile as sf

    from monitor.events import LiveStatus
    from monitor.pipeline import ListenConfig, Pipeline
    from monitor.source import FileSource

    class Keep:
        def __init__(self) -> None:
            self.windows = []

        def on_window(self, w, status) -> None:
            self.windows.append(w.result)

        def on_tick(self, status) -> None:
            pass

        def close(self, status) -> None:
            pass

    wav = tmp_path / "s.wav"
    sf.write(wav, speech, SAMPLE_RATE, subtype="FLOAT")
    sink = Keep()
    Pipeline(FileSource(wav, realtime=False), prosody_scorer, [sink],
             LiveStatus(device="x", sample_rate=SAMPLE_RATE, csv_path="", threshold=0.5),
             ListenConfig()).run()
    want = {r.start_s: r.score for r in score_signal(speech, prosody_scorer)}
    assert len(sink.windows) >= len(want) - 1 >= 20
    assert any(r.score is not None for r in sink.windows)
    for r in sink.windows:
        assert r.score == want[r.start_s], r.start_s
