"""Window prosody (monitor/prosody.py) at the default stride (1 s): what `listen` and `specmon score`
do per window (WindowProsody: only the stride's new 10-ms frames, then the window's functionals) vs
computing all of the window's frames again, as a window on its own would; the same values (checked)."""

from __future__ import annotations

import numpy as np

from bench.common import Context, kept_vs_alone

NAME = "prosody"
TARGET = "<= 5 ms a window here: under 2 % of a Pi 4 core (~3-4x slower) at a 1-s stride"


def run(ctx: Context) -> dict:
    return bench_prosody(ctx.x60, ctx.quick)


def bench_prosody(x: np.ndarray, quick: bool) -> dict:
    from monitor.prosody import WindowProsody, window_prosody

    res = kept_vs_alone(x, WindowProsody(), window_prosody, np.array_equal, quick, min_time=1.5)
    res["ok"] = res["same_values"] and res["ours"]["median_ms"] <= 5.0
    return res


def table(r: dict) -> list[tuple[str, str, str, str]] | None:
    if "ratio" not in r:
        return None
    return [(f"prosody, window every {r['stride_s']:.3f} s",
             f"{r['ours']['median_ms']:.2f} ms (new frames + functionals)",
             f"all 400 frames again {r['whole_window']['median_ms']:.2f} ms"
             + ("" if r["same_values"] else " (VALUES DIFFER)"),
             f"{r['ratio']:.1f}x")]
