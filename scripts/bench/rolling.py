"""Rolling STFT: RollingSTFT.push(512 samples) vs recomputing the 4-s window with scipy every hop."""

from __future__ import annotations

import numpy as np

from bench.common import Context, timeit
from monitor.features import HOP, N_FFT, SAMPLE_RATE, WINDOW_SAMPLES, RollingSTFT, hamming

NAME = "rolling"
TARGET = ">= 50x cheaper"


def run(ctx: Context) -> dict:
    return bench_rolling(ctx.x60, ctx.quick)


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


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "ratio" not in r:
        return None
    return ("rolling push 512", f"{1e3 * r['push_512']['median_ms']:.1f} us",
            f"scipy 4-s recompute {r['scipy_recompute_4s']['median_ms']:.2f} ms", f"{r['ratio']:.0f}x")
