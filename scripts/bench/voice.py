"""The voice encoder's states (monitor/voice_encoder.py) at the default stride (1 s), for a model
whose head takes them: what `listen` and `specmon score` do per window (WindowVoice: only the
partials new on the 0.8-s grid) vs every partial of the window again, as a window on its own
would; the same values (checked)."""

from __future__ import annotations

import numpy as np

from bench.common import Context, kept_vs_alone

NAME = "voice"
TARGET = ("<= 40 ms a window here at a 1-s stride (1.25 partials a second), only for a head that "
          "takes the states")


def run(ctx: Context) -> dict:
    return bench_voice(ctx.x60, ctx.quick)


def bench_voice(x: np.ndarray, quick: bool) -> dict:
    from monitor.voice_encoder import WindowVoice, shared_encoder

    enc = shared_encoder()

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        return np.allclose(a, b, rtol=1e-4, atol=1e-5)

    res = kept_vs_alone(x, WindowVoice(enc), lambda w, a: WindowVoice(enc)(w, a), close, quick,
                        min_time=3.0)
    res["ok"] = res["same_values"] and res["ours"]["median_ms"] <= 40.0
    return res


def table(r: dict) -> list[tuple[str, str, str, str]] | None:
    if "ratio" not in r:
        return None
    return [(f"voice encoder states, window every {r['stride_s']:.3f} s",
             f"{r['ours']['median_ms']:.1f} ms (new partials only)",
             f"all partials again {r['whole_window']['median_ms']:.1f} ms"
             + ("" if r["same_values"] else " (VALUES DIFFER)"),
             f"{r['ratio']:.1f}x")]
