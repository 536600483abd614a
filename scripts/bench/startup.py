"""Start-up to the first CSV row (cold and warm numba cache), and where the time goes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, Context, CsvTail, listen_cmd, write_wav
from monitor.features import HOP, WINDOW_SAMPLES

NAME = "startup"
TARGET = "warm <= 2 s (cold reported)"


def run(ctx: Context) -> dict:
    return bench_startup(ctx.tmp, ctx.x60, 1 if ctx.quick else 3)


def _first_row_time(cmd: list[str], csvp: Path, env: dict, cwd: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=cwd)
    tail = CsvTail(csvp)
    first = None
    while proc.poll() is None:
        if first is None and tail.poll() >= 1:
            first = time.perf_counter() - t0
        time.sleep(0.002)
    total = time.perf_counter() - t0
    if first is None and tail.poll() >= 1:
        first = total
    err = proc.stderr.read().decode()
    return {"first_row_s": first, "exit_s": total, "returncode": proc.returncode,
            **({"stderr": err[-1500:]} if proc.returncode else {})}


def bench_startup(tmp: Path, x: np.ndarray, reps: int) -> dict:
    """Start-up to the first CSV row of a one-window file replayed --fast (an upper bound on
    'ready to capture': it includes analysing 4 s of audio, a few ms); cold = empty numba cache."""
    wav = write_wav(tmp / "one_window.wav", x[: WINDOW_SAMPLES + HOP])
    cache = tmp / "numba-cold"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    runs = {}

    def run(label, env):
        csvp = tmp / f"startup-{label}.csv"
        if csvp.exists():
            csvp.unlink()
        return _first_row_time(listen_cmd(wav, csvp, fast=True), csvp, env, tmp)

    runs["cold (empty NUMBA_CACHE_DIR)"] = run("cold", env)
    warm = [run(f"warm{i}", env) for i in range(reps)]
    runs["warm (same cache dir)"] = min(warm, key=lambda r: r["first_row_s"] or 1e9)
    default = [run(f"default{i}", dict(os.environ)) for i in range(reps)]
    runs["warm (default cache location)"] = min(default, key=lambda r: r["first_row_s"] or 1e9)
    # Where the time goes, in a fresh interpreter (warm cache).
    code = (
        "import time,json;t=time.perf_counter();r={}\n"
        "import numpy;r['numpy']=time.perf_counter()-t;t=time.perf_counter()\n"
        "import numba;r['numba']=time.perf_counter()-t;t=time.perf_counter()\n"
        "import monitor.features as F;r['monitor.features']=time.perf_counter()-t\n"
        "t=time.perf_counter();F.RollingSTFT().push(numpy.zeros(1024))\n"
        "r['first kernel call (cache load)']=time.perf_counter()-t;t=time.perf_counter()\n"
        "import monitor.pipeline,monitor.source,monitor.csvlog,monitor.dashboard\n"
        "r['pipeline/source/csvlog/dashboard imports']=time.perf_counter()-t\n"
        "t=time.perf_counter();from monitor.scorer import Scorer;import sys;Scorer(sys.argv[1])\n"
        "r['Scorer() (litert import + load)']=time.perf_counter()-t;t=time.perf_counter()\n"
        "import typer;r['typer']=time.perf_counter()-t\n"
        "print(json.dumps(r))\n"
    )
    return {"runs": runs, "warm_s": runs["warm (same cache dir)"]["first_row_s"],
            "cold_s": runs["cold (empty NUMBA_CACHE_DIR)"]["first_row_s"],
            "breakdown": _breakdown(code, env)}


def _breakdown(code: str, env: dict) -> dict | str:
    from monitor.scorer import DEFAULT_MODEL

    m = DEFAULT_MODEL if DEFAULT_MODEL.is_file() else Path("/tmp/untrained.tflite")
    p = subprocess.run([sys.executable, "-c", code, str(m)], capture_output=True, env=env,
                       cwd=REPO, text=True)
    try:
        return {k: round(v, 4) for k, v in json.loads(p.stdout.strip().splitlines()[-1]).items()}
    except (ValueError, IndexError):
        return f"failed: {p.stderr[-500:]}"


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "warm_s" not in r:
        return None
    w, c = r["warm_s"], r["cold_s"]
    bd = r.get("breakdown")
    slow = ""
    if isinstance(bd, dict):
        top = sorted(bd.items(), key=lambda kv: -kv[1])[:2]
        slow = "; slowest: " + ", ".join(f"{k} {v:.2f} s" for k, v in top)
    r["ok"] = w is not None and w <= 2.0
    return ("start-up", f"warm {w:.2f} s" if w else "failed",
            (f"cold compile {c:.2f} s" if c else "cold failed") + slow, "-")
