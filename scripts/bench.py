#!/usr/bin/env python
"""specmon benchmark suite: our code side by side with the obvious alternatives, as ratios.

    python scripts/bench.py                 # full run (~3-5 min), writes bench.json
    python scripts/bench.py --quick         # smoke run (~1 min)
    python scripts/bench.py --only stft,model --json /tmp/b.json

Rows (see ROWS): batch STFT, rolling update, one window through the model, live CPU per audio
second, `specmon score` throughput, start-up, memory over a long stream, window -> CSV latency.
Every row reports absolute numbers and, where there is something to compare with, a ratio; ratios
are what to compare between machines and between loaded/quiet runs (the load is recorded).

Test audio: clips from the shared speech corpus (SPECMON_DATA or ../shared/data/speech, read in
place, never copied) concatenated, else a synthetic speech-like signal. Temporary files go to a
temp directory under /tmp and are deleted at the end. Runs unchanged on a Raspberry Pi.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(REPO))

from monitor.features import (  # noqa: E402
    HOP,
    N_FFT,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    RollingSTFT,
    hamming,
    normalize,
    stft_logpower,
)

ROWS = ["stft", "rolling", "model", "cpu", "score", "startup", "memory", "latency", "report"]
TARGETS = {
    "stft": "ours >= 1.0x the fastest",
    "rolling": ">= 50x cheaper",
    "model": "int8 <= 1 ms, >= 1.5x faster than float32",
    "cpu": ">= 20x less CPU; <= 2% of one core",
    "score": ">= 500x real time",
    "startup": "warm <= 2 s (cold reported)",
    "memory": "RSS growth <= 5 MB; peak <= 200 MB",
    "latency": "<= 50 ms",
    "report": "90 days of 1-s rows <= 10 s",
}


# -- helpers ---------------------------------------------------------------------------------------
def timeit(fn, min_time: float = 0.5, min_reps: int = 5, warmup: int = 2) -> dict:
    """Per-call wall times of fn(): median, min, p90 (ms) over >= min_reps calls / >= min_time s."""
    for _ in range(warmup):
        fn()
    ts: list[float] = []
    t_end = time.perf_counter() + min_time
    while len(ts) < min_reps or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return {
        "median_ms": 1e3 * statistics.median(ts),
        "min_ms": 1e3 * ts[0],
        "p90_ms": 1e3 * ts[int(0.9 * (len(ts) - 1))],
        "n": len(ts),
    }


def cpu_load() -> dict:
    """Load average and the busiest other processes, so a reader knows what the run competed with."""
    out: dict = {"cpus": os.cpu_count()}
    try:
        out["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        import psutil

        procs = list(psutil.process_iter(["pid", "name"]))
        for p in procs:
            try:
                p.cpu_percent(None)
            except psutil.Error:
                pass
        time.sleep(0.5)
        busy = []
        for p in procs:
            try:
                c = p.cpu_percent(None)
            except psutil.Error:
                continue
            if c >= 10 and p.pid != os.getpid():
                busy.append({"pid": p.pid, "name": p.info["name"], "cpu_percent": round(c)})
        out["busy_processes"] = sorted(busy, key=lambda d: -d["cpu_percent"])[:5]
        out["cpu_percent_total"] = psutil.cpu_percent(0.5)
    except ImportError:
        pass
    return out


def data_dir() -> Path:
    return Path(os.environ.get("SPECMON_DATA", REPO.parent / "shared" / "data" / "speech"))


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Synthetic speech-like signal: voiced syllables (gliding f0, formant-ish harmonics, 4 Hz
    syllable rate) with pauses and a -60 dB noise floor."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.3 * t) + 20 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = np.zeros(n)
    for k in range(1, 30):
        fk = k * 140
        amp = math.exp(-((fk - 500) / 400) ** 2) + 0.5 * math.exp(-((fk - 1500) / 500) ** 2) + 0.05
        x += amp / k * np.sin(k * phase)
    env = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None) ** 2
    pauses = np.repeat(rng.random(n // SAMPLE_RATE + 1) > 0.2, SAMPLE_RATE)[:n]
    x = 0.3 * x / np.max(np.abs(x)) * env * pauses + 1e-3 * rng.standard_normal(n)
    return x.astype(np.float32)


def test_audio(seconds: float, source: list) -> np.ndarray:
    """`seconds` of speech at 16 kHz: corpus clips joined (looped if needed), else synthetic."""
    d = data_dir()
    man = d / "manifest.csv"
    if man.is_file():
        from monitor.audio import load_audio

        with open(man, newline="") as fh:
            rows = list(csv.DictReader(fh))
        rng = np.random.default_rng(1)
        rng.shuffle(rows)
        parts, total = [], 0
        for r in rows:
            if total >= min(seconds, 120.0) * SAMPLE_RATE:
                break
            try:
                x = load_audio(d / r["path"])
            except Exception:  # noqa: BLE001 - a bad clip is skipped, not fatal for a benchmark
                continue
            parts.append(x)
            total += x.shape[0]
        if parts:
            source.append(f"corpus {d} ({len(parts)} clips, looped)")
            x = np.concatenate(parts)
            reps = -(-int(seconds * SAMPLE_RATE) // x.shape[0])
            return np.tile(x, reps)[: int(seconds * SAMPLE_RATE)].astype(np.float32)
    source.append("synthetic speech-like")
    return speech_like(seconds)


def write_wav(path: Path, x: np.ndarray) -> Path:
    import soundfile as sf

    sf.write(str(path), x, SAMPLE_RATE, subtype="PCM_16")
    return path


def specmon_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("specmon")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from monitor.cli import main; sys.exit(main())"]


class CsvTail:
    """Follows a CSV log being written by another process: row count and last row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self.last = ""
        self._pos = 0
        self._buf = b""

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read()
        except FileNotFoundError:
            return self.rows
        self._pos += len(data)
        lines = (self._buf + data).split(b"\n")
        self._buf = lines.pop()
        for ln in lines:
            if ln and not ln.startswith(b"time_utc"):
                self.rows += 1
                self.last = ln.decode("utf-8", "replace")
        return self.rows


