"""Live CPU per second of audio: the whole pipeline (`specmon listen --headless`, a file at
real-time pace, a child process) against the straightforward pipeline recomputing each window."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np

from bench.common import (
    Context,
    CsvTail,
    interp,
    keras_model,
    listen_cmd,
    row_end_s,
    sample_child,
    write_wav,
)
from monitor.features import HOP, N_FFT, SAMPLE_RATE, WINDOW_SAMPLES, normalize

NAME = "cpu"
TARGET = ">= 20x less CPU; <= 2% of one core"


def run(ctx: Context) -> dict:
    wav = write_wav(ctx.tmp / "cpu.wav", ctx.x60[: int(ctx.cpu_s * SAMPLE_RATE)])
    return bench_cpu(wav, ctx.cpu_s, ctx.tmp, ctx.x60, ctx.keras, ctx.f32, ctx.quick)


def baseline_cpu_per_audio_s(x: np.ndarray, n_windows: int, use_keras: bool, f32: Path) -> dict:
    """The straightforward pipeline: every stride, librosa STFT of the last 4 s from scratch,
    log power, normalize, model. CPU time (all threads) per second of audio at stride 1 s."""
    import librosa

    if use_keras:
        m = keras_model()

        def infer(w):
            # model.predict() is what a straightforward Keras pipeline calls per window.
            return float(m.predict(w.reshape(1, *w.shape, 1), verbose=0)[0, 0])
        what = "librosa + Keras predict()"
    else:
        it = interp(f32)
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
    samples = sample_child(proc, tail, 0.25)
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
        ea, eb = row_end_s(a["last"]), row_end_s(b["last"])
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
            keras_model()
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


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "ratio" not in r:
        return None
    b = r["baseline"]
    ex = (f"; vs librosa+f32 TFLite {r['ratio_vs_tflite_baseline']:.0f}x"
          if "ratio_vs_tflite_baseline" in r else "")
    return ("live CPU / audio s", f"{r['percent_of_one_core']:.2f}% of a core (total incl. start-up "
            f"{100 * r['total_cpu_per_audio_s']:.1f}%)", f"{b['what']} {100 * b['cpu_per_audio_s']:.1f}%",
            f"{r['ratio']:.0f}x{ex}")
