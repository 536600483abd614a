"""`specmon listen --input FILE`: the live pipeline on a file, checked against `specmon score`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from live_support import REPO, SPECMON, concat_clips, model_for_tests, read_log, run_specmon

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
        (["--input", "{tmp}/odd.wav"], "implausible audio header (1 Hz, 64 channel(s))"),
        (["--input", "{tmp}/wide.wav"], "implausible audio header (16000 Hz, 16 channel(s))"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path: Path, model: Path, args: list[str],
                                   message: str) -> None:
    wav = tmp_path / "ok.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not audio")
    (tmp_path / "bad.tflite").write_bytes(b"junk")
    (tmp_path / "foreign.csv").write_text("a,b\n1,2\n")
    # As `specmon score` refuses them: a header claiming 1 Hz and 64 channels, and 16 channels.
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "odd.wav", (rng.standard_normal((300, 64)) * 0.1).astype(np.float32), 1)
    sf.write(tmp_path / "wide.wav", np.zeros((16000 * 5, 16), np.float32), 16000)
    args = [a.format(tmp=tmp_path, wav=wav) for a in args]
    if "--model" not in args:
        args += ["--model", str(model)]
    r = run_specmon(["listen", "--headless", "--fast", *args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("specmon:")]
    assert len(lines) == 1 and lines[0].startswith("specmon: error: ") and message in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.csv").exists()


def test_telephone_audio_replayed_with_a_warning(tmp_path: Path, speech: np.ndarray,
                                                model: Path) -> None:
    tel = tmp_path / "phone.wav"
    sf.write(tel, soxr.resample(speech, 16000, 8000), 8000, subtype="PCM_16")
    out = tmp_path / "t.csv"
    r = run_specmon(["listen", "--input", str(tel), "--fast", "--csv", str(out), "--headless",
                     "--model", str(model)])
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if ln.startswith("specmon: warning:")]
    assert len(warn) == 1 and "telephone" in warn[0] and "4 kHz" in warn[0], r.stderr
    assert len(read_log(out)[1]) >= 8


def _wait_lines(path_of, n: int, proc: subprocess.Popen, timeout: float = 60) -> Path:
    """Wait until the file path_of() names holds more than n lines; returns its path."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        p = path_of()
        if p is not None and p.is_file() and len(p.read_text().splitlines()) > n:
            return p
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    pytest.fail(f"fewer than {n} lines after {timeout} s")