MODEL: list[Path] = []  # the int8 model every child process is given (set in main)


def listen_cmd(wav: Path, csv_path: Path, fast: bool) -> list[str]:
    return specmon_cmd() + ["listen", "--input", str(wav), "--fast" if fast else "--realtime",
                            "--headless", "--csv", str(csv_path), "--model", str(MODEL[0])]


def resolve_models(arg: str | None, tmp: Path) -> tuple[Path, Path, str]:
    """(int8 model, float32 model, note). Falls back to a freshly exported untrained model."""
    from monitor.scorer import DEFAULT_MODEL

    p = Path(arg) if arg else DEFAULT_MODEL
    note = "shipped model" if not arg else "--model"
    if not p.is_file():
        p = Path("/tmp/untrained.tflite")
        note = f"untrained model ({DEFAULT_MODEL.name} not present)"
        if not p.is_file():
            subprocess.run([sys.executable, "-m", "model.quantize", "--untrained", str(p)],
                           cwd=REPO, check=True, capture_output=True)
    f32 = p.with_name(p.stem + "-float32.tflite")
    # Snapshot both: the shipped model may be replaced by a training run during the benchmark.
    snap = tmp / "models"
    snap.mkdir(exist_ok=True)
    out = []
    for m in (p, f32):
        if m.is_file():
            for f in (m, m.with_suffix(".json")):
                shutil.copy2(f, snap / f.name)
            out.append(snap / m.name)
        else:
            out.append(m)
    return out[0], out[1], f"{note}: {p}"


# -- rows ------------------------------------------------------------------------------------------
def bench_stft(x: np.ndarray, quick: bool) -> dict:
    """60 s -> 513 x N log-power, identical framing; ours vs numpy.fft, scipy, librosa."""
    from scipy import signal

    win = hamming().astype(np.float32)
    win64 = hamming()
    x32 = x.astype(np.float32)
    mt = 0.5 if quick else 2.0

    def ours():
        return stft_logpower(x32)[0]

    def ours_serial():
        from monitor import features as F

        x64 = np.ascontiguousarray(x32, dtype=np.float64)
        n = F.n_frames_for(x64.shape[0])
        spec, _ = F._stft_serial(x64, n, HOP, F._WIN, *F._TABLES, F.BATCH_LANES)
        F._to_db(spec)
        return spec.T

    def np_fft():
        fr = np.lib.stride_tricks.sliding_window_view(x32, N_FFT)[::HOP]
        X = np.fft.rfft(fr * win, axis=1)
        return (10.0 * np.log10(X.real ** 2 + X.imag ** 2 + 1e-10)).T.astype(np.float32)

    scale = win64.sum()  # scipy.signal.stft divides by sum(window)

    def scipy_stft():
        _, _, Z = signal.stft(x32, window=win64, nperseg=N_FFT, noverlap=N_FFT - HOP,
                              boundary=None, padded=False)
        Z *= scale
        return (10.0 * np.log10(Z.real ** 2 + Z.imag ** 2 + 1e-10)).astype(np.float32)

    cands = {"ours": ours, "ours (serial kernel)": ours_serial, "numpy.fft": np_fft,
             "scipy.signal.stft": scipy_stft}
    try:
        import librosa

        def librosa_stft():
            S = librosa.stft(x32, n_fft=N_FFT, hop_length=HOP, window="hamming", center=False)
            return (10.0 * np.log10(np.abs(S) ** 2 + 1e-10)).astype(np.float32)

        cands["librosa.stft"] = librosa_stft
    except ImportError:
        cands["librosa.stft"] = None
    ref = ours()
    res: dict = {"audio_s": x.shape[0] / SAMPLE_RATE, "shape": list(ref.shape), "impl": {}}
    for name, fn in cands.items():
        if fn is None:
            res["impl"][name] = "n/a"
            continue
        out = fn()
        loud = ref > -60  # compare where there is signal; float32 rounding differs below
        err = float(np.max(np.abs(out[:, : ref.shape[1]] - ref)[loud])) if out.shape == ref.shape \
            else float("nan")
        t = timeit(fn, min_time=mt)
        res["impl"][name] = {**t, "max_abs_diff_db": err, "shape_ok": list(out.shape) ==
                             list(ref.shape)}
    others = [v["median_ms"] for k, v in res["impl"].items()
              if isinstance(v, dict) and not k.startswith("ours")]
    fastest = min(others)
    res["fastest_other"] = [k for k, v in res["impl"].items() if isinstance(v, dict)
                            and v["median_ms"] == fastest][0]
    res["ratio"] = fastest / res["impl"]["ours"]["median_ms"]
    res["ratio_serial"] = fastest / res["impl"]["ours (serial kernel)"]["median_ms"]
    res["ok"] = res["ratio"] >= 1.0
    return res


