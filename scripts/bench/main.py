"""The runner: options, the rows in order, the table, bench.json."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from bench.common import Context, cpu_load, resolve_models, test_audio
from monitor.features import WINDOW_SAMPLES, stft_logpower

ROWS = ["stft", "rolling", "prosody", "voice", "whisper", "model", "cpu", "dashboard", "score", "startup",
        "memory", "latency", "report"]
MODULES = {name: importlib.import_module(f"bench.{name}") for name in ROWS}
TARGETS = {name: m.TARGET for name, m in MODULES.items()}


def summary_rows(R: dict) -> list[tuple[str, str, str, str, str]]:
    """(row, ours, compared with, ratio, target/ok) strings for the table."""
    out = []
    for name, mod in MODULES.items():
        r = R.get(name)
        if isinstance(r, str):
            out.append((name, r, "", "", "ERROR"))
            continue
        if not isinstance(r, dict):
            continue
        rows = mod.table(r)
        if rows is None:
            out.append((name, json.dumps({k: v for k, v in r.items() if isinstance(v, str)})[:200],
                        "", "", "n/a"))
            continue
        v = r.get("ok")
        ok = "n/a" if v is None else ("OK" if v else "MISS")
        for i, row in enumerate(rows if isinstance(rows, list) else [rows]):
            out.append((*row, f"{mod.TARGET} {ok}" if i == 0 else ""))
    return out


def print_table(rows, load) -> None:
    head = ("what", "ours", "compared with", "ratio", "target")
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="specmon benchmark", show_lines=True)
        for h in head:
            t.add_column(h, overflow="fold")
        for r in rows:
            t.add_row(*r)
        Console(width=max(shutil.get_terminal_size().columns, 150)).print(t)
    except ImportError:
        print(" | ".join(head))
        for r in rows:
            print(" | ".join(r))
    print(f"load: {load}")


def main(argv: list[str] | None = None, doc: str = "specmon benchmark suite") -> int:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (less audio, fewer reps)")
    ap.add_argument("--json", default="bench.json", help="where to write the results")
    ap.add_argument("--model", default=None, help="int8 .tflite (default: the shipped model)")
    ap.add_argument("--only", default=",".join(ROWS), help=f"comma list of rows: {','.join(ROWS)}")
    ap.add_argument("--no-keras", action="store_true", help="skip TensorFlow/Keras comparisons")
    ap.add_argument("--memory-seconds", type=float, default=None,
                    help="audio streamed in the memory row (default 3600, quick 120)")
    ap.add_argument("--cpu-seconds", type=float, default=None,
                    help="audio replayed at real-time pace in the CPU row (default 20, quick 10)")
    ap.add_argument("--dashboard-seconds", type=float, default=None,
                    help="audio replayed in a terminal by the dashboard row (default 20, quick 8)")
    ap.add_argument("--reps", type=int, default=None,
                    help="repetitions of the side-by-side rows (cpu, dashboard; default 3, quick 1)")
    args = ap.parse_args(argv)
    only = [r.strip() for r in args.only.split(",") if r.strip()]
    bad = [r for r in only if r not in ROWS]
    if bad:
        ap.error(f"unknown rows: {bad}")
    keras = not args.no_keras and not args.quick
    if keras:
        try:
            import importlib.util

            keras = importlib.util.find_spec("tensorflow") is not None
        except (ImportError, ValueError):
            keras = False
    R: dict = {"meta": {
        "quick": args.quick, "python": sys.version.split()[0], "machine": platform.machine(),
        "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_before": cpu_load()}}
    tmp = Path(tempfile.mkdtemp(prefix="specmon-bench-", dir="/tmp"))
    try:
        src: list = []
        x60 = test_audio(60.0, src)
        R["meta"]["audio"] = src[0]
        int8, f32, note = resolve_models(args.model, tmp)
        common.MODEL[:] = [int8]
        R["meta"]["model"] = note
        stft_logpower(x60[:WINDOW_SAMPLES])  # compile / load the numba cache once
        ctx = Context(
            quick=args.quick, tmp=tmp, x60=x60, int8=int8, f32=f32, keras=keras,
            cpu_s=args.cpu_seconds or (10.0 if args.quick else 20.0),
            mem_s=args.memory_seconds or (120.0 if args.quick else 3600.0),
            dash_s=args.dashboard_seconds or (8.0 if args.quick else 20.0),
            reps=args.reps or (1 if args.quick else 3),
        )
        for name in [r for r in ROWS if r in only]:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                R[name] = MODULES[name].run(ctx)
            except Exception as e:  # noqa: BLE001 - one failing row must not lose the others
                R[name] = f"failed: {type(e).__name__}: {e}"
            print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr,
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    R["meta"]["load_after"] = cpu_load()
    rows = summary_rows(R)
    cols = ("what", "ours", "compared_with", "ratio", "target")
    R["table"] = [dict(zip(cols, r, strict=True)) for r in rows]
    Path(args.json).write_text(json.dumps(R, indent=2, default=str) + "\n")
    print_table(rows, {k: R["meta"]["load_before"].get(k) for k in ("loadavg", "busy_processes")})
    print(f"wrote {args.json}")
    return 0