@pytest.mark.parametrize("layout", ["csv", "csv-dir"])
def test_sighup_reopens_the_log(tmp_path: Path, speech: np.ndarray, model: Path,
                                layout: str) -> None:
    """logrotate: the log is renamed, SIGHUP, and the next rows go to a fresh file (with a header)
    at the original path; a SIGHUP without a rename continues the same file. Between the files no
    row is lost, doubled or torn: together they are exactly the windows of the whole replay."""
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech, 16000, subtype="FLOAT")
    logs = tmp_path / "logs"
    where = ["--csv", str(tmp_path / "live.csv")] if layout == "csv" else ["--csv-dir", str(logs)]
    proc = subprocess.Popen([*SPECMON, "listen", "--input", str(wav), "--headless", "--model",
                             str(model), *where], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        def current() -> Path | None:
            if layout == "csv":
                return tmp_path / "live.csv"
            days = sorted(logs.glob("specmon-*.csv")) if logs.is_dir() else []
            return days[-1] if days else None

        log = _wait_lines(current, 3, proc)  # header + 3 rows
        rotated = log.with_name(log.name + ".1")
        log.rename(rotated)  # what logrotate does (its `create` mode) ...
        os.kill(proc.pid, signal.SIGHUP)  # ... and then its postrotate script
        _wait_lines(lambda: log, 2, proc)  # the new file: header + 2 rows
        os.kill(proc.pid, signal.SIGHUP)  # not moved this time: the same file goes on
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "end of input" in out
    assert f"log: reopened on SIGHUP: new file {log}" in err
    assert f"log: reopened on SIGHUP: appending to {log}" in err
    rows = []
    for f in (rotated, log):
        data = f.read_text()
        assert data.endswith("\n") and data.count("time_utc,") == 1  # one header, whole lines
        header, part = read_log(f)
        assert header == HEADER and part
        assert all(None not in r.values() and r["model_id"] for r in part)
        rows += part
    starts = [float(r["start_s"]) for r in rows]
    assert np.allclose(np.diff(starts), 0.992, atol=1e-6), starts  # none lost, none doubled
    assert len(rows) == len(offline(speech, model)) - 1  # every window of the replay


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 512 KiB tmpfs (tests and CI run as root)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_full_disk_while_recording_stops_and_keeps_both_files(small_disk: Path, tmp_path: Path,
                                                              speech: np.ndarray,
                                                              model: Path) -> None:
    """--record fills the disk (64 kB per second of audio): one line, exit 2, the summary; the CSV
    holds whole rows and the recording is a readable WAV of exactly the audio that was scored."""
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech, 16000, subtype="FLOAT")
    out, rec = small_disk / "live.csv", small_disk / "rec.wav"
    r = run_specmon(["listen", "--input", str(wav), "--fast", "--headless", "--model", str(model),
                     "--csv", str(out), "--record", str(rec)])
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("specmon:")]
    assert len(lines) == 1 and lines[0].startswith("specmon: error: ") and "disk full" in lines[0]
    assert "Traceback" not in r.stderr
    assert "listened" in r.stdout and "stopped by an error" in r.stdout
    data = out.read_text()
    assert data.endswith("\n")
    header, rows = read_log(out)
    assert header == HEADER and len(rows) >= 2
    assert all(len(line.split(",")) == len(HEADER) for line in data.splitlines())
    y, sr = sf.read(rec, dtype="float32")
    assert sr == 16000 and 6 * 16000 < y.shape[0] < speech.shape[0]
    assert np.array_equal(y, speech[: y.shape[0]])  # float WAV: exactly the audio scored
    assert float(rows[-1]["end_s"]) * 16000 <= y.shape[0]  # every logged window was recorded
    want = offline(y, model)
    for row in rows:
        score, label = want[row["start_s"]]
        assert row["label"] == label


def test_ctrl_c_during_start_up_exits_130_and_keeps_the_log(tmp_path: Path, speech: np.ndarray,
                                                            model: Path) -> None:
    """Ctrl-C anywhere in start-up (imports, model load, numba compiling the kernels with an empty
    cache, the log being opened): exit 130, nothing on stdout or stderr, an existing log byte for
    byte as it was, and no new log left behind."""
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech, 16000, subtype="FLOAT")
    kept = tmp_path / "kept.csv"
    assert run_specmon(["listen", "--input", str(wav), "--fast", "--headless", "--model",
                        str(model), "--duration", "6", "--csv", str(kept)]).returncode == 0
    before = kept.read_bytes()

    def start(log: Path, cache: Path) -> subprocess.Popen:
        return subprocess.Popen([*SPECMON, "listen", "--input", str(wav), "--headless",
                                 "--model", str(model), "--csv", str(log)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, NUMBA_CACHE_DIR=str(cache)))

    # A cold start-up's length: until the (real-time) session's log appears.
    t0 = time.monotonic()
    proc = start(tmp_path / "probe.csv", tmp_path / "numba-probe")
    while not (tmp_path / "probe.csv").exists() and time.monotonic() - t0 < 300:
        time.sleep(0.005)
    whole = time.monotonic() - t0
    proc.kill()
    proc.communicate()
    codes = []
    for i, share in enumerate((0.2, 0.4, 0.6, 0.8, 0.95)):
        cache = tmp_path / f"numba-{i}"
        for log in (kept, tmp_path / "new.csv"):
            proc = start(log, cache / log.stem)
            time.sleep(share * whole)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=120)
            # -SIGINT: the signal came before Python's own handler (a loaded machine).
            assert proc.returncode in (130, -signal.SIGINT), (share, log, proc.returncode, err)
            assert err == "", (share, log, err)
            if out:  # late (start-up times vary on a loaded machine): the session had begun, says
                # it was interrupted, and only appended to the existing log
                assert "(interrupted)" in out, out
                assert kept.read_bytes().startswith(before), share
                kept.write_bytes(before)
                (tmp_path / "new.csv").unlink(missing_ok=True)
            else:
                assert kept.read_bytes() == before, share
                assert not (tmp_path / "new.csv").exists(), share
                codes.append(share)
    assert len(codes) >= 4 and min(codes) == 0.2, codes  # interrupted inside start-up