def bench_rolling(x: np.ndarray, quick: bool) -> dict:
    """RollingSTFT.push(512 samples) vs recomputing the 4-s window with scipy every hop."""
    from scipy import signal

    win64 = hamming()
    roll = RollingSTFT()
    roll.push(x[:WINDOW_SAMPLES])
    pos = [WINDOW_SAMPLES]
    n = x.shape[0]

    def push():
        p = pos[0]
        if p + HOP > n:
            p = 0
        roll.push(x[p: p + HOP])
        pos[0] = p + HOP

    def recompute():
        p = pos[0]
        if p + HOP > n:
            p = WINDOW_SAMPLES
        seg = x[p - WINDOW_SAMPLES + HOP: p + HOP]
        _, _, Z = signal.stft(seg, window=win64, nperseg=N_FFT, noverlap=N_FFT - HOP,
                              boundary=None, padded=False)
        pos[0] = p + HOP
        return 10.0 * np.log10(np.abs(Z) ** 2 + 1e-10)

    mt = 0.3 if quick else 1.5
    a = timeit(push, min_time=mt, warmup=10)
    b = timeit(recompute, min_time=mt)
    ratio = b["median_ms"] / a["median_ms"]
    return {"push_512": a, "scipy_recompute_4s": b, "ratio": ratio, "ok": ratio >= 50,
            "hops_per_s": SAMPLE_RATE / HOP,
            "push_cpu_share_of_core": a["median_ms"] * 1e-3 * SAMPLE_RATE / HOP}


def _interp(path: Path, threads: int = 1, **kw):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads, **kw)
    it.allocate_tensors()
    return it


def _invoke_timer(it, x: np.ndarray):
    inp = it.get_input_details()[0]
    buf = np.zeros(inp["shape"], inp["dtype"])
    if inp["dtype"] == np.float32:
        buf[0, :, :, 0] = x
    else:
        s, z = inp["quantization"]
        buf[0, :, :, 0] = np.clip(np.rint(x / s + z), -128, 127)

    def fn():
        it.set_tensor(inp["index"], buf)
        it.invoke()

    return fn


