"""`specmon score`: in-process score_signal, and the CLI end to end (start-up included)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np

from bench.common import Context, specmon_cmd, write_wav
from monitor.features import SAMPLE_RATE

NAME = "score"
TARGET = ">= 500x real time"


def run(ctx: Context) -> dict:
    x = np.tile(ctx.x60, 1 if ctx.quick else 10)
    return bench_score(x, write_wav(ctx.tmp / "score.wav", x), ctx.int8, ctx.tmp)


def bench_score(x: np.ndarray, wav: Path, int8: Path, tmp: Path) -> dict:
    """`specmon score`: in-process score_signal, and the CLI end to end (start-up included)."""
    from monitor.scorer import Scorer
    from monitor.scoring import score_signal

    sc = Scorer(int8)
    score_signal(x[: 10 * SAMPLE_RATE], sc)
    dur = x.shape[0] / SAMPLE_RATE
    c0, t0 = time.process_time(), time.perf_counter()
    res = score_signal(x, sc)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    out = {"audio_s": dur, "windows": len(res), "in_process_wall_s": wall,
           "in_process_cpu_s": cpu, "x_realtime": dur / wall}
    t0 = time.perf_counter()
    p = subprocess.run(specmon_cmd() + ["score", str(wav), "--model", str(int8), "-o",
                                        str(tmp / "score.csv")], capture_output=True, cwd=tmp)
    cli = time.perf_counter() - t0
    out["cli_wall_s"] = cli
    out["cli_x_realtime"] = dur / cli
    out["cli_returncode"] = p.returncode
    out["ratio"] = out["x_realtime"]
    out["ok"] = out["x_realtime"] >= 500
    return out


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "ratio" not in r:
        return None
    return ("specmon score", f"{r['x_realtime']:.0f}x real time in-process "
            f"(CLI incl. start-up {r['cli_x_realtime']:.0f}x)",
            f"real time ({r['audio_s']:.0f} s audio)", f"{r['x_realtime']:.0f}x")
