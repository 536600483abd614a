"""`specmon listen` on the real audio stack: PulseAudio null sink -> ALSA 'pulse' -> PortAudio.

Clips are played into the sink with paplay and captured from its monitor. These tests need the
stack (scripts/setup_audio.sh starts it); if it cannot be started they FAIL with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from live_support import REPO, SPECMON, concat_clips, model_for_tests, read_log, run_specmon
from waiting import wait_until

from monitor.csvlog import HEADER
from monitor.devices import choose_rate
from monitor.errors import SpecmonError
from monitor.features import SAMPLE_RATE
from monitor.scorer import Scorer
from monitor.scoring import score_signal

SETUP = REPO / "scripts" / "setup_audio.sh"
LABELS = {"negative", "neutral", "no-speech"}


def start_stack() -> None:
    r = subprocess.run(["bash", str(SETUP), "--no-install"], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        pytest.fail(f"audio stack unavailable ({SETUP.name} failed): {r.stderr.strip()}")


@pytest.fixture(scope="module")
def audio_stack() -> None:
    start_stack()
    r = run_specmon(["devices"])
    if r.returncode != 0 or "pulse" not in r.stdout:
        pytest.fail(f"PortAudio does not see the 'pulse' device: {r.stdout} {r.stderr}")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return model_for_tests(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory, manifest_rows, speech_dir) -> tuple[Path, np.ndarray]:
    """~10 s of speech (three RAVDESS clips) as a 16 kHz WAV for paplay."""
    x = concat_clips(manifest_rows, speech_dir, "ravdess", 3)
    p = tmp_path_factory.mktemp("clip") / "speech.wav"
    sf.write(p, x, 16000, subtype="PCM_16")
    y, _ = sf.read(p, dtype="float32")
    return p, y


def listen_proc(tmp_path: Path, model: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*SPECMON, "listen", "--device", "pulse", "--headless", "--model", str(model),
         "--csv", str(tmp_path / "live.csv"), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_rows(csv: Path, n: int, timeout: float) -> None:
    if not wait_until(lambda: csv.is_file() and len(csv.read_text().splitlines()) > n, timeout, 0.1):
        pytest.fail(f"{csv}: fewer than {n} rows after {timeout} s")


def wait_recorded(wav: Path, seconds: float, timeout: float) -> None:
    """Until `listen --record` has written `seconds` of 16-kHz float32 audio to `wav`."""
    size = 44 + seconds * SAMPLE_RATE * 4
    if not wait_until(lambda: wav.is_file() and wav.stat().st_size > size, timeout):
        pytest.fail(f"{wav}: less than {seconds} s recorded after {timeout} s")


def best_lag(rec: np.ndarray, x: np.ndarray) -> tuple[int, float]:
    """Offset of x inside rec by FFT cross-correlation, and the normalized correlation there."""
    n = 1 << int(np.ceil(np.log2(rec.shape[0] + x.shape[0])))
    c = np.fft.irfft(np.fft.rfft(rec, n) * np.conj(np.fft.rfft(x, n)), n)[: rec.shape[0]]
    lag = int(np.argmax(c))
    seg = rec[lag : lag + x.shape[0]]
    m = min(seg.shape[0], x.shape[0])
    r = float(np.dot(seg[:m], x[:m]) / (np.linalg.norm(seg[:m]) * np.linalg.norm(x[:m]) + 1e-12))
    return lag, r


@pytest.mark.parametrize("rate", [None, "48000"], ids=["16k", "48k-resampled"])
def test_capture_matches_offline(tmp_path: Path, audio_stack, model: Path, clip, rate) -> None:
    wav, x = clip
    rec = tmp_path / "rec.wav"
    extra = ["--duration", "14", "--record", str(rec)] + (["--rate", rate] if rate else [])
    proc = listen_proc(tmp_path, model, *extra)
    # Play once capture is delivering (half a second of it recorded), not after a fixed sleep: on a
    # busy machine the start alone can take longer, and the clip played before it went unheard.
    wait_recorded(rec, 0.5, timeout=20)
    subprocess.run(["paplay", str(wav)], check=True, timeout=30)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "dropped audio: 0.00 s" in out
    header, rows = read_log(tmp_path / "live.csv")
    assert header == HEADER and len(rows) >= 6
    assert {r["label"] for r in rows} <= LABELS

    # 1. The capture is faithful: the clip is found in the recording, sample-accurately correlated.
    y, sr = sf.read(rec, dtype="float32")
    assert sr == 16000
    lag, corr = best_lag(y, x)
    assert corr > 0.9, f"captured audio does not match the clip (correlation {corr:.2f})"

    # 2. Live scores = offline scores of the very audio the pipeline saw (its recording).
    scorer = Scorer(model)
    want = {f"{r.start_s:.3f}": r for r in score_signal(y, scorer)}
    for row in rows:
        w = want.get(row["start_s"])
        if w is None:  # only the offline tail window has no live twin
            continue
        assert row["label"] == w.label or abs(float(row["voiced"]) - w.voiced) < 0.02
        if row["score"] and w.score is not None:
            # The recording is float WAV: exactly the audio the pipeline scored.
            assert abs(float(row["score"]) - w.score) <= 1e-3, (row, w)

    # 3. ...and agree with `specmon score` on the original clip, aligned by the found offset.
    placed = np.zeros(max(y.shape[0], lag + x.shape[0]), np.float32)
    placed[lag : lag + x.shape[0]] = x
    ref = {f"{r.start_s:.3f}": r for r in score_signal(placed, scorer)}
    inside = [r for r in rows
              if float(r["start_s"]) * 16000 >= lag
              and float(r["end_s"]) * 16000 <= lag + x.shape[0]]
    assert len(inside) >= 4, "too few windows lay inside the played clip"
    assert all(r["label"] != "no-speech" for r in inside)
    diffs = [abs(float(r["score"]) - ref[r["start_s"]].score) for r in inside]
    print(f"corr={corr:.3f} lag={lag} max|live-offline|={max(diffs):.4f} n={len(diffs)}")
    # Through the sound server (48 kHz sink, soxr-vhq resampling both ways) the clip arrives
    # slightly changed (correlation ~0.99); scores move by up to ~0.03 for that. With PulseAudio's
    # default speex resampler they moved by up to 0.18: setup_audio.sh picks soxr-vhq.
    assert max(diffs) <= 0.1, diffs
    live_mean = np.mean([float(r["score"]) for r in inside])
    off_mean = np.mean([w.score for w in score_signal(x, scorer) if w.score is not None])
    assert abs(live_mean - off_mean) <= 0.25


def test_device_lost_and_back(tmp_path: Path, audio_stack, model: Path) -> None:
    """Killing the sound server mid-capture = unplugging the microphone: the session keeps going,
    says so, reconnects with backoff once the server is back, and the gap shows in offset_s."""
    proc = listen_proc(tmp_path, model, "--duration", "17")
    try:
        wait_rows(tmp_path / "live.csv", 2, timeout=15)
        subprocess.run(["pulseaudio", "--kill"], check=False)
        time.sleep(2.5)
        start_stack()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        start_stack()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "audio input lost" in err and "audio input back after" in err
    assert "device gaps: 1" in out
    _, rows = read_log(tmp_path / "live.csv")
    ends = [float(r["end_s"]) for r in rows]
    steps = np.diff(ends)
    assert steps.max() > 5.0, f"no gap visible in the offsets: {ends}"  # >= 4 s refill + the gap
    assert ends[-1] > ends[int(np.argmax(steps))], "no rows after the reconnect"


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 0, "terminated"),
                                             (signal.SIGINT, 130, "interrupted")])
def test_signal_stops_cleanly(tmp_path: Path, audio_stack, model: Path, sig, code, word) -> None:
    proc = listen_proc(tmp_path, model)
    try:
        wait_rows(tmp_path / "live.csv", 1, timeout=15)
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert f"({word})" in out and "windows:" in out and "dropped audio:" in out
    assert "Traceback" not in err
    data = (tmp_path / "live.csv").read_text()
    assert data.endswith("\n")
    assert all(len(line.split(",")) == len(HEADER) for line in data.splitlines())


def test_no_microphone_exit_2(tmp_path: Path, model: Path) -> None:
    """No sound server reachable = no input device: one line with how to pick one, exit 2."""
    env = {**os.environ, "PULSE_SERVER": "unix:/nonexistent/specmon"}
    r = run_specmon(["listen", "--headless", "--model", str(model), "--csv",
                     str(tmp_path / "x.csv")], env=env, timeout=60)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("specmon")]
    assert len(lines) == 1 and "no microphone" in lines[0]
    assert "specmon devices" in lines[0] and "--device" in lines[0] and "--input" in lines[0]
    assert not (tmp_path / "x.csv").exists()


def test_devices_lists_rates(audio_stack) -> None:
    r = run_specmon(["devices"])
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.rstrip().endswith("pulse"))
    assert "16" in line.split()[2].split("/") and "48" in line.split()[2].split("/")
    assert "ALSA lib" not in r.stderr


def test_rate_choice() -> None:
    """A device without 16 kHz is opened at its default rate (then resampled)."""
    assert choose_rate(lambda r: True, 48000, None) == 16000
    assert choose_rate(lambda r: r in (44100, 48000), 48000, None) == 48000
    assert choose_rate(lambda r: r == 44100, 48000, None) == 44100
    with pytest.raises(SpecmonError):
        choose_rate(lambda r: False, 48000, None)
    with pytest.raises(SpecmonError):
        choose_rate(lambda r: r == 48000, 48000, 16000)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_stopped_while_waiting_for_the_device(tmp_path: Path, model: Path, sig, code) -> None:
    """--wait-device with no sound server: Ctrl-C while it waits is 130 (as anywhere else), SIGTERM
    (systemd stopping the unit) 0; no trace, and no empty log left behind."""
    env = {**os.environ, "PULSE_SERVER": "unix:/nonexistent/specmon"}
    csv = tmp_path / "w.csv"
    proc = subprocess.Popen([*SPECMON, "listen", "--headless", "--wait-device", "forever",
                             "--model", str(model), "--csv", str(csv)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # the first "waiting for the input device" line
        assert "waiting for the input device" in line, line
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err and out == ""
    assert not csv.exists()


def test_device_gap_recorded_at_its_true_size(tmp_path: Path, audio_stack, model: Path) -> None:
    """The sound server is killed for a few seconds. The gap in offset_s must be the real outage:
    from the last sample before it to the first after (silence timeout, retries and the restart
    included). Checked against the system clock: each row's time_utc (anchored once, at the first
    audio) must be the time its window's last sample arrived, which the test sees as the moment the
    row appears in the file, before the gap and after it alike; no re-anchoring may hide a
    mis-sized gap."""
    from datetime import datetime

    csv = tmp_path / "live.csv"
    proc = listen_proc(tmp_path, model, "--duration", "24")
    seen: dict[str, float] = {}  # row's start_s -> system time it was first seen in the file

    def poll_rows() -> None:
        if csv.is_file():
            for line in csv.read_text().splitlines()[1:]:
                f = line.split(",")
                if len(f) == len(HEADER):
                    seen.setdefault(f[2], time.time())

    def watch(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            poll_rows()
            time.sleep(0.02)

    try:
        end = time.monotonic() + 20
        while len(seen) < 3 and time.monotonic() < end:
            watch(0.1)
        assert len(seen) >= 3, "no rows before the outage"
        t_kill = time.time()
        subprocess.run(["pulseaudio", "--kill"], check=False)
        watch(3.0)
        start_stack()
        t_back = time.time()
        while proc.poll() is None:
            watch(0.1)
        poll_rows()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        start_stack()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "clock:" not in err, err  # no re-anchoring was needed
    assert "device gaps: 1" in out, out
    _, rows = read_log(csv)
    starts = [float(r["start_s"]) for r in rows]
    jump = int(np.argmax(np.diff(starts)))
    after = rows[jump + 1 :]
    assert after, "no rows after the reconnect"
    gap_at = float(rows[jump]["end_s"])
    gap_end = float(after[0]["start_s"])  # the first sample after the gap
    # The outage as the system clock saw it: the gap starts when the server was killed (the last
    # buffers arrive just before) and lasts at least as long as the server was down.
    utc = [datetime.fromisoformat(r["time_utc"].replace("Z", "+00:00")).timestamp() for r in rows]
    anchor = utc[0] - float(rows[0]["end_s"])  # system time of offset 0
    assert -1.0 <= t_kill - (anchor + gap_at) <= 1.5, (t_kill, anchor + gap_at)
    assert anchor + gap_end >= t_back - 0.5, (anchor + gap_end, t_back)
    # Every row's time_utc is when its audio arrived (it is written within a loop pass of that),
    # after the gap as before it: a gap recorded short or long would shift every later row.
    lag = [seen[r["start_s"]] - t for r, t in zip(rows, utc, strict=True)]
    print(f"gap {gap_end - gap_at:.2f} s (server down {t_back - t_kill:.2f} s); row lags "
          f"before {max(lag[: jump + 1]):.3f} s, after {min(lag[jump + 1 :]):.3f}.."
          f"{max(lag[jump + 1 :]):.3f} s")
    assert all(-0.25 <= d <= 1.0 for d in lag), lag
