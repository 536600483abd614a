"""Window prosody (monitor/prosody.py) at the default stride (1 s): what `listen` and `specmon score`
do per window (WindowProsody: only the stride's new 10-ms frames, then the window's functionals) vs
computing all of the window's frames again, as a window on its own would; the same values (checked)."""

from __future__ import annotations

import numpy as np

from bench.common import Context, timeit
from monitor.features import HOP, WINDOW_SAMPLES, stride_hops

NAME = "prosody"
TARGET = "<= 5 ms a window here: under 2 % of a Pi 4 core (~3-4x slower) at a 1-s stride"


def run(ctx: Context) -> dict:
    return bench_prosody(ctx.x60, ctx.quick)


def bench_prosody(x: np.ndarray, quick: bool) -> dict:
    from monitor.prosody import WindowProsody, window_prosody

    step = stride_hops(1.0) * HOP
    starts = list(range(0, x.shape[0] - WINDOW_SAMPLES, step))
    pos = [0]
    cached = WindowProsody()

    def window() -> tuple[int, np.ndarray]:
        a = starts[pos[0] % len(starts)]
        if a == starts[0]:
            cached.reset()  # wrapped around: a new signal
        pos[0] += 1
        return a, x[a:a + WINDOW_SAMPLES]

    def ours():
        a, w = window()
        return cached(w, a)

    def whole():
        a, w = window()
        return window_prosody(w, a)

    same = True
    pos[0] = 0
    for _ in range(3):  # a fresh window, then two that reuse its frames
        a, w = window()
        same &= bool(np.array_equal(cached(w, a), window_prosody(w, a)))
    mt = 0.3 if quick else 1.5
    res: dict = {"stride_s": step / 16000, "same_values": same}
    pos[0] = 0
    res["ours"] = timeit(ours, min_time=mt, warmup=3)
    pos[0] = 0
    res["whole_window"] = timeit(whole, min_time=mt, warmup=1)
    res["ratio"] = res["whole_window"]["median_ms"] / res["ours"]["median_ms"]
    res["ok"] = same and res["ours"]["median_ms"] <= 5.0
    return res


def table(r: dict) -> list[tuple[str, str, str, str]] | None:
    if "ratio" not in r:
        return None
    return [(f"prosody, window every {r['stride_s']:.3f} s",
             f"{r['ours']['median_ms']:.2f} ms (new frames + functionals)",
             f"all 400 frames again {r['whole_window']['median_ms']:.2f} ms"
             + ("" if r["same_values"] else " (VALUES DIFFER)"),
             f"{r['ratio']:.1f}x")]
