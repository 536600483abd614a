"""`specmon score` streams files block by block: the same samples and exactly the same window
results as reading and scoring the whole file at once, whatever the block sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from monitor.audio import AudioReader, load_audio
from monitor.features import HOP, SAMPLE_RATE, WINDOW_SAMPLES, n_frames_for, window_ends
from monitor.scorer import Scorer
from monitor.scoring import WindowStream, score_file, score_signal, warm_up
from monitor.windows import Gate
from tests.conftest import pick


def as_tuples(results) -> list[tuple]:
    return [(r.start_s, r.end_s, r.score, r.label, r.rms_dbfs, r.voiced) for r in results]


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer()


@pytest.fixture(scope="module")
def speech(speech_dir: Path, manifest_rows) -> np.ndarray:
    """About 50 s of real speech (four speakers, negative and neutral) with pauses between clips."""
    clips = (pick(manifest_rows, "ravdess-05", "anger", 4) + pick(manifest_rows, "tess-OAF", "neutral", 6)
             + pick(manifest_rows, "emodb-11", "sadness", 4)
             + pick(manifest_rows, "casia-wangzhe", "fear", 4))
    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    x = np.concatenate([np.concatenate([load_audio(speech_dir / r["path"]), pause]) for r in clips])
    assert x.shape[0] > 45 * SAMPLE_RATE  # several STFT blocks of 16 s
    return x


@pytest.fixture(scope="module")
def wav48(tmp_path_factory, speech: np.ndarray) -> Path:
    """The speech as a 48 kHz stereo float WAV (the channels differ slightly)."""
    y = soxr.resample(speech, SAMPLE_RATE, 48_000)
    path = tmp_path_factory.mktemp("stream") / "speech48.wav"
    sf.write(path, np.stack([y, 0.8 * y], axis=1).astype(np.float32), 48_000, subtype="FLOAT")
    return path


def test_blocks_are_the_one_shot_resampling(wav48: Path) -> None:
    """Reading in blocks gives bit for bit the samples of decoding the whole file, averaging its
    channels and resampling it in one go, for any block size."""
    data, rate = sf.read(wav48, dtype="float32", always_2d=True)
    one_shot = soxr.resample(data.mean(axis=1), rate, SAMPLE_RATE, quality="HQ")
    assert np.array_equal(load_audio(wav48), one_shot)
    for block in (1000, 4096, 48_000, 1 << 20):
        with AudioReader(wav48) as r:
            parts = list(r.blocks(block))
        assert len(parts) > 1 or block == 1 << 20
        assert np.array_equal(np.concatenate(parts), one_shot), block


def test_streamed_file_scores_equal_whole_file(wav48: Path, scorer: Scorer) -> None:
    """score_file (what `specmon score` runs) equals score_signal on the whole decoded file,
    exactly, for several read block sizes, strides and a gate that leaves pauses unscored."""
    x = load_audio(wav48)
    for stride, gate in ((1.0, Gate()), (0.25, Gate(-30.0, 0.5))):
        want = as_tuples(score_signal(x, scorer, stride, gate))
        assert len(want) > (x.shape[0] / SAMPLE_RATE - 5) / stride
        assert any(w[2] is None for w in want) == (gate.floor_dbfs == -30.0)
        for block in (777, 4096, 65_536):
            got = score_file(wav48, scorer, stride, gate, block_frames=block)
            assert got.error is None and not got.warnings
            assert as_tuples(got.results) == want, (stride, block)


@pytest.mark.parametrize("seconds", [2.0, WINDOW_SAMPLES / SAMPLE_RATE, 4.5, 33.3])
def test_window_stream_any_chunking(speech: np.ndarray, scorer: Scorer, seconds: float) -> None:
    """Chunks of random sizes (1 sample to 40 s, STFT blocks from 1 frame up) give the whole
    signal's windows: the looped short clip, the exact one-window clip, the tail window."""
    x = speech[: int(seconds * SAMPLE_RATE)]
    want = as_tuples(score_signal(x, scorer, 0.5))
    rng = np.random.default_rng(int(seconds * 10))
    for block_frames in (1, 37, 512):
        ws = WindowStream(scorer, 0.5, block_frames=block_frames)
        got, i = [], 0
        while i < x.shape[0]:
            n = int(rng.choice([1, HOP - 1, 5000, 40 * SAMPLE_RATE]))
            got += ws.push(x[i : i + n])
            i += n
        got += ws.finish()
        assert as_tuples(got) == want, block_frames


def test_memory_does_not_grow_with_length(scorer: Scorer) -> None:
    """Ten minutes pushed in 5-s chunks: the stream holds about one STFT block (16 s of columns and
    samples, ~2 MB), far below the 77 MB that the signal and its spectrogram would take."""
    import tracemalloc

    ws = WindowStream(scorer, 1.0, Gate(0.0, 1.0))  # gate everything out: no model calls needed
    rng = np.random.default_rng(0)
    chunk = (rng.standard_normal(5 * SAMPLE_RATE) * 0.1).astype(np.float32)
    n = 0
    warm_up()  # numba loads its kernels on first use: Python objects, not audio
    tracemalloc.start()
    try:
        for _ in range(120):
            n += len(ws.push(chunk))
        n += len(ws.finish())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == len(window_ends(n_frames_for(600 * SAMPLE_RATE), 31)) + 1  # + the tail window
    assert peak < 12e6, peak
