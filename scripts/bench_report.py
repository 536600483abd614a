#!/usr/bin/env python
"""How long `specmon report` takes on 90 days of one-second rows (target: <= 10 s).

    python scripts/bench_report.py                      # makes 90 synthetic day logs in a temp dir
    python scripts/bench_report.py --logs /tmp/demo90   # or uses logs you made with make_demo_logs.py
    python scripts/bench_report.py --days 7 --reps 1    # a quick run

Times the whole command as a user runs it (`specmon report LOGS --out ... --png ...` in a fresh
process, start-up included; median of --reps runs; wall clock and the CPU time it used, which
depends less on what else the machine is doing), plus, in this process, the stages: loading and
summarizing with DuckDB, drawing the HTML page, drawing the PNG. Also the child's peak RSS and the
machine's load, since the number means little without them. scripts/bench.py runs this as its
`report` row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_S = 10.0


def _specmon() -> list[str]:
    exe = Path(sys.executable).with_name("specmon")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "monitor.cli"]


def bench_report(logs: Path | None = None, days: int = 90, reps: int = 3, tmp: Path | None = None) -> dict:
    """Time `specmon report` on `logs` (made here, `days` long, when None). Returns a result dict."""
    from make_demo_logs import make_logs

    own = tmp is None
    tmp = Path(tempfile.mkdtemp(prefix="specmon-bench-report-", dir="/tmp")) if own else tmp
    try:
        if logs is None:
            logs = tmp / "logs"
            t0 = time.perf_counter()
            make_logs(logs, days=days)
            gen_s = time.perf_counter() - t0
        else:
            gen_s = None
        files = sorted(logs.glob("*.csv"))
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        out, png = tmp / "report.html", tmp / "report.png"
        walls, cpus = [], []
        for _ in range(reps):
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            p = subprocess.run([*_specmon(), "report", str(logs), "--out", str(out), "--png", str(png)],
                               capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime)
            if p.returncode != 0:
                raise RuntimeError(f"specmon report failed: {p.stderr.strip()}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

        from monitor import report_html
        from monitor.report import ElevatedRule, assess
        from monitor.report_data import CsvLogs, summarize

        t0 = time.perf_counter()
        data = summarize(CsvLogs([logs]))
        t1 = time.perf_counter()
        verdicts = [assess(m, ElevatedRule(), data.last_day) for m in data.models]
        page = report_html.render_html(data, verdicts)
        t2 = time.perf_counter()
        report_html.render_png(data, verdicts)
        t3 = time.perf_counter()
        wall = statistics.median(walls)
        return {
            "rows": data.rows, "days": sum(len(m.days) for m in data.models), "files": len(files),
            "csv_mb": round(size_mb, 1), "generate_s": gen_s,
            "wall_s": wall, "wall_all_s": walls, "cpu_s": statistics.median(cpus),
            "summarize_s": t1 - t0, "html_s": t2 - t1,
            "png_s": t3 - t2, "html_kb": len(page.encode()) / 1e3, "peak_rss_mb": peak_mb,
            "target_s": TARGET_S, "ok": wall <= TARGET_S,
            "load": os.getloadavg(), "cpus": os.cpu_count(),
        }
    finally:
        if own:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=Path, default=None, help="a folder of listen logs (default: make 90 days)")
    ap.add_argument("--days", type=int, default=90, help="days of logs to make (without --logs)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args(argv)
    r = bench_report(args.logs, args.days, args.reps)
    print(f"specmon report: {r['rows']:,} rows, {r['days']} days, {r['files']} files, "
          f"{r['csv_mb']:.0f} MB of CSV")
    print(f"  whole command (fresh process, median of {len(r['wall_all_s'])}): {r['wall_s']:.2f} s "
          f"(target <= {TARGET_S:g} s: {'OK' if r['ok'] else 'MISS'}); runs "
          + ", ".join(f"{w:.2f}" for w in r["wall_all_s"]) + f"; CPU time (user+sys) {r['cpu_s']:.2f} s")
    print(f"  stages in-process: load+summarize {r['summarize_s']:.2f} s, HTML {r['html_s']:.2f} s "
          f"({r['html_kb']:.0f} kB), PNG {r['png_s']:.2f} s; child peak RSS {r['peak_rss_mb']:.0f} MB")
    print(f"  load average {', '.join(f'{x:.1f}' for x in r['load'])} on {r['cpus']} CPUs")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
