"""Whisper base's encoder states (monitor/whisper_encoder.py), for a model whose head takes them: one
window's block-3 states as `listen` computes them (WindowWhisper: three of the six blocks, the window
alone) vs the whole encoder (six blocks and the final layer norm), the way a probe of every layer
runs it; the same block-3 values (checked). Skipped when the weights are not installed."""

from __future__ import annotations

import numpy as np

from bench.common import Context, timeit
from monitor.features import WINDOW_SAMPLES

NAME = "whisper"
TARGET = "<= 100 ms a window here (1-s stride: a tenth of a core), only for a head that takes the states"


def run(ctx: Context) -> dict:
    from monitor.whisper_encoder import WEIGHTS

    if not WEIGHTS.is_file():
        return {"skipped": f"{WEIGHTS.name} not installed (python scripts/convert_whisper.py)"}
    return bench_whisper(ctx.x60, ctx.quick)


def bench_whisper(x: np.ndarray, quick: bool) -> dict:
    from monitor.whisper_encoder import WindowWhisper, shared_encoder

    enc = shared_encoder()
    w = x[:WINDOW_SAMPLES]
    same = bool(np.allclose(WindowWhisper(3, encoder=enc)(w, 0), enc.features(w[None])[0, 2],
                            rtol=1e-4, atol=1e-4))
    mt = 0.5 if quick else 3.0
    res: dict = {"same_values": same}
    res["ours"] = timeit(lambda: WindowWhisper(3, encoder=enc)(w, 0), min_time=mt, warmup=1)
    res["whole_encoder"] = timeit(lambda: enc.features(w[None]), min_time=mt, warmup=1)
    res["ratio"] = res["whole_encoder"]["median_ms"] / res["ours"]["median_ms"]
    res["ok"] = same and res["ours"]["median_ms"] <= 100.0
    return res


def table(r: dict) -> list[tuple[str, str, str, str]] | None:
    if "ratio" not in r:
        return None
    return [("Whisper block-3 states of one 4-s window",
             f"{r['ours']['median_ms']:.1f} ms (three blocks)",
             f"all six blocks and the final norm {r['whole_encoder']['median_ms']:.1f} ms"
             + ("" if r["same_values"] else " (VALUES DIFFER)"),
             f"{r['ratio']:.1f}x")]
