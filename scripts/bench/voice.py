"""The voice encoder's states (monitor/voice_encoder.py) at the default stride (1 s), for a model
whose head takes them: what `listen` and `specmon score` do per window (WindowVoice: only the
partials new on the 0.8-s grid) vs every partial of the window again, as a window on its own
would; the same values (checked)."""

from __future__ import annotations

import numpy as np

from bench.common import Context, timeit
from monitor.features import HOP, WINDOW_SAMPLES, stride_hops

NAME = "voice"
TARGET = ("<= 40 ms a window here at a 1-s stride (1.25 partials a second), only for a head that "
          "takes the states")


def run(ctx: Context) -> dict:
    return bench_voice(ctx.x60, ctx.quick)


def bench_voice(x: np.ndarray, quick: bool) -> dict:
    from monitor.voice_encoder import WindowVoice, shared_encoder

    enc = shared_encoder()
    step = stride_hops(1.0) * HOP
    starts = list(range(0, x.shape[0] - WINDOW_SAMPLES, step))
    pos = [0]
    cached = WindowVoice(enc)

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
        return WindowVoice(enc)(w, a)

    same = True
    pos[0] = 0
    for _ in range(3):  # a fresh window, then two that reuse its partials
        a, w = window()
        same &= bool(np.allclose(cached(w, a), WindowVoice(enc)(w, a), rtol=1e-4, atol=1e-5))
    mt = 0.5 if quick else 3.0
    res: dict = {"stride_s": step / 16000, "same_values": same}
    pos[0] = 0
    res["ours"] = timeit(ours, min_time=mt, warmup=3)
    pos[0] = 0
    res["whole_window"] = timeit(whole, min_time=mt, warmup=1)
    res["ratio"] = res["whole_window"]["median_ms"] / res["ours"]["median_ms"]
    res["ok"] = same and res["ours"]["median_ms"] <= 40.0
    return res


def table(r: dict) -> list[tuple[str, str, str, str]] | None:
    if "ratio" not in r:
        return None
    return [(f"voice encoder states, window every {r['stride_s']:.3f} s",
             f"{r['ours']['median_ms']:.1f} ms (new partials only)",
             f"all partials again {r['whole_window']['median_ms']:.1f} ms"
             + ("" if r["same_values"] else " (VALUES DIFFER)"),
             f"{r['ratio']:.1f}x")]
