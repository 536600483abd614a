#!/usr/bin/env python
"""Synthetic `specmon listen` day logs for trying and benchmarking `specmon report`.

    python scripts/make_demo_logs.py /tmp/demo                  # 90 days, one row per 0.992 s (~7.8 M rows)
    python scripts/make_demo_logs.py /tmp/demo --days 21 --second-model-days 5

One file per day, `specmon-YYYYmmdd-000000.csv`, in exactly the format `specmon listen` writes, with
the header it writes. The logs are made up (no audio, no model involved) but shaped like a real
round-the-clock monitor: speech in minutes-long runs during the day and evening, none at night; a
score level that drifts upward over the last `--elevated-days` days; a few dropped-audio holes
(rows missing, the stream clock moving on, as after a ring-buffer overflow); some days where the
monitor was off for a few hours (a gap, then a new session whose offsets restart); optionally the
last days made by another model. Deterministic for a given --seed. Generated with DuckDB in a few
seconds per 10 M rows; the data is for local use, never commit it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import duckdb

HEADER = "time_utc,offset_s,start_s,end_s,score,label,smoothed,rms_dbfs,voiced,latency_ms,model_id"
STEP_S = 0.992  # stride 1 s rounded to whole 32-ms hops, as `specmon listen --stride 1` does
WINDOW_S = 4.032
MODEL_A = "specmon-5a23e71a"
MODEL_B = "specmon-demo-b2"

# One day's rows; $-parameters filled per day. u(k) is a deterministic uniform in [0, 1).
DAY_SQL = """
WITH base AS (
    SELECT i, {window} + {step} * i AS off0, floor(({window} + {step} * i) / 3600)::INT AS hour,
           floor(i * {step} / 60)::BIGINT AS minute
    FROM range(0, {rows}) t(i)
), u AS (
    SELECT *,
        (hash({seed}, {day}, minute, 1) % 1000000) / 1e6 AS u_min,
        (hash({seed}, {day}, i, 2) % 1000000) / 1e6 AS u1,
        (hash({seed}, {day}, i, 3) % 1000000) / 1e6 AS u2,
        (hash({seed}, {day}, i, 4) % 1000000) / 1e6 AS u3,
        (hash({seed}, {day}, minute, 5) % 1000000) / 1e6 AS u4
    FROM base
), kept AS (
    -- the monitor was off between gap_a and gap_b (seconds of the day); dropped-audio holes
    SELECT * FROM u
    WHERE NOT (off0 >= {gap_a} AND off0 < {gap_b})
      AND NOT (i % {hole_every} BETWEEN 7 AND 7 + {hole_rows} - 1)
), rows AS (
    SELECT *,
        -- a new session after the gap: its offsets restart at one window
        CASE WHEN off0 >= {gap_b} AND {gap_b} > {gap_a} THEN off0 - {gap_b} + {window} ELSE off0 END
            AS off,
        CASE WHEN hour BETWEEN 7 AND 22 THEN (CASE WHEN hour BETWEEN 18 AND 21 THEN 0.55 ELSE 0.35 END)
             ELSE 0.0 END > u_min AS speech,
        least(0.999, greatest(0.001,
            {level} + 0.22 * (u1 + u2 + u3 - 1.5) * 2 + 0.15 * (u4 - 0.5))) AS s
    FROM kept
)
SELECT
    strftime(TIMESTAMP '{date}' + to_microseconds((off0 * 1e6)::BIGINT), '%Y-%m-%dT%H:%M:%S.%gZ')
        AS time_utc,
    printf('%.3f', off) AS offset_s,
    printf('%.3f', off - {window}) AS start_s,
    printf('%.3f', off) AS end_s,
    CASE WHEN speech THEN printf('%.4f', s) END AS score,
    CASE WHEN NOT speech THEN 'no-speech' WHEN s >= {threshold} THEN 'negative' ELSE 'neutral' END
        AS label,
    printf('%.4f', least(0.999, greatest(0.001, {level} + 0.1 * (u4 - 0.5)))) AS smoothed,
    printf('%.1f', CASE WHEN speech THEN -26 + 8 * (u1 - 0.5) ELSE -66 + 6 * (u2 - 0.5) END) AS rms_dbfs,
    printf('%.2f', CASE WHEN speech THEN 0.6 + 0.4 * u3 ELSE 0.1 * u3 END) AS voiced,
    printf('%.1f', 0.8 + 0.8 * u2) AS latency_ms,
    '{model}' AS model_id
FROM rows ORDER BY i
"""


def day_level(day: int, days: int, elevated_days: int, seed: int) -> float:
    """The day's score level: calm, with a rise over the last elevated_days days."""
    wobble = 0.05 * (((day * 7919 + seed * 104729) % 97) / 97 - 0.5)
    if day >= days - elevated_days:
        ramp = min(1.0, (day - (days - elevated_days) + 1) / 4)
        return 0.30 + 0.22 * ramp + wobble
    return 0.30 + wobble


def make_logs(folder: Path, days: int = 90, end: dt.date | None = None, seed: int = 1,
              elevated_days: int = 12, second_model_days: int = 0, threshold: float = 0.4,
              step_s: float = STEP_S) -> int:
    """Write `days` day files into folder; returns the number of rows written.

    step_s: seconds between windows (0.992 is `--stride 1`; the tests use a coarse step for speed)."""
    folder.mkdir(parents=True, exist_ok=True)
    end = end or dt.date.today() - dt.timedelta(days=1)
    rows_per_day = int((86400 - WINDOW_S) // step_s) + 1  # every window ends inside its day
    con = duckdb.connect()
    total = 0
    for d in range(days):
        date = end - dt.timedelta(days=days - 1 - d)
        gap = (2 * 3600, 6 * 3600) if d % 11 == 5 else (0, 0)  # monitor off 02:00-06:00
        sql = DAY_SQL.format(
            window=WINDOW_S, step=step_s, rows=rows_per_day, seed=seed, day=d, date=date.isoformat(),
            gap_a=gap[0], gap_b=gap[1], hole_rows=3 if d % 3 == 0 else 0,
            hole_every=max(rows_per_day // 4, 2) | 1,
            level=day_level(d, days, elevated_days, seed), threshold=threshold,
            model=MODEL_B if d >= days - second_model_days else MODEL_A,
        )
        path = folder / f"specmon-{date:%Y%m%d}-000000.csv"
        total += con.execute(f"COPY ({sql}) TO '{path}' (HEADER true, DELIMITER ',')").fetchone()[0]
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="where to write the day files (created if missing)")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--end", type=dt.date.fromisoformat, default=None,
                    help="last day, YYYY-MM-DD (default: yesterday)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--elevated-days", type=int, default=12,
                    help="the last N days drift toward negative (0: never)")
    ap.add_argument("--second-model-days", type=int, default=0,
                    help="the last N days are made by another model id")
    ap.add_argument("--step", type=float, default=STEP_S,
                    help="seconds between windows (default 0.992: `specmon listen --stride 1`)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    n = make_logs(args.folder, args.days, args.end, args.seed, args.elevated_days,
                  args.second_model_days, step_s=args.step)
    print(f"wrote {n} rows in {args.days} day files to {args.folder} ({time.perf_counter() - t0:.1f} s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
