"""Live CPU per second of audio, side by side in one run (alternating, `reps` times, medians):

- ours: `specmon listen --headless` as a child process on a WAV at real-time pace, CSV log on;
  steady state (psutil, from the first row to the last), start-up excluded;
- ours, compute only: what the live path computes once per stride (push the stride's samples into
  RollingSTFT, take the window and its levels, gate, normalize, int8 model), in-process;
- ours, live loop in-process: the Pipeline with the file source, CSV log and plain printer, timed
  with process_time (the child's figure without the process around it);
- baselines, in-process, compute only, every stride from scratch: librosa STFT of the last 4 s, log
  power, normalize, then float32 TFLite (the leanest), Keras called directly, Keras predict().

The headline ratio is against the leanest baseline (librosa + float32 TFLite).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from bench.common import (
    Context,
    interp,
    keras_model,
    row_end_s,
    run_listen_child,
    write_wav,
)
from monitor.features import HOP, N_FFT, SAMPLE_RATE, WINDOW_SAMPLES, normalize
from monitor.threads import threads_limited

NAME = "cpu"
TARGET = "<= the leanest baseline (librosa + float32 TFLite); <= 2% of one core"
STRIDE = 31 * HOP  # the live default stride of 1 s is 31 hops


def run(ctx: Context) -> dict:
    wav = write_wav(ctx.tmp / "cpu.wav", ctx.x60[: int(ctx.cpu_s * SAMPLE_RATE)])
    return bench_cpu(wav, ctx)


def baseline_cpu_per_audio_s(x: np.ndarray, n_windows: int, how: str, f32: Path,
                             paced: bool = False) -> dict:
    """The straightforward pipeline: every stride, librosa STFT of the last 4 s from scratch,
    log power, normalize, model. CPU time (all threads) per second of audio at stride 1 s.
    how: "tflite" (float32 TFLite), "keras" (the Keras model called directly), "predict"
    (Keras predict(), what a straightforward Keras pipeline calls per window)."""
    import librosa

    if how in ("keras", "predict"):
        m = keras_model()
        if how == "predict":
            def infer(w):
                return float(m.predict(w.reshape(1, *w.shape, 1), verbose=0)[0, 0])
            what = "librosa + Keras predict()"
        else:
            def infer(w):
                return float(m(w.reshape(1, *w.shape, 1), training=False)[0, 0])
            what = "librosa + Keras called directly"
    else:
        it = interp(f32)
        inp, out = it.get_input_details()[0], it.get_output_details()[0]

        def infer(w):
            it.set_tensor(inp["index"], w.reshape(1, *w.shape, 1).astype(np.float32))
            it.invoke()
            return float(it.get_tensor(out["index"])[0, 0])
        what = "librosa + float32 TFLite"

    def window(i):
        end = WINDOW_SAMPLES + (i % max(1, (x.shape[0] - WINDOW_SAMPLES) // STRIDE)) * STRIDE
        seg = x[end - WINDOW_SAMPLES: end]
        S = librosa.stft(seg, n_fft=N_FFT, hop_length=HOP, window="hamming", center=False)
        return infer(normalize((10.0 * np.log10(np.abs(S) ** 2 + 1e-10)).astype(np.float32)))

    return _per_audio_s(what, window, n_windows, paced)


def _per_audio_s(what: str, window, n_windows: int, paced: bool = False) -> dict:
    """CPU seconds per audio second of n_windows calls, back to back (hot caches: flatters) or
    paced one per stride as a live loop runs them (asleep in between, like ours)."""
    for i in range(3):
        window(i)
    period = STRIDE / SAMPLE_RATE
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n_windows):
        window(i)
        if paced:
            time.sleep(max(0.0, t0 + (i + 1) * period - time.perf_counter()))
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    audio = n_windows * STRIDE / SAMPLE_RATE
    return {"what": what + (", paced" if paced else ""), "windows": n_windows, "cpu_s": cpu,
            "wall_s": wall, "cpu_per_audio_s": cpu / audio}


def ours_compute_per_audio_s(x: np.ndarray, n_windows: int, int8: Path, paced: bool = False
                             ) -> dict:
    """Our live path's computation per stride, measured as the baselines are (in-process)."""
    from monitor.features import RollingSTFT
    from monitor.sample_features import SampleFeatures
    from monitor.scorer import Scorer
    from monitor.windows import Gate, assess

    sc = Scorer(int8)
    gate = Gate(floor_dbfs=-200.0, min_voiced=0.0)  # score every window, as the baselines do
    roll = RollingSTFT()
    # what the pipeline keeps beside the rolling STFT: prosody, and the encoder's states if the
    # model's head takes them
    prosody = SampleFeatures(sc.head_encoder)
    n_strides = max(1, (x.shape[0] - WINDOW_SAMPLES) // STRIDE)
    state = {"i": -1}

    def window(i):
        k = i % n_strides
        end = WINDOW_SAMPLES + k * STRIDE
        if k == 0 or state["i"] != i - 1:  # start the stream again
            roll.__init__()
            prosody.reset()
            roll.push(x[: end - STRIDE])
        state["i"] = i
        roll.push(x[end - STRIDE: end])
        a = end - WINDOW_SAMPLES
        return assess(roll.window(), roll.levels(), sc, gate, sc.threshold, 0.0, 4.0,
                      lambda: prosody(x[a:end], a)).score

    return _per_audio_s("ours, compute only (RollingSTFT + int8 Scorer)", window, n_windows, paced)


def ours_loop_in_process(wav: Path, audio_s: float, tmp: Path, int8: Path, where: bool = False
                         ) -> dict:
    """The Pipeline as `listen --headless` runs it (file source at real-time pace, CSV log, plain
    printer), in this process: process CPU seconds per audio second (a warm-up run first)."""
    from monitor.csvlog import CsvLog
    from monitor.dashboard import PlainPrinter
    from monitor.events import LiveStatus
    from monitor.pipeline import ListenConfig, Pipeline
    from monitor.scorer import Scorer
    from monitor.source import FileSource

    sc = Scorer(int8)

    def once(realtime: bool, duration: float, name: str, profile: bool = False) -> float:
        src = FileSource(wav, realtime=realtime)
        csvp = tmp / f"{name}.csv"
        csvp.unlink(missing_ok=True)
        st = LiveStatus(device=src.name, sample_rate=src.rate, csv_path=str(csvp),
                        threshold=sc.threshold)
        cfg = ListenConfig(duration_s=duration, tick_s=1.0, live_view=False)
        pipe = Pipeline(src, sc, [CsvLog(csvp, 10.0, lambda e: None), PlainPrinter(io.StringIO())],
                        st, cfg)
        c0 = time.process_time()
        if profile:
            prof.runcall(pipe.run)
        else:
            pipe.run()
        return time.process_time() - c0

    once(False, 5.0, "loop-warm")
    cpu = once(True, audio_s, "loop")
    res = {"what": "ours, live loop in-process", "cpu_s": cpu, "audio_s": audio_s,
           "cpu_per_audio_s": cpu / audio_s}
    if where:  # a second run under cProfile (CPU time): where the loop's CPU goes
        prof = cProfile.Profile(time.process_time)
        once(True, audio_s, "loop-profiled", profile=True)
        st = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
        total = sum(v[2] for v in st.values()) or 1.0
        top = sorted(st.items(), key=lambda kv: -kv[1][2])[:12]
        res["where_own_cpu_share"] = {f"{Path(k[0]).name}:{k[1]}({k[2]})": round(v[2] / total, 3)
                                      for k, v in top}
    return res


def ours_child(wav: Path, audio_s: float, tmp: Path, label: str) -> dict:
    """`specmon listen --headless` at real-time pace as a child: steady-state CPU per audio s."""
    csvp = tmp / f"cpu-{label}.csv"
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = run_listen_child(wav, csvp, False, 0.25, tmp)
    samples, wall = run.samples, run.wall_s
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    total_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if run.returncode != 0:
        raise RuntimeError(f"specmon listen failed: {run.stderr.decode()[-300:]}")
    res: dict = {"audio_s": audio_s, "wall_s": wall, "total_cpu_s_incl_startup": total_cpu,
                 "total_cpu_per_audio_s": total_cpu / audio_s}
    # Steady state: between the first sample with a window logged and the last sample.
    # It ends at the first sample showing the last-but-one row: the end of input, the exit summary
    # and the interpreter's teardown (about 0.1 s of CPU) come later and are not listening.
    final = samples[-1]["rows"] if samples else 0
    end = next((s for s in samples if s["rows"] >= final - 1), None)
    live = [s for s in samples if s["rows"] >= 1 and end is not None and s["t"] <= end["t"]]
    if len(live) >= 2:
        a, b = live[0], live[-1]
        ea, eb = row_end_s(a["last"]), row_end_s(b["last"])
        if ea is not None and eb is not None and eb > ea:
            span = b["t"] - a["t"]  # audio elapsed between the samples ~ wall time (real-time pace)
            res["steady_cpu_s"] = b["cpu"] - a["cpu"]
            res["steady_audio_s"] = span
            res["steady_cpu_per_audio_s"] = res["steady_cpu_s"] / span
    res["cpu_per_audio_s"] = res.get("steady_cpu_per_audio_s", res["total_cpu_per_audio_s"])
    return res


def bench_cpu(wav: Path, ctx: Context) -> dict:
    n_win = 10 if ctx.quick else 40
    n_paced = max(3, int(ctx.cpu_s * SAMPLE_RATE / STRIDE))  # as long as ours listens
    hows = ["tflite"] + (["keras", "predict"] if ctx.keras and _keras_ok() else [])
    runs: dict[str, list[dict]] = {k: [] for k in ("ours", "ours_compute", "ours_loop", *hows,
                                                   "tflite_paced", "ours_compute_paced")}
    for i in range(ctx.reps):  # alternating, so every candidate sees the same load
        runs["ours"].append(ours_child(wav, ctx.cpu_s, ctx.tmp, str(i)))
        runs["tflite_paced"].append(
            baseline_cpu_per_audio_s(ctx.x60, n_paced, "tflite", ctx.f32, paced=True))
        with threads_limited(1):  # as `listen` runs them: one BLAS and numba thread
            runs["ours_compute"].append(ours_compute_per_audio_s(ctx.x60, n_win, ctx.int8))
        for how in hows:
            runs[how].append(baseline_cpu_per_audio_s(ctx.x60, n_win, how, ctx.f32))
    # Once: where ours goes (the loop in-process, the computation paced as a live loop runs it).
    with threads_limited(1):
        runs["ours_loop"].append(ours_loop_in_process(wav, ctx.cpu_s, ctx.tmp, ctx.int8,
                                                      where=not ctx.quick))
        runs["ours_compute_paced"].append(
            ours_compute_per_audio_s(ctx.x60, n_paced, ctx.int8, paced=True))
    med = {k: statistics.median(r["cpu_per_audio_s"] for r in rs) for k, rs in runs.items() if rs}
    ours = med["ours"]
    res: dict = {"audio_s": ctx.cpu_s, "reps": ctx.reps, "runs": runs,
                 "median_cpu_per_audio_s": med,
                 "percent_of_one_core": 100 * ours,
                 "total_cpu_per_audio_s": statistics.median(
                     r["total_cpu_per_audio_s"] for r in runs["ours"]),
                 "what": {k: rs[0]["what"] for k, rs in runs.items() if rs and "what" in rs[0]}}
    for how in hows:
        if how in med:
            res[f"ratio_vs_{how}"] = med[how] / ours
    if "tflite" in med:
        res["ratio"] = med["tflite_paced"] / ours  # both asleep between windows: like for like
        res["ratio_back_to_back"] = res["ratio_vs_tflite"]
        res["compute_ratio_vs_tflite"] = med["tflite"] / med["ours_compute"]
        res["compute_ratio_vs_tflite_paced"] = med["tflite_paced"] / med["ours_compute_paced"]
    res["ok"] = res.get("ratio", 0) >= 1.0 and res["percent_of_one_core"] <= 2.0
    return res


def _keras_ok() -> bool:
    try:
        keras_model()
        return True
    except Exception:  # noqa: BLE001 - no TensorFlow: the TFLite baseline only
        return False


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "ratio" not in r:
        return None
    m = r["median_cpu_per_audio_s"]
    base = (f"librosa + float32 TFLite, paced {100 * m['tflite_paced']:.3f}% (back to back "
            f"{100 * m['tflite']:.3f}%)")
    if "keras" in m:
        base += f"; Keras direct {100 * m['keras']:.2f}%, Keras predict() {100 * m['predict']:.2f}%"
    ratio = f"{r['ratio']:.2f}x vs TFLite paced ({r['ratio_back_to_back']:.2f}x back to back)"
    if "ratio_vs_predict" in r:
        ratio += f", {r['ratio_vs_keras']:.1f}x vs Keras direct, {r['ratio_vs_predict']:.0f}x vs predict()"
    return ("live CPU / audio s",
            f"{r['percent_of_one_core']:.3f}% of a core (loop in-process {100 * m['ours_loop']:.3f}%; "
            f"compute alone, paced {100 * m['ours_compute_paced']:.3f}%, back to back "
            f"{100 * m['ours_compute']:.3f}%; incl. start-up {100 * r['total_cpu_per_audio_s']:.1f}%)",
            base + f" (median of {r['reps']})",
            ratio + f"; compute alone {r['compute_ratio_vs_tflite_paced']:.2f}x paced, "
            f"{r['compute_ratio_vs_tflite']:.2f}x back to back")
