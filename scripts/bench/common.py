"""Shared by the benchmark rows: timing, load, test audio, models, child-process sampling."""

from __future__ import annotations

import csv
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(REPO))

from monitor.features import SAMPLE_RATE  # noqa: E402

MODEL: list[Path] = []  # the int8 model every child process is given (set by main)
_KERAS: dict = {}


@dataclass
class Context:
    """What every row gets: the options, a temp dir, a minute of test audio, the models."""

    quick: bool
    tmp: Path
    x60: np.ndarray  # 60 s of speech at 16 kHz
    int8: Path
    f32: Path
    keras: bool  # TensorFlow present and not --no-keras / --quick
    cpu_s: float  # audio replayed at real-time pace by the cpu row
    mem_s: float  # audio streamed by the memory row
    dash_s: float  # audio replayed in a terminal by the dashboard row
    reps: int  # repetitions of the side-by-side child-process rows


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


def listen_cmd(wav: Path, csv_path: Path, fast: bool) -> list[str]:
    return specmon_cmd() + ["listen", "--input", str(wav), "--fast" if fast else "--realtime",
                            "--headless", "--csv", str(csv_path), "--model", str(MODEL[0])]


def resolve_models(arg: str | None, tmp: Path) -> tuple[Path, Path, str]:
    """(int8 model, float32 model, note). Falls back to a freshly exported untrained model."""
    from monitor.scorer import DEFAULT_MODEL, float_model_path

    p = Path(arg) if arg else DEFAULT_MODEL
    note = "shipped model" if not arg else "--model"
    if not p.is_file():
        p = Path("/tmp/untrained.tflite")
        note = f"untrained model ({DEFAULT_MODEL.name} not present)"
        if not p.is_file():
            subprocess.run([sys.executable, "-m", "model.quantize", "--untrained", str(p)],
                           cwd=REPO, check=True, capture_output=True)
    f32 = float_model_path(p)
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


def interp(path: Path, threads: int = 1, **kw):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads, **kw)
    it.allocate_tensors()
    return it


def invoke_timer(it, x: np.ndarray):
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


def keras_model():
    if "m" not in _KERAS:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from model.cnn import build_cnn

        _KERAS["m"] = build_cnn()
    return _KERAS["m"]


def sample_child(proc, tail: CsvTail, period: float, on_sample=None) -> list[dict]:
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


@dataclass
class ChildRun:
    returncode: int
    stderr: bytes
    samples: list[dict]
    tail: CsvTail
    wall_s: float


def run_listen_child(wav: Path, csv_path: Path, fast: bool, period: float, cwd: Path) -> ChildRun:
    """`specmon listen` on wav as a child process, sampled every `period` s until it exits."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(listen_cmd(wav, csv_path, fast=fast), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=cwd)
    tail = CsvTail(csv_path)
    samples = sample_child(proc, tail, period)
    _, err = proc.communicate()
    return ChildRun(proc.returncode, err, samples, tail, time.perf_counter() - t0)


def row_end_s(line: str) -> float | None:
    try:
        from monitor.csvlog import HEADER_LINE

        cols = HEADER_LINE.strip().split(",")
        return float(line.split(",")[cols.index("end_s")])
    except (ImportError, ValueError, IndexError):
        return None


def nogate():
    from monitor.windows import Gate

    return Gate(floor_dbfs=-200.0, min_voiced=0.0)  # score every window: worst case


def kept_vs_alone(x: np.ndarray, kept, alone, same, quick: bool, min_time: float) -> dict:
    """Per-window features at the default stride (1 s) computed the way `listen` does, by an object
    that keeps what overlapping windows share (`kept(samples, start)`, `kept.reset()`), against each
    window alone (`alone(samples, start)`): their median times, the ratio, and whether three windows
    (a fresh one, then two that reuse its work) agree by `same(a, b)`."""
    from monitor.features import HOP, WINDOW_SAMPLES, stride_hops

    step = stride_hops(1.0) * HOP
    starts = list(range(0, x.shape[0] - WINDOW_SAMPLES, step))
    pos = [0]

    def window() -> tuple[np.ndarray, int]:
        a = starts[pos[0] % len(starts)]
        if a == starts[0]:
            kept.reset()  # wrapped around: a new signal
        pos[0] += 1
        return x[a:a + WINDOW_SAMPLES], a

    agree = True
    for _ in range(3):
        w, a = window()
        agree &= bool(same(kept(w, a), alone(w, a)))
    mt = 0.3 * min_time if quick else min_time
    res: dict = {"stride_s": step / SAMPLE_RATE, "same_values": agree}
    pos[0] = 0
    res["ours"] = timeit(lambda: kept(*window()), min_time=mt, warmup=3)
    pos[0] = 0
    res["whole_window"] = timeit(lambda: alone(*window()), min_time=mt, warmup=1)
    res["ratio"] = res["whole_window"]["median_ms"] / res["ours"]["median_ms"]
    return res
