"""In-process live pipeline at real-time pace: end of a window -> its CSV row written."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.common import Context, nogate, write_wav
from monitor.features import SAMPLE_RATE

NAME = "latency"
TARGET = "<= 50 ms"


def run(ctx: Context) -> dict:
    return bench_latency(ctx.x60[: int((8 if ctx.quick else 20) * SAMPLE_RATE)], ctx.tmp, ctx.int8)


def bench_latency(x: np.ndarray, tmp: Path, int8: Path) -> dict:
    """In-process live pipeline on a file at real-time pace: time from the moment a window's last
    sample is due (FileSource's clock) to its CSV row having been written."""
    from monitor.csvlog import CsvLog
    from monitor.events import LiveStatus
    from monitor.pipeline import ListenConfig, Pipeline
    from monitor.scorer import Scorer
    from monitor.source import FileSource

    wav = write_wav(tmp / "latency.wav", x)
    src = FileSource(wav, realtime=True)
    lat: list[float] = []

    class TimedCsv(CsvLog):
        def on_window(self, w, status):
            super().on_window(w, status)
            due = src._t0 + w.offset_s
            lat.append(time.monotonic() - due)

    csvp = tmp / "latency.csv"
    sc = Scorer(int8)
    st = LiveStatus(device=src.name, sample_rate=src.rate, csv_path=str(csvp),
                    threshold=sc.threshold)
    Pipeline(src, sc, [TimedCsv(csvp)], st, ListenConfig(gate=nogate())).run()
    a = np.array(lat) * 1e3
    return {"windows": len(lat), "median_ms": float(np.median(a)),
            "p95_ms": float(np.percentile(a, 95)), "max_ms": float(a.max()),
            "ok": float(np.percentile(a, 95)) <= 50,
            "note": "includes up to LOOP_SLEEP_S (20 ms) of polling wait"}


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "median_ms" not in r:
        return None
    return ("window -> CSV row", f"median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f}, "
            f"max {r['max_ms']:.1f}", "-", "-")
