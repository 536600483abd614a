"""Batch STFT: 60 s -> 513 x N log power; ours vs numpy.fft, scipy, librosa."""

from __future__ import annotations

import numpy as np

from bench.common import Context, timeit
from monitor.features import HOP, N_FFT, SAMPLE_RATE, hamming, stft_logpower

NAME = "stft"
TARGET = "ours >= 1.0x the fastest"


def run(ctx: Context) -> dict:
    return bench_stft(ctx.x60, ctx.quick)


def bench_stft(x: np.ndarray, quick: bool) -> dict:
    """60 s -> 513 x N log-power, identical framing; ours vs numpy.fft, scipy, librosa."""
    from scipy import signal

    win = hamming().astype(np.float32)
    win64 = hamming()
    x32 = x.astype(np.float32)
    mt = 0.5 if quick else 2.0

    def ours():
        return stft_logpower(x32)[0]

    def ours_serial():
        from monitor import features as F

        x64 = np.ascontiguousarray(x32, dtype=np.float64)
        n = F.n_frames_for(x64.shape[0])
        spec, _ = F._stft_serial(x64, n, HOP, F._WIN, *F._TABLES, F.BATCH_LANES)
        F._to_db(spec)
        return spec.T

    def np_fft():
        fr = np.lib.stride_tricks.sliding_window_view(x32, N_FFT)[::HOP]
        X = np.fft.rfft(fr * win, axis=1)
        return (10.0 * np.log10(X.real ** 2 + X.imag ** 2 + 1e-10)).T.astype(np.float32)

    scale = win64.sum()  # scipy.signal.stft divides by sum(window)

    def scipy_stft():
        _, _, Z = signal.stft(x32, window=win64, nperseg=N_FFT, noverlap=N_FFT - HOP,
                              boundary=None, padded=False)
        Z *= scale
        return (10.0 * np.log10(Z.real ** 2 + Z.imag ** 2 + 1e-10)).astype(np.float32)

    cands = {"ours": ours, "ours (serial kernel)": ours_serial, "numpy.fft": np_fft,
             "scipy.signal.stft": scipy_stft}
    try:
        import librosa

        def librosa_stft():
            S = librosa.stft(x32, n_fft=N_FFT, hop_length=HOP, window="hamming", center=False)
            return (10.0 * np.log10(np.abs(S) ** 2 + 1e-10)).astype(np.float32)

        cands["librosa.stft"] = librosa_stft
    except ImportError:
        cands["librosa.stft"] = None
    ref = ours()
    res: dict = {"audio_s": x.shape[0] / SAMPLE_RATE, "shape": list(ref.shape), "impl": {}}
    for name, fn in cands.items():
        if fn is None:
            res["impl"][name] = "n/a"
            continue
        out = fn()
        loud = ref > -60  # compare where there is signal; float32 rounding differs below
        err = float(np.max(np.abs(out[:, : ref.shape[1]] - ref)[loud])) if out.shape == ref.shape \
            else float("nan")
        t = timeit(fn, min_time=mt)
        res["impl"][name] = {**t, "max_abs_diff_db": err, "shape_ok": list(out.shape) ==
                             list(ref.shape)}
    others = [v["median_ms"] for k, v in res["impl"].items()
              if isinstance(v, dict) and not k.startswith("ours")]
    fastest = min(others)
    res["fastest_other"] = [k for k, v in res["impl"].items() if isinstance(v, dict)
                            and v["median_ms"] == fastest][0]
    res["ratio"] = fastest / res["impl"]["ours"]["median_ms"]
    res["ratio_serial"] = fastest / res["impl"]["ours (serial kernel)"]["median_ms"]
    res["ok"] = res["ratio"] >= 1.0
    return res


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "impl" not in r:
        return None
    im = r["impl"]
    oth = ", ".join(f"{k} {v['median_ms']:.1f}" if isinstance(v, dict) else f"{k} n/a"
                    for k, v in im.items() if not k.startswith("ours"))
    ser = im["ours (serial kernel)"]["median_ms"]
    return ("batch STFT 60 s", f"{im['ours']['median_ms']:.1f} ms (serial {ser:.1f})",
            oth + " ms", f"{r['ratio']:.2f}x (serial {r['ratio_serial']:.2f}x)")
