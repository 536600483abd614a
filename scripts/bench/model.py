"""One window through the model: int8 vs float32 TFLite (invoke alone and Scorer.score end to end),
interpreter options, Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.common import Context, interp, invoke_timer, keras_model, timeit
from monitor.features import WINDOW_SAMPLES, normalize, stft_logpower

NAME = "model"
TARGET = "int8 <= 1 ms, >= 1.5x faster than float32"


def run(ctx: Context) -> dict:
    return bench_model(ctx.int8, ctx.f32, ctx.x60, ctx.quick, ctx.keras)


def bench_model(int8: Path, f32: Path, x: np.ndarray, quick: bool, keras: bool) -> dict:
    """One window: int8 vs float32 TFLite (invoke alone and Scorer.score end to end), Keras."""
    from monitor.sample_features import SampleFeatures
    from monitor.scorer import Scorer

    mt = 0.5 if quick else 2.0
    win = stft_logpower(x[:WINDOW_SAMPLES])[0]
    nwin = normalize(win)
    # The window's sample features as the model's head takes them (prosody, and the states of the
    # encoder its sidecar names): their own costs are the prosody and encoder rows.
    encoder = Scorer(int8).head_encoder if int8.is_file() else None
    pros = SampleFeatures(encoder)(x[:WINDOW_SAMPLES], 0)
    res: dict = {"invoke": {}, "scorer_score": {}, "parts": {}}
    for name, p in (("int8", int8), ("float32", f32)):
        if not p.is_file():
            res["invoke"][name] = "n/a (no file)"
            continue
        res["invoke"][name] = timeit(invoke_timer(interp(p), nwin), min_time=mt, warmup=20)
        sc = Scorer(p)
        res["scorer_score"][name] = timeit(lambda sc=sc: sc.score(win, pros), min_time=mt, warmup=20)
    res["parts"]["normalize"] = timeit(lambda: normalize(win), min_time=mt / 2)
    if int8.is_file():
        sc = Scorer(int8)
        if sc.head is not None:  # the stats head's share of Scorer.score
            res["parts"]["stats_head"] = timeit(lambda: sc.head_logit(nwin, pros), min_time=mt / 2)
            res["parts"]["network_only"] = timeit(lambda: sc.cnn_score(nwin), min_time=mt / 2)
        s, z = sc._in_q

        def quant():
            q = np.rint(nwin / s + z)
            sc._buf[0, :, :, 0] = np.clip(q, -128, 127)

        res["parts"]["quantize_numpy"] = timeit(quant, min_time=mt / 2)
    # Interpreter options (the "int8 is no faster" investigation).
    from ai_edge_litert.interpreter import OpResolverType

    variants = {}
    for name, p in (("int8", int8), ("float32", f32)):
        if not p.is_file():
            continue
        for label, kw in (
            ("threads=1", {"threads": 1}),
            ("threads=2", {"threads": 2}),
            ("no XNNPACK (builtin kernels)", {
                "threads": 1,
                "experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}),
        ):
            variants[f"{name} {label}"] = timeit(invoke_timer(interp(p, **kw), nwin),
                                                 min_time=mt / 2, warmup=10)["median_ms"]
    res["variants_median_ms"] = variants
    if keras:
        try:
            res["keras"] = _keras_window_time(nwin, mt)
        except Exception as e:  # noqa: BLE001
            res["keras"] = f"n/a ({type(e).__name__}: {e})"
    i8 = res["invoke"].get("int8")
    fl = res["invoke"].get("float32")
    if isinstance(i8, dict) and isinstance(fl, dict):
        res["ratio_invoke"] = fl["median_ms"] / i8["median_ms"]
        res["ratio_scorer"] = (res["scorer_score"]["float32"]["median_ms"]
                               / res["scorer_score"]["int8"]["median_ms"])
        res["ok"] = (res["scorer_score"]["int8"]["median_ms"] <= 1.0
                     and res["ratio_invoke"] >= 1.5)
    return res


def _keras_window_time(nwin: np.ndarray, mt: float) -> dict:
    m = keras_model()
    xb = nwin.reshape(1, *nwin.shape, 1)
    return timeit(lambda: m(xb, training=False), min_time=mt, warmup=5)


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "ratio_invoke" not in r:
        return None
    i, s = r["invoke"], r["scorer_score"]
    k = r.get("keras")
    kk = f", Keras {k['median_ms']:.2f}" if isinstance(k, dict) else ""
    return ("model, 1 window",
            f"int8 invoke {i['int8']['median_ms']:.3f} / Scorer.score {s['int8']['median_ms']:.3f} ms",
            f"float32 invoke {i['float32']['median_ms']:.3f} / Scorer.score "
            f"{s['float32']['median_ms']:.3f}{kk} ms",
            f"{r['ratio_invoke']:.2f}x invoke, {r['ratio_scorer']:.2f}x Scorer")
