"""Rolling STFT: RollingSTFT.push(512 samples) vs recomputing the 4-s window with scipy every hop;
and, at the default stride (1 s = 31 hops), what the live path does once per stride (push the
stride's samples, take the window and its frame levels) vs the leanest way to the same window:
numpy FFT of just the stride's new frames into a ring of columns (and scipy recomputing all 125)."""

from __future__ import annotations

import numpy as np

from bench.common import Context, timeit
from monitor.features import (
    HOP,
    N_FFT,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    RollingSTFT,
    hamming,
    stride_hops,
)

NAME = "rolling"
TARGET = ">= 50x cheaper"


def run(ctx: Context) -> dict:
    r = bench_rolling(ctx.x60, ctx.quick)
    r["stride"] = bench_stride(ctx.x60, ctx.quick)
    return r


def bench_stride(x: np.ndarray, quick: bool) -> dict:
    """Per stride (1 s): ours (RollingSTFT.push + window + levels) vs numpy on the new frames only
    vs scipy recomputing the 4-s window; the same window from each (checked)."""
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy import signal

    stride = stride_hops(1.0)
    step = stride * HOP
    win = hamming()
    x = x.astype(np.float32)
    starts = list(range(WINDOW_SAMPLES, x.shape[0] - step, step))
    pos = [0]

    def chunk() -> tuple[int, np.ndarray]:
        p = starts[pos[0] % len(starts)]
        pos[0] += 1
        return p, x[p: p + step]

    roll = RollingSTFT()

    def ours():
        p, c = chunk()
        if p == starts[0]:  # wrapped around: start the stream again
            roll.__init__()
            roll.push(x[:p])
        roll.push(c)
        return roll.window(), roll.levels()

    lean_state: dict = {}

    def lean():
        p, c = chunk()
        if p == starts[0]:
            seg = x[:p]
            fr = sliding_window_view(seg, N_FFT)[::HOP]
            X = np.fft.rfft(fr * win, axis=1)
            lean_state["spec"] = (10.0 * np.log10(X.real ** 2 + X.imag ** 2 + 1e-10)).T.astype(
                np.float32)
            lean_state["ms"] = np.mean(np.square(fr, dtype=np.float64), axis=1)
            lean_state["tail"] = seg[-(N_FFT - HOP):]
        seg = np.concatenate((lean_state["tail"], c))  # 512 + 31 * 512 samples: 31 new frames
        fr = sliding_window_view(seg, N_FFT)[::HOP]
        X = np.fft.rfft(fr * win, axis=1)
        cols = (10.0 * np.log10(X.real ** 2 + X.imag ** 2 + 1e-10)).T.astype(np.float32)
        spec = lean_state["spec"] = np.concatenate((lean_state["spec"][:, stride:], cols), axis=1)
        ms = lean_state["ms"] = np.concatenate((lean_state["ms"][stride:],
                                                np.mean(np.square(fr, dtype=np.float64), axis=1)))
        lean_state["tail"] = seg[-(N_FFT - HOP):]
        return spec, 10.0 * np.log10(np.maximum(ms * 2.0, 1e-12))

    def scipy_recompute():
        p, c = chunk()
        seg = x[p + step - WINDOW_SAMPLES: p + step]
        _, _, Z = signal.stft(seg, window=win, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=None,
                              padded=False)
        Z *= win.sum()
        return (10.0 * np.log10(Z.real ** 2 + Z.imag ** 2 + 1e-10)).astype(np.float32)

    # The same window from each: run all three over the same stretch.
    outs = {}
    for name, fn in (("ours", ours), ("numpy, new frames only", lean), ("scipy, 4-s recompute",
                                                                        scipy_recompute)):
        pos[0] = 0
        for _ in range(3):
            out = fn()
        outs[name] = out[0] if isinstance(out, tuple) else out
    ref = outs["ours"]
    loud = ref > -60
    res: dict = {"stride_hops": stride, "stride_s": step / SAMPLE_RATE, "impl": {}}
    mt = 0.3 if quick else 1.5
    for name, fn in (("ours", ours), ("numpy, new frames only", lean), ("scipy, 4-s recompute",
                                                                        scipy_recompute)):
        pos[0] = 0
        t = timeit(fn, min_time=mt, warmup=3)
        diff = float(np.max(np.abs(outs[name] - ref)[loud])) if outs[name].shape == ref.shape \
            else float("nan")
        res["impl"][name] = {**t, "max_abs_diff_db": diff,
                             "percent_of_one_core": 100 * t["median_ms"] * 1e-3 / (step / SAMPLE_RATE)}
    o = res["impl"]["ours"]["median_ms"]
    res["ratio_vs_lean"] = res["impl"]["numpy, new frames only"]["median_ms"] / o
    res["ratio_vs_scipy"] = res["impl"]["scipy, 4-s recompute"]["median_ms"] / o
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


def table(r: dict) -> list[tuple[str, str, str, str]] | None:
    if "ratio" not in r:
        return None
    rows = [("rolling push 512", f"{1e3 * r['push_512']['median_ms']:.1f} us",
             f"scipy 4-s recompute {r['scipy_recompute_4s']['median_ms']:.2f} ms",
             f"{r['ratio']:.0f}x")]
    s = r.get("stride")
    if isinstance(s, dict) and "impl" in s:
        im = s["impl"]
        lean, sci = im["numpy, new frames only"], im["scipy, 4-s recompute"]
        rows.append((f"window every {s['stride_s']:.3f} s (default stride)",
                     f"{im['ours']['median_ms']:.3f} ms (push + window + levels)",
                     f"numpy FFT of the new frames only {lean['median_ms']:.3f} ms, scipy 4-s "
                     f"recompute {sci['median_ms']:.3f} ms",
                     f"{s['ratio_vs_lean']:.2f}x vs numpy, {s['ratio_vs_scipy']:.2f}x vs scipy"))
    return rows
