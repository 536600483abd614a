"""A long file replayed --fast through `specmon listen`: RSS at the first window vs the end."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.common import Context, run_listen_child
from monitor.features import SAMPLE_RATE

NAME = "memory"
TARGET = "RSS growth <= 5 MB; peak <= 200 MB"


def run(ctx: Context) -> dict:
    return bench_memory(ctx.tmp, ctx.x60, ctx.mem_s)


def bench_memory(tmp: Path, x: np.ndarray, seconds: float) -> dict:
    """A long file replayed --fast through `specmon listen`: RSS at the first window vs the end."""
    import soundfile as sf

    wav = tmp / "long.wav"
    reps = -(-int(seconds * SAMPLE_RATE) // x.shape[0])
    with sf.SoundFile(str(wav), "w", SAMPLE_RATE, 1, subtype="PCM_16") as f:
        for _ in range(reps):
            f.write(x)
    audio_s = reps * x.shape[0] / SAMPLE_RATE
    csvp = tmp / "memory.csv"
    run = run_listen_child(wav, csvp, True, 0.1, tmp)
    samples, wall, tail, err = run.samples, run.wall_s, run.tail, run.stderr
    wav.unlink()
    rows = tail.poll()
    res: dict = {"audio_s": audio_s, "wall_s": wall, "x_realtime": audio_s / wall,
                 "windows": rows, "returncode": run.returncode}
    if run.returncode:
        res["stderr"] = err.decode()[-1500:]
    # Up to the first sample showing the last row: after it the process only exits, and a sample
    # taken during its teardown reads a few MB of RSS (a growth of -200 MB).
    final = max((s["rows"] for s in samples), default=0)
    last = next((s for s in samples if s["rows"] >= final), None)
    live = [s for s in samples if s["rows"] >= 1 and last is not None and s["t"] <= last["t"]]
    if len(live) >= 2:
        expected = max(rows, 1)
        early = [s for s in live if s["rows"] >= 0.02 * expected] or live
        base = early[0]["rss"]
        end = live[-1]["rss"]
        res["rss_first_window_mb"] = live[0]["rss"] / 2**20
        res["rss_at_2pct_mb"] = base / 2**20
        res["rss_end_mb"] = end / 2**20
        res["rss_growth_mb"] = (end - base) / 2**20
        hwm = [s["hwm"] for s in live if s["hwm"]]
        res["peak_rss_mb"] = (max(hwm) if hwm else max(s["rss"] for s in samples)) / 2**20
        res["ok"] = res["rss_growth_mb"] <= 5 and res["peak_rss_mb"] <= 200
    return res


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "rss_growth_mb" not in r:
        return None
    return ("memory, long stream", f"growth {r['rss_growth_mb']:+.1f} MB, peak "
            f"{r['peak_rss_mb']:.0f} MB", f"{r['audio_s'] / 3600:.2f} h --fast "
            f"({r['x_realtime']:.0f}x real time)", "-")