def bench_model(int8: Path, f32: Path, x: np.ndarray, quick: bool, keras: bool) -> dict:
    """One window: int8 vs float32 TFLite (invoke alone and Scorer.score end to end), Keras."""
    from monitor.scorer import Scorer

    mt = 0.5 if quick else 2.0
    win = stft_logpower(x[:WINDOW_SAMPLES])[0]
    nwin = normalize(win)
    res: dict = {"invoke": {}, "scorer_score": {}, "parts": {}}
    for name, p in (("int8", int8), ("float32", f32)):
        if not p.is_file():
            res["invoke"][name] = "n/a (no file)"
            continue
        res["invoke"][name] = timeit(_invoke_timer(_interp(p), nwin), min_time=mt, warmup=20)
        sc = Scorer(p)
        res["scorer_score"][name] = timeit(lambda sc=sc: sc.score(win), min_time=mt, warmup=20)
    res["parts"]["normalize"] = timeit(lambda: normalize(win), min_time=mt / 2)
    if int8.is_file():
        sc = Scorer(int8)
        s, z = sc._in_q

        def quant():
            q = np.rint(nwin / s + z)
            sc._buf[0, :, :, 0] = np.clip(q, -128, 127)

        res["parts"]["quantize_numpy"] = timeit(quant, min_time=mt / 2)
    # Interpreter options (the "int8 is no faster" investigation).
    from ai_edge_litert.interpreter import OpResolverType

    variants = {}
    for name, p in (("int8", int8), ("float32", f32)):
        if not p.is_file():
            continue
        for label, kw in (
            ("threads=1", {"threads": 1}),
            ("threads=2", {"threads": 2}),
            ("no XNNPACK (builtin kernels)", {
                "threads": 1,
                "experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}),
        ):
            variants[f"{name} {label}"] = timeit(_invoke_timer(_interp(p, **kw), nwin),
                                                 min_time=mt / 2, warmup=10)["median_ms"]
    res["variants_median_ms"] = variants
    if keras:
        try:
            res["keras"] = _keras_window_time(nwin, mt)
        except Exception as e:  # noqa: BLE001
            res["keras"] = f"n/a ({type(e).__name__}: {e})"
    i8 = res["invoke"].get("int8")
    fl = res["invoke"].get("float32")
    if isinstance(i8, dict) and isinstance(fl, dict):
        res["ratio_invoke"] = fl["median_ms"] / i8["median_ms"]
        res["ratio_scorer"] = (res["scorer_score"]["float32"]["median_ms"]
                               / res["scorer_score"]["int8"]["median_ms"])
        res["ok"] = (res["scorer_score"]["int8"]["median_ms"] <= 1.0
                     and res["ratio_invoke"] >= 1.5)
    return res


_KERAS = {}


def _keras_model():
    if "m" not in _KERAS:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from model.cnn import build_cnn

        _KERAS["m"] = build_cnn()
    return _KERAS["m"]


def _keras_window_time(nwin: np.ndarray, mt: float) -> dict:
    m = _keras_model()
    xb = nwin.reshape(1, *nwin.shape, 1)
    return timeit(lambda: m(xb, training=False), min_time=mt, warmup=5)


def baseline_cpu_per_audio_s(x: np.ndarray, n_windows: int, use_keras: bool, f32: Path) -> dict:
    """The straightforward pipeline: every stride, librosa STFT of the last 4 s from scratch,
    log power, normalize, model. CPU time (all threads) per second of audio at stride 1 s."""
    import librosa

    if use_keras:
        m = _keras_model()

        def infer(w):
            # model.predict() is what a straightforward Keras pipeline calls per window.
            return float(m.predict(w.reshape(1, *w.shape, 1), verbose=0)[0, 0])
        what = "librosa + Keras predict()"
    else:
        it = _interp(f32)
        inp, out = it.get_input_details()[0], it.get_output_details()[0]

        def infer(w):
            it.set_tensor(inp["index"], w.reshape(1, *w.shape, 1).astype(np.float32))
            it.invoke()
            return float(it.get_tensor(out["index"])[0, 0])
        what = "librosa + float32 TFLite"
    stride = 31 * HOP  # the live stride of 1 s is 31 hops

    def window(i):
        end = WINDOW_SAMPLES + (i % max(1, (x.shape[0] - WINDOW_SAMPLES) // stride)) * stride
        seg = x[end - WINDOW_SAMPLES: end]
        S = librosa.stft(seg, n_fft=N_FFT, hop_length=HOP, window="hamming", center=False)
        return infer(normalize((10.0 * np.log10(np.abs(S) ** 2 + 1e-10)).astype(np.float32)))

    for i in range(3):
        window(i)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n_windows):
        window(i)
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    audio = n_windows * stride / SAMPLE_RATE
    return {"what": what, "windows": n_windows, "cpu_s": cpu, "wall_s": wall,
            "cpu_per_audio_s": cpu / audio}


def _sample_child(proc, tail: CsvTail, period: float, on_sample=None) -> list[dict]:
    """Sample a child's CPU time and RSS (psutil) and the CSV rows until it exits."""
    import psutil

    ps = psutil.Process(proc.pid)
    samples = []
    while proc.poll() is None:
        try:
            ct = ps.cpu_times()
            mem = ps.memory_info().rss
            hwm = None
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for ln in f:
                        if ln.startswith("VmHWM:"):
                            hwm = int(ln.split()[1]) * 1024
            except OSError:
                pass
        except psutil.Error:
            break
        s = {"t": time.perf_counter(), "cpu": ct.user + ct.system, "rss": mem, "hwm": hwm,
             "rows": tail.poll(), "last": tail.last}
        samples.append(s)
        if on_sample:
            on_sample(s)
        time.sleep(period)
    return samples


def _row_end_s(line: str) -> float | None:
    try:
        from monitor.csvlog import HEADER_LINE

        cols = HEADER_LINE.strip().split(",")
        return float(line.split(",")[cols.index("end_s")])
    except (ImportError, ValueError, IndexError):
        return None


def bench_cpu(wav: Path, audio_s: float, tmp: Path, x: np.ndarray, keras: bool,
              f32: Path, quick: bool) -> dict:
    """Whole live pipeline at real-time pace as a child process: CPU seconds per audio second."""
    import resource

    csvp = tmp / "cpu.csv"
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(listen_cmd(wav, csvp, fast=False), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=tmp)
    tail = CsvTail(csvp)
    samples = _sample_child(proc, tail, 0.25)
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    total_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    res: dict = {"audio_s": audio_s, "wall_s": wall, "returncode": proc.returncode,
                 "total_cpu_s_incl_startup": total_cpu,
                 "total_cpu_per_audio_s": total_cpu / audio_s}
    if proc.returncode != 0:
        res["stderr"] = err.decode()[-2000:]
    # Steady state: between the first sample with a window logged and the last sample.
    with_rows = [s for s in samples if s["rows"] >= 1]
    if len(with_rows) >= 2:
        a, b = with_rows[0], with_rows[-1]
        ea, eb = _row_end_s(a["last"]), _row_end_s(b["last"])
        if ea is not None and eb is not None and eb > ea:
            # audio elapsed between the samples ~ wall time (real-time pace)
            span = b["t"] - a["t"]
            res["steady_cpu_s"] = b["cpu"] - a["cpu"]
            res["steady_audio_s"] = span
            res["steady_cpu_per_audio_s"] = res["steady_cpu_s"] / span
    if proc.returncode != 0:
        raise RuntimeError(f"specmon listen failed: {res.get('stderr', '')[-300:]}")
    ours = res.get("steady_cpu_per_audio_s", res["total_cpu_per_audio_s"])
    res["percent_of_one_core"] = 100 * ours
    use_keras = keras
    if keras:
        try:
            _keras_model()
        except Exception:  # noqa: BLE001
            use_keras = False
    base = baseline_cpu_per_audio_s(x, 10 if quick else 40, use_keras, f32)
    res["baseline"] = base
    res["ratio"] = base["cpu_per_audio_s"] / ours
    if use_keras and f32.is_file():
        res["baseline_tflite"] = baseline_cpu_per_audio_s(x, 10 if quick else 40, False, f32)
        res["ratio_vs_tflite_baseline"] = res["baseline_tflite"]["cpu_per_audio_s"] / ours
    res["ok"] = res["ratio"] >= 20 and res["percent_of_one_core"] <= 2.0
    return res


def bench_score(x: np.ndarray, wav: Path, int8: Path, tmp: Path) -> dict:
    """`specmon score`: in-process score_signal, and the CLI end to end (start-up included)."""
    from monitor.scorer import Scorer
    from monitor.scoring import score_signal

    sc = Scorer(int8)
    score_signal(x[: 10 * SAMPLE_RATE], sc)
    dur = x.shape[0] / SAMPLE_RATE
    c0, t0 = time.process_time(), time.perf_counter()
    res = score_signal(x, sc)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    out = {"audio_s": dur, "windows": len(res), "in_process_wall_s": wall,
           "in_process_cpu_s": cpu, "x_realtime": dur / wall}
    t0 = time.perf_counter()
    p = subprocess.run(specmon_cmd() + ["score", str(wav), "--model", str(int8), "-o",
                                        str(tmp / "score.csv")], capture_output=True, cwd=tmp)
    cli = time.perf_counter() - t0
    out["cli_wall_s"] = cli
    out["cli_x_realtime"] = dur / cli
    out["cli_returncode"] = p.returncode
    out["ratio"] = out["x_realtime"]
    out["ok"] = out["x_realtime"] >= 500
    return out


def _first_row_time(cmd: list[str], csvp: Path, env: dict, cwd: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=cwd)
    tail = CsvTail(csvp)
    first = None
    while proc.poll() is None:
        if first is None and tail.poll() >= 1:
            first = time.perf_counter() - t0
        time.sleep(0.002)
    total = time.perf_counter() - t0
    if first is None and tail.poll() >= 1:
        first = total
    err = proc.stderr.read().decode()
    return {"first_row_s": first, "exit_s": total, "returncode": proc.returncode,
            **({"stderr": err[-1500:]} if proc.returncode else {})}


def bench_startup(tmp: Path, x: np.ndarray, reps: int) -> dict:
    """Start-up to the first CSV row of a one-window file replayed --fast (an upper bound on
    'ready to capture': it includes analysing 4 s of audio, a few ms); cold = empty numba cache."""
    wav = write_wav(tmp / "one_window.wav", x[: WINDOW_SAMPLES + HOP])
    cache = tmp / "numba-cold"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    runs = {}

    def run(label, env):
        csvp = tmp / f"startup-{label}.csv"
        if csvp.exists():
            csvp.unlink()
        return _first_row_time(listen_cmd(wav, csvp, fast=True), csvp, env, tmp)

    runs["cold (empty NUMBA_CACHE_DIR)"] = run("cold", env)
    warm = [run(f"warm{i}", env) for i in range(reps)]
    runs["warm (same cache dir)"] = min(warm, key=lambda r: r["first_row_s"] or 1e9)
    default = [run(f"default{i}", dict(os.environ)) for i in range(reps)]
    runs["warm (default cache location)"] = min(default, key=lambda r: r["first_row_s"] or 1e9)
    # Where the time goes, in a fresh interpreter (warm cache).
    code = (
        "import time,json;t=time.perf_counter();r={}\n"
        "import numpy;r['numpy']=time.perf_counter()-t;t=time.perf_counter()\n"
        "import numba;r['numba']=time.perf_counter()-t;t=time.perf_counter()\n"
        "import monitor.features as F;r['monitor.features']=time.perf_counter()-t\n"
        "t=time.perf_counter();F.RollingSTFT().push(numpy.zeros(1024))\n"
        "r['first kernel call (cache load)']=time.perf_counter()-t;t=time.perf_counter()\n"
        "import monitor.pipeline,monitor.source,monitor.csvlog,monitor.dashboard\n"
        "r['pipeline/source/csvlog/dashboard imports']=time.perf_counter()-t\n"
        "t=time.perf_counter();from monitor.scorer import Scorer;import sys;Scorer(sys.argv[1])\n"
        "r['Scorer() (litert import + load)']=time.perf_counter()-t;t=time.perf_counter()\n"
        "import typer;r['typer']=time.perf_counter()-t\n"
        "print(json.dumps(r))\n"
    )
    return {"runs": runs, "warm_s": runs["warm (same cache dir)"]["first_row_s"],
            "cold_s": runs["cold (empty NUMBA_CACHE_DIR)"]["first_row_s"],
            "breakdown": _breakdown(code, env)}


def _breakdown(code: str, env: dict) -> dict | str:
    from monitor.scorer import DEFAULT_MODEL

    m = DEFAULT_MODEL if DEFAULT_MODEL.is_file() else Path("/tmp/untrained.tflite")
    p = subprocess.run([sys.executable, "-c", code, str(m)], capture_output=True, env=env,
                       cwd=REPO, text=True)
    try:
        return {k: round(v, 4) for k, v in json.loads(p.stdout.strip().splitlines()[-1]).items()}
    except (ValueError, IndexError):
        return f"failed: {p.stderr[-500:]}"


def bench_memory(tmp: Path, x: np.ndarray, seconds: float) -> dict:
    """A long file replayed --fast through `specmon listen`: RSS at the first window vs the end."""
    import soundfile as sf

    wav = tmp / "long.wav"
    reps = -(-int(seconds * SAMPLE_RATE) // x.shape[0])
    with sf.SoundFile(str(wav), "w", SAMPLE_RATE, 1, subtype="PCM_16") as f:
        for _ in range(reps):
            f.write(x)
    audio_s = reps * x.shape[0] / SAMPLE_RATE
    csvp = tmp / "memory.csv"
    t0 = time.perf_counter()
    proc = subprocess.Popen(listen_cmd(wav, csvp, fast=True), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=tmp)
    tail = CsvTail(csvp)
    samples = _sample_child(proc, tail, 0.1)
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    wav.unlink()
    rows = tail.poll()
    res: dict = {"audio_s": audio_s, "wall_s": wall, "x_realtime": audio_s / wall,
                 "windows": rows, "returncode": proc.returncode}
    if proc.returncode:
        res["stderr"] = err.decode()[-1500:]
    live = [s for s in samples if s["rows"] >= 1]
    if len(live) >= 2:
        expected = max(rows, 1)
        early = [s for s in live if s["rows"] >= 0.02 * expected] or live
        base = early[0]["rss"]
        end = live[-1]["rss"]
        res["rss_first_window_mb"] = live[0]["rss"] / 2**20
        res["rss_at_2pct_mb"] = base / 2**20
        res["rss_end_mb"] = end / 2**20
        res["rss_growth_mb"] = (end - base) / 2**20
        hwm = [s["hwm"] for s in live if s["hwm"]]
        res["peak_rss_mb"] = (max(hwm) if hwm else max(s["rss"] for s in samples)) / 2**20
        res["ok"] = res["rss_growth_mb"] <= 5 and res["peak_rss_mb"] <= 200
    return res


def bench_latency(x: np.ndarray, tmp: Path, int8: Path) -> dict:
    """In-process live pipeline on a file at real-time pace: time from the moment a window's last
    sample is due (FileSource's clock) to its CSV row having been written."""
    from monitor.csvlog import CsvLog
    from monitor.events import LiveStatus
    from monitor.pipeline import ListenConfig, Pipeline
    from monitor.scorer import Scorer
    from monitor.source import FileSource

    wav = write_wav(tmp / "latency.wav", x)
    src = FileSource(wav, realtime=True)
    lat: list[float] = []

    class TimedCsv(CsvLog):
        def on_window(self, w, status):
            super().on_window(w, status)
            due = src._t0 + w.offset_s
            lat.append(time.monotonic() - due)

    csvp = tmp / "latency.csv"
    sc = Scorer(int8)
    st = LiveStatus(device=src.name, sample_rate=src.rate, csv_path=str(csvp),
                    threshold=sc.threshold)
    Pipeline(src, sc, [TimedCsv(csvp)], st, ListenConfig(gate=_nogate())).run()
    a = np.array(lat) * 1e3
    return {"windows": len(lat), "median_ms": float(np.median(a)),
            "p95_ms": float(np.percentile(a, 95)), "max_ms": float(a.max()),
            "ok": float(np.percentile(a, 95)) <= 50,
            "note": "includes up to LOOP_SLEEP_S (20 ms) of polling wait"}


def _nogate():
    from monitor.windows import Gate

    return Gate(floor_dbfs=-200.0, min_voiced=0.0)  # score every window: worst case


def _bench_report(tmp: Path, quick: bool) -> dict:
    """`specmon report` on synthetic day logs (scripts/bench_report.py): 90 days, quick 7."""
    sys.path.insert(0, str(REPO / "scripts"))
    from bench_report import bench_report

    r = bench_report(days=7 if quick else 90, reps=1 if quick else 3, tmp=tmp / "report")
    if quick:
        r["ok"] = None  # 7 days: the 90-day target does not apply
    return r


# -- report ----------------------------------------------------------------------------------------
def summary_rows(R: dict) -> list[tuple[str, str, str, str, str]]:
    """(row, ours, compared with, ratio, target/ok) strings for the table."""
    out = []

    def ok(r):
        v = r.get("ok") if isinstance(r, dict) else None
        return "n/a" if v is None else ("OK" if v else "MISS")

    r = R.get("stft")
    if isinstance(r, dict) and "impl" in r:
        im = r["impl"]
        oth = ", ".join(f"{k} {v['median_ms']:.1f}" if isinstance(v, dict) else f"{k} n/a"
                        for k, v in im.items() if not k.startswith("ours"))
        ser = im["ours (serial kernel)"]["median_ms"]
        out.append(("batch STFT 60 s", f"{im['ours']['median_ms']:.1f} ms (serial {ser:.1f})",
                    oth + " ms", f"{r['ratio']:.2f}x (serial {r['ratio_serial']:.2f}x)",
                    f"{TARGETS['stft']} {ok(r)}"))
    r = R.get("rolling")
    if isinstance(r, dict) and "ratio" in r:
        out.append(("rolling push 512", f"{1e3 * r['push_512']['median_ms']:.1f} us",
                    f"scipy 4-s recompute {r['scipy_recompute_4s']['median_ms']:.2f} ms",
                    f"{r['ratio']:.0f}x", f"{TARGETS['rolling']} {ok(r)}"))
    r = R.get("model")
    if isinstance(r, dict) and "ratio_invoke" in r:
        i, s = r["invoke"], r["scorer_score"]
        k = r.get("keras")
        kk = f", Keras {k['median_ms']:.2f}" if isinstance(k, dict) else ""
        out.append(("model, 1 window",
                    f"int8 invoke {i['int8']['median_ms']:.3f} / Scorer.score "
                    f"{s['int8']['median_ms']:.3f} ms",
                    f"float32 invoke {i['float32']['median_ms']:.3f} / Scorer.score "
                    f"{s['float32']['median_ms']:.3f}{kk} ms",
                    f"{r['ratio_invoke']:.2f}x invoke, {r['ratio_scorer']:.2f}x Scorer",
                    f"{TARGETS['model']} {ok(r)}"))
    r = R.get("cpu")
    if isinstance(r, dict) and "ratio" in r:
        b = r["baseline"]
        ex = (f"; vs librosa+f32 TFLite {r['ratio_vs_tflite_baseline']:.0f}x"
              if "ratio_vs_tflite_baseline" in r else "")
        out.append(("live CPU / audio s",
                    f"{r['percent_of_one_core']:.2f}% of a core (total incl. start-up "
                    f"{100 * r['total_cpu_per_audio_s']:.1f}%)",
                    f"{b['what']} {100 * b['cpu_per_audio_s']:.1f}%",
                    f"{r['ratio']:.0f}x{ex}", f"{TARGETS['cpu']} {ok(r)}"))
    r = R.get("score")
    if isinstance(r, dict) and "ratio" in r:
        out.append(("specmon score", f"{r['x_realtime']:.0f}x real time in-process "
                    f"(CLI incl. start-up {r['cli_x_realtime']:.0f}x)",
                    f"real time ({r['audio_s']:.0f} s audio)", f"{r['x_realtime']:.0f}x",
                    f"{TARGETS['score']} {ok(r)}"))
    r = R.get("startup")
    if isinstance(r, dict) and "warm_s" in r:
        w, c = r["warm_s"], r["cold_s"]
        bd = r.get("breakdown")
        slow = ""
        if isinstance(bd, dict):
            top = sorted(bd.items(), key=lambda kv: -kv[1])[:2]
            slow = "; slowest: " + ", ".join(f"{k} {v:.2f} s" for k, v in top)
        r["ok"] = w is not None and w <= 2.0
        out.append(("start-up", f"warm {w:.2f} s" if w else "failed",
                    (f"cold compile {c:.2f} s" if c else "cold failed") + slow, "-",
                    f"{TARGETS['startup']} {ok(r)}"))
    r = R.get("memory")
    if isinstance(r, dict) and "rss_growth_mb" in r:
        out.append(("memory, long stream", f"growth {r['rss_growth_mb']:+.1f} MB, peak "
                    f"{r['peak_rss_mb']:.0f} MB", f"{r['audio_s'] / 3600:.2f} h --fast "
                    f"({r['x_realtime']:.0f}x real time)", "-", f"{TARGETS['memory']} {ok(r)}"))
    r = R.get("latency")
    if isinstance(r, dict) and "median_ms" in r:
        out.append(("window -> CSV row", f"median {r['median_ms']:.1f} ms, p95 "
                    f"{r['p95_ms']:.1f}, max {r['max_ms']:.1f}", "-", "-",
                    f"{TARGETS['latency']} {ok(r)}"))
    r = R.get("report")
    if isinstance(r, dict) and "wall_s" in r:
        out.append(("specmon report", f"{r['wall_s']:.2f} s (CPU {r['cpu_s']:.2f} s) for "
                    f"{r['rows'] / 1e6:.1f} M rows, "
                    f"{r['days']} days (summarize {r['summarize_s']:.2f}, HTML {r['html_s']:.2f}, "
                    f"PNG {r['png_s']:.2f} s)", f"peak RSS {r['peak_rss_mb']:.0f} MB", "-",
                    f"{TARGETS['report']} {ok(r)}"))
    for k in ROWS:
        if isinstance(R.get(k), str):
            out.append((k, R[k], "", "", "ERROR"))
    return out


def print_table(rows, load) -> None:
    head = ("what", "ours", "compared with", "ratio", "target")
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="specmon benchmark", show_lines=True)
        for h in head:
            t.add_column(h, overflow="fold")
        for r in rows:
            t.add_row(*r)
        Console(width=max(shutil.get_terminal_size().columns, 150)).print(t)
    except ImportError:
        print(" | ".join(head))
        for r in rows:
            print(" | ".join(r))
    print(f"load: {load}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (less audio, fewer reps)")
    ap.add_argument("--json", default="bench.json", help="where to write the results")
    ap.add_argument("--model", default=None, help="int8 .tflite (default: the shipped model)")
    ap.add_argument("--only", default=",".join(ROWS), help=f"comma list of rows: {','.join(ROWS)}")
    ap.add_argument("--no-keras", action="store_true", help="skip TensorFlow/Keras comparisons")
    ap.add_argument("--memory-seconds", type=float, default=None,
                    help="audio streamed in the memory row (default 3600, quick 120)")
    ap.add_argument("--cpu-seconds", type=float, default=None,
                    help="audio replayed at real-time pace in the CPU row (default 40, quick 10)")
    args = ap.parse_args(argv)
    only = [r.strip() for r in args.only.split(",") if r.strip()]
    bad = [r for r in only if r not in ROWS]
    if bad:
        ap.error(f"unknown rows: {bad}")
    keras = not args.no_keras and not args.quick
    if keras:
        try:
            import importlib.util

            keras = importlib.util.find_spec("tensorflow") is not None
        except (ImportError, ValueError):
            keras = False
    R: dict = {"meta": {
        "quick": args.quick, "python": sys.version.split()[0], "machine": platform.machine(),
        "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_before": cpu_load()}}
    tmp = Path(tempfile.mkdtemp(prefix="specmon-bench-", dir="/tmp"))
    try:
        src: list = []
        x60 = test_audio(60.0, src)
        R["meta"]["audio"] = src[0]
        int8, f32, note = resolve_models(args.model, tmp)
        MODEL[:] = [int8]
        R["meta"]["model"] = note
        stft_logpower(x60[:WINDOW_SAMPLES])  # compile / load the numba cache once
        cpu_s = args.cpu_seconds or (10.0 if args.quick else 40.0)
        mem_s = args.memory_seconds or (120.0 if args.quick else 3600.0)
        jobs = {
            "stft": lambda: bench_stft(x60, args.quick),
            "rolling": lambda: bench_rolling(x60, args.quick),
            "startup": lambda: bench_startup(tmp, x60, 1 if args.quick else 3),
            "latency": lambda: bench_latency(x60[: int((8 if args.quick else 20) * SAMPLE_RATE)],
                                             tmp, int8),
            "cpu": lambda: bench_cpu(write_wav(tmp / "cpu.wav", x60[: int(cpu_s * SAMPLE_RATE)]),
                                     cpu_s, tmp, x60, keras, f32, args.quick),
            "score": lambda: bench_score(
                np.tile(x60, 1 if args.quick else 10), write_wav(
                    tmp / "score.wav", np.tile(x60, 1 if args.quick else 10)), int8, tmp),
            "memory": lambda: bench_memory(tmp, x60, mem_s),
            "model": lambda: bench_model(int8, f32, x60, args.quick, keras),
            "report": lambda: _bench_report(tmp, args.quick),
        }
        for name in [r for r in jobs if r in only]:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                R[name] = jobs[name]()
            except Exception as e:  # noqa: BLE001 - one failing row must not lose the others
                R[name] = f"failed: {type(e).__name__}: {e}"
            print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr,
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    R["meta"]["load_after"] = cpu_load()
    rows = summary_rows(R)
    cols = ("what", "ours", "compared_with", "ratio", "target")
    R["table"] = [dict(zip(cols, r, strict=True)) for r in rows]
    Path(args.json).write_text(json.dumps(R, indent=2, default=str) + "\n")
    print_table(rows, {k: R["meta"]["load_before"].get(k) for k in ("loadavg", "busy_processes")})
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
