"""`specmon report` on synthetic day logs (scripts/bench_report.py): 90 days, quick 7."""

from __future__ import annotations

import sys

from bench.common import REPO, Context

NAME = "report"
TARGET = "90 days of 1-s rows <= 10 s"


def run(ctx: Context) -> dict:
    sys.path.insert(0, str(REPO / "scripts"))
    from bench_report import bench_report

    r = bench_report(days=7 if ctx.quick else 90, reps=1 if ctx.quick else 3, tmp=ctx.tmp / "report")
    if ctx.quick:
        r["ok"] = None  # 7 days: the 90-day target does not apply
    return r


def table(r: dict) -> tuple[str, str, str, str] | None:
    if "wall_s" not in r:
        return None
    return ("specmon report", f"{r['wall_s']:.2f} s (CPU {r['cpu_s']:.2f} s) for "
            f"{r['rows'] / 1e6:.1f} M rows, {r['days']} days (summarize {r['summarize_s']:.2f}, "
            f"HTML {r['html_s']:.2f}, PNG {r['png_s']:.2f} s)", f"peak RSS {r['peak_rss_mb']:.0f} MB",
            "-")
