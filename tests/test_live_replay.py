"""`specmon listen --input FILE`: the live pipeline on a file, checked against `specmon score`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from live_support import concat_clips, model_for_tests, read_log, run_specmon

from monitor.csvlog import HEADER
from monitor.scorer import Scorer
from monitor.scoring import score_signal


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return model_for_tests(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def speech(manifest_rows, speech_dir) -> np.ndarray:
    """About 13 s of speech: four RAVDESS clips end to end."""
    x = concat_clips(manifest_rows, speech_dir, "ravdess", 4)
    assert x.shape[0] > 8 * 16000
    return x


def offline(x: np.ndarray, model: Path, stride: float = 1.0) -> dict[str, tuple]:
    res = score_signal(x, Scorer(model), stride_s=stride)
    return {f"{r.start_s:.3f}": (r.score, r.label) for r in res}


def live(tmp_path: Path, audio: Path, model: Path, *extra: str) -> list[dict]:
    out = tmp_path / "live.csv"
    r = run_specmon(["listen", "--input", str(audio), "--fast", "--csv", str(out), "--headless",
                     "--model", str(model), *extra])
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "end of input" in r.stdout and "dropped audio: 0.00 s" in r.stdout
    header, rows = read_log(out)
    assert header == HEADER
    return rows


@pytest.mark.parametrize("stride", [1.0, 0.5])
def test_replay_matches_offline_scores(tmp_path: Path, speech: np.ndarray, model: Path,
                                       stride: float) -> None:
    wav = tmp_path / "speech.flac"
    sf.write(wav, speech, 16000, subtype="PCM_16")
    x, _ = sf.read(wav, dtype="float32")  # what both paths read
    want = offline(x, model, stride)
    rows = live(tmp_path, wav, model, "--stride", str(stride))
    assert len(rows) >= 8
    assert len(rows) == len(want) - 1  # offline adds one tail window; live only the schedule
    for row in rows:
        score, label = want[row["start_s"]]
        assert row["label"] == label
        if score is None:
            assert row["score"] == ""
        else:
            assert abs(float(row["score"]) - score) <= 1e-3, row
    scored = [float(r["score"]) for r in rows if r["score"]]
    assert scored, "no window of the speech was scored"
    # smoothed is the EMA (alpha 0.3) of the scores so far
    ema = None
    for r in rows:
        if r["score"]:
            s = float(r["score"])
            ema = s if ema is None else ema + 0.3 * (s - ema)
        assert (r["smoothed"] == "") == (ema is None)
        if ema is not None:
            assert abs(float(r["smoothed"]) - ema) < 2e-4


@pytest.mark.parametrize("rate", [48000, 44100])
def test_replay_at_device_rates_resamples(tmp_path: Path, speech: np.ndarray, model: Path,
                                          rate: int) -> None:
    """A 44.1/48 kHz stream goes through soxr.ResampleStream; offline resamples the whole file
    with soxr too, so the windows agree closely."""
    hi = soxr.resample(speech, 16000, rate, quality="HQ").astype(np.float32)
    wav = tmp_path / f"speech{rate}.wav"
    sf.write(wav, np.stack([hi, hi], axis=1), rate, subtype="FLOAT")  # stereo: mixdown too
    want = offline(soxr.resample(hi, rate, 16000, quality="HQ").astype(np.float32), model)
    rows = live(tmp_path, wav, model)
    assert len(rows) == len(want) - 1
    diffs = [abs(float(r["score"]) - want[r["start_s"]][0]) for r in rows if r["score"]]
    assert diffs and max(diffs) <= 0.02, diffs


def test_duration_and_record(tmp_path: Path, speech: np.ndarray, model: Path) -> None:
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech, 16000, subtype="FLOAT")
    rec = tmp_path / "rec.wav"
    out = tmp_path / "d.csv"
    r = run_specmon(["listen", "--input", str(wav), "--fast", "--duration", "7", "--csv", str(out),
                     "--headless", "--model", str(model), "--record", str(rec)])
    assert r.returncode == 0, r.stderr
    assert "--duration 7 s reached" in r.stdout
    _, rows = read_log(out)
    assert 1 <= len(rows) <= 4 and float(rows[-1]["end_s"]) <= 8.0
    y, sr = sf.read(rec, dtype="float32")
    assert sr == 16000 and 7 * 16000 <= y.shape[0] < 8 * 16000
    assert np.max(np.abs(y - speech[: y.shape[0]])) < 1e-4  # PCM_16 rounding only


def test_no_audio_written_without_record(tmp_path: Path, speech: np.ndarray, model: Path) -> None:
    wav = tmp_path / "in.wav"
    sf.write(wav, speech[: 6 * 16000], 16000)
    run = tmp_path / "cwd"
    run.mkdir()
    r = run_specmon(["listen", "--input", str(wav), "--fast", "--headless", "--model", str(model)],
                    cwd=run)
    assert r.returncode == 0, r.stderr
    made = sorted(p.name for p in run.iterdir())
    assert len(made) == 1 and made[0].startswith("specmon-") and made[0].endswith(".csv"), made


def test_appends_to_existing_log(tmp_path: Path, speech: np.ndarray, model: Path) -> None:
    wav = tmp_path / "in.wav"
    sf.write(wav, speech[: 6 * 16000], 16000)
    out = tmp_path / "a.csv"
    for _ in range(2):
        r = run_specmon(["listen", "--input", str(wav), "--fast", "--headless", "--model",
                         str(model), "--csv", str(out)])
        assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.count("time_utc,") == 1 and len(text.splitlines()) == 1 + 2 * 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "/nonexistent.wav"], "no such file"),
        (["--input", "{tmp}/bad.wav"], "not a readable audio file"),
        (["--input", "{wav}", "--csv", "/nonexistent-dir/x.csv"], "cannot write the CSV log"),
        (["--input", "{wav}", "--csv", "{tmp}/foreign.csv"], "different header"),
        (["--input", "{wav}", "--model", "/nonexistent.tflite"], "model file not found"),
        (["--input", "{wav}", "--model", "{tmp}/bad.tflite"], "sidecar"),
        (["--input", "{wav}", "--device", "pulse"], "cannot be combined"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path: Path, model: Path, args: list[str],
                                   message: str) -> None:
    wav = tmp_path / "ok.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not audio")
    (tmp_path / "bad.tflite").write_bytes(b"junk")
    (tmp_path / "foreign.csv").write_text("a,b\n1,2\n")
    args = [a.format(tmp=tmp_path, wav=wav) for a in args]
    if "--model" not in args:
        args += ["--model", str(model)]
    r = run_specmon(["listen", "--headless", "--fast", *args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("specmon:")]
    assert len(lines) == 1 and lines[0].startswith("specmon: error: ") and message in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.csv").exists()
