"""Loading and summarizing `specmon listen` logs for `specmon report` (DuckDB).

Two steps, so another store can be plugged in later:

1. A *source* (``LogSource``) puts the rows into the DuckDB connection as a table or view ``raw``::

       raw(src INTEGER, t TIMESTAMP, offset_s DOUBLE, score DOUBLE, label VARCHAR, model_id VARCHAR)

   ``src`` numbers the stream the row came from (a CSV file here; a device's session in a database
   later), ``t`` is the window's end in UTC (the log's ``time_utc``), the others are the log's columns.
   ``CsvLogs`` is the source for CSV files and folders, ``StoreLogs`` for one device's windows in a
   `specmon collect` store (SQLite or PostgreSQL).
2. ``summarize()`` turns ``raw`` into a small ``ReportData``: per model, per local day and per hour
   of day. Everything heavy happens inside DuckDB; Python only sees a few thousand numbers.

Rows of different models are never pooled: every aggregate is grouped by ``model_id``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from monitor.csvlog import HEADER, HEADER_LINE
from monitor.errors import SpecmonError

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%gZ"  # what monitor.pipeline writes: ISO-8601, milliseconds, Z
GAP_MIN = 5.0  # a stretch of at least this many minutes without rows is a gap (monitor not running)
HOUR_MIN_SPEECH_S = 60.0  # an hour with less speech has no negative share in the heatmap


class LogSource(Protocol):
    """Something that can fill the ``raw`` view (see the module docstring)."""

    def describe(self) -> str:
        """One line for the report header: where the rows came from."""
        ...

    def load(self, con) -> list[str]:
        """Create ``raw`` in the DuckDB connection; return the name of each ``src`` number."""
        ...


# -- CSV files -------------------------------------------------------------------------------------
@dataclass
class CsvLogs:
    """`specmon listen` CSV logs: files and folders (a folder means the *.csv files directly in it)."""

    inputs: list[Path]
    files: list[Path] = field(default_factory=list)  # logs with rows
    empty: list[Path] = field(default_factory=list)  # header-only or zero-byte logs (skipped)

    def __post_init__(self) -> None:
        if not self.inputs:
            raise SpecmonError("no logs given")
        seen: set[Path] = set()
        for p in self.inputs:
            p = Path(p)
            if p.is_dir():
                found = sorted(q for q in p.glob("*.csv") if q.is_file())
                if not found:
                    raise SpecmonError(f"{p}: folder has no .csv logs")
            elif p.exists():
                found = [p]
            else:
                raise SpecmonError(f"{p}: no such file or folder")
            for q in found:
                key = q.resolve()
                if key in seen:  # the same log named twice (a folder and a file in it) counts once
                    continue
                seen.add(key)
                (self.files if _check_header(q) else self.empty).append(q)
        if not self.files:
            what = self.empty[0] if len(self.empty) == 1 else f"{len(self.empty)} logs"
            raise SpecmonError(f"{what}: no rows: nothing was logged yet")

    def describe(self) -> str:
        n = len(self.files)
        return str(self.files[0]) if n == 1 else f"{n} CSV logs in {_common_dir(self.files)}"

    def load(self, con) -> list[str]:
        names = [str(p) for p in self.files]
        files = ", ".join(_sql_str(n) for n in names)
        con.execute("CREATE TEMP TABLE src_names AS SELECT * FROM (VALUES "
                    + ", ".join(f"({i}, {_sql_str(n)})" for i, n in enumerate(names)) + ") v(src, name)")
        types = {c: "VARCHAR" for c in HEADER}
        types.update(time_utc="TIMESTAMP", offset_s="DOUBLE", score="DOUBLE")
        columns = "{" + ", ".join(f"{_sql_str(c)}: '{t}'" for c, t in types.items()) + "}"
        con.execute(
            "CREATE TEMP VIEW raw AS SELECT s.src::INTEGER AS src, c.time_utc AS t, c.offset_s, c.score, "
            f"c.label, c.model_id FROM read_csv([{files}], header=true, columns={columns}, "
            f"auto_detect=false, delim=',', quote='\"', escape='\"', timestampformat='{TIME_FORMAT}', "
            "filename=true) c JOIN src_names s ON s.name = c.filename"
        )
        return names


# -- a `specmon collect` store ---------------------------------------------------------------------
class StoreLogs:
    """One device's windows in a `specmon collect` store: a SQLite file or a postgresql:// URL.

    Opening checks the store and the device, so bad input fails before any work; the rows are read in
    batches (monitor.store.Store.window_batches) straight into DuckDB, never all held in Python.
    """

    FIELDS = ("time_utc", "offset_s", "score", "label", "model_id")
    BATCH = 200_000

    def __init__(self, db: str, device: str | None) -> None:
        from monitor.store import is_postgres, open_store

        self.db = str(db)
        if not is_postgres(self.db):
            p = Path(self.db)
            if p.is_dir():
                raise SpecmonError(f"--db {p}: is a folder, not a specmon collect database")
            if not p.is_file():
                raise SpecmonError(f"--db {p}: no such file")
        self.store = open_store(self.db)
        try:
            self.name = self.store.name  # a PostgreSQL URL without its password
            if device is None or self.store.count(device) == 0:
                known = self.store.devices()
                have = (f"it holds {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}" if known
                        else "it holds no windows yet")
                what = "--device is needed" if device is None else f"no windows of device {device!r}"
                raise SpecmonError(f"--db {self.name}: {what} ({have})")
        except BaseException:
            self.store.close()
            raise
        self.device = device

    def describe(self) -> str:
        return f"device {self.device} in {self.name}"

    def load(self, con) -> list[str]:
        con.execute("CREATE TEMP TABLE raw (src INTEGER, t TIMESTAMP, offset_s DOUBLE, score DOUBLE, "
                    "label VARCHAR, model_id VARCHAR)")
        try:
            for rows in self.store.window_batches(self.device, self.FIELDS, self.BATCH):
                a = np.array(rows, dtype=object)  # one object array, columns as views: no per-row work
                con.register("batch", {f: a[:, k] for k, f in enumerate(self.FIELDS)})
                con.execute(
                    "INSERT INTO raw SELECT 0, coalesce(try_strptime(time_utc, "
                    f"'{TIME_FORMAT}'), try_cast(rtrim(time_utc, 'Z') AS TIMESTAMP)), offset_s::DOUBLE, "
                    "score::DOUBLE, label, model_id FROM batch")
                con.unregister("batch")
        except SpecmonError:
            raise
        except Exception as e:  # the database went away mid-read, or a row DuckDB cannot take
            raise SpecmonError(f"--db {self.name}: cannot read the windows ({' '.join(str(e).split())})"
                               ) from None
        finally:
            self.store.close()
        bad = con.execute("SELECT count(*) FROM raw WHERE t IS NULL OR offset_s IS NULL").fetchone()[0]
        if bad:
            raise SpecmonError(f"--db {self.name}: {bad} window(s) of device {self.device!r} have an "
                               "unreadable time_utc or offset_s")
        return [f"{self.device} ({self.name})"]


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _common_dir(paths: list[Path]) -> str:
    parents = {str(p.parent) for p in paths}
    return parents.pop() if len(parents) == 1 else "several folders"


def _check_header(path: Path) -> bool:
    """True if path is a listen log with rows, False if it is empty; SpecmonError if it is not one."""
    try:
        with path.open("rb") as f:
            head = f.read(len(HEADER_LINE) + 256)
    except OSError as e:
        raise SpecmonError(f"{path}: cannot read ({e.strerror or e})") from None
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    first = None if text is None else text.split("\n", 1)[0].rstrip("\r")
    if first != HEADER_LINE.rstrip("\n"):
        hint = ""
        if first is not None and first.startswith("file,start_s"):
            hint = " (this is `specmon score` output, which has no times; report needs listen logs)"
        elif text is None:
            hint = " (not a text file)"
        raise SpecmonError(f"{path}: not a specmon listen log: the first line is not its header{hint}")
    rest = text.split("\n", 1)[1] if "\n" in text else ""
    return rest.strip() != ""


def _duckdb_error(e: Exception) -> SpecmonError:
    """DuckDB's multi-line CSV errors as one line: file, line, what was wrong."""
    msg = str(e)
    file = re.search(r"^\s*file = (.+)$", msg, re.M)
    line = re.search(r"CSV Error on Line: (\d+)", msg)
    why = re.search(r"(Could not convert string .+? to '\w+'|Expected Number of Columns: \d+ Found: \d+)",
                    msg)
    if file and line:
        return SpecmonError(f"{file.group(1).strip()}: line {line.group(1)}: not a valid listen-log row"
                            + (f" ({why.group(1)})" if why else ""))
    return SpecmonError("cannot read the logs: " + msg.strip().splitlines()[0])


# -- the summary -----------------------------------------------------------------------------------
@dataclass
class Threshold:
    """What the labels say about the threshold: every score > neutral_max was called negative, every
    score < negative_min neutral. Consistent when one threshold explains all rows."""

    neutral_max: float | None
    negative_min: float | None

    @property
    def consistent(self) -> bool:
        # scores are logged to 4 decimals, labels come from the unrounded score: equal is consistent
        return self.neutral_max is None or self.negative_min is None or self.neutral_max <= self.negative_min

    def text(self) -> str:
        lo, hi = self.neutral_max, self.negative_min
        if lo is None and hi is None:
            return "unknown (no scored windows)"
        if not self.consistent:
            return f"more than one (neutral scores up to {lo:.4f}, negative from {hi:.4f})"
        if hi is None:
            return f"above {lo:.4f} (no window was called negative)"
        if lo is None:
            return f"at most {hi:.4f} (no window was called neutral)"
        if lo == hi:  # a score logged as exactly the threshold, rounded both ways
            return f"{hi:.4f}".rstrip("0").rstrip(".")
        for d in range(1, 5):  # the shortest decimal in (lo, hi]: how a person would have set it
            c = (math.floor(round(lo * 10**d, 6)) + 1) / 10**d
            if lo < c <= hi:
                return f"{c:.{d}f}"
        return f"{hi:.4f}"


@dataclass
class FileInfo:
    name: str
    model_id: str
    rows: int
    first: dt.datetime
    last: dt.datetime
    stride_s: float
    threshold: Threshold


@dataclass
class ModelData:
    """Everything the report shows for one model; per-day arrays are aligned with ``days``."""

    model_id: str
    days: list[dt.date]
    windows: np.ndarray  # rows per day
    listen_s: np.ndarray  # seconds the monitor was listening (rows x stride)
    speech_s: np.ndarray  # seconds of speech (scored windows x stride)
    scored: np.ndarray
    negative: np.ndarray
    median: np.ndarray  # median score of the day's scored windows (NaN if none)
    dropped_s: np.ndarray  # audio missing inside a session (stream-clock jumps)
    holes: np.ndarray  # how many such jumps
    hour_listen_s: np.ndarray  # days x 24
    hour_speech_s: np.ndarray
    hour_negative: np.ndarray  # negative windows per day and hour
    hour_scored: np.ndarray
    threshold: Threshold
    files: list[FileInfo]
    gaps: list[tuple[dt.datetime, dt.datetime]]  # local times, longest first
    gap_count: int
    gap_s: float
    sessions: int
    first: dt.datetime  # local time of the first and last row
    last: dt.datetime

    @property
    def negative_share(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.scored > 0, self.negative / np.maximum(self.scored, 1), np.nan)

    @property
    def nospeech_share(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.windows > 0, 1 - self.scored / np.maximum(self.windows, 1), np.nan)

    @property
    def stride_s(self) -> float:
        return float(np.median([f.stride_s for f in self.files]))


@dataclass
class ReportData:
    models: list[ModelData]  # the model that made the newest rows first
    source: str
    tz: str
    rows: int
    empty: list[str]

    @property
    def last_day(self) -> dt.date:
        return max(m.days[-1] for m in self.models)


def summarize(source: LogSource, tz: str | None = None) -> ReportData:
    """Load the source into DuckDB and reduce it to per-model, per-day and per-hour numbers.

    tz: IANA time zone for days and hours of day (default: this machine's).
    """
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        tz_name = tz or con.execute("SELECT current_setting('TimeZone')").fetchone()[0]
        _zone(tz_name)
        names = source.load(con)
        try:
            return _summarize(con, source, names, tz_name)
        except duckdb.Error as e:
            raise _duckdb_error(e) from None
    finally:
        con.close()


def _summarize(con, source: LogSource, names: list[str], tz: str) -> ReportData:
    con.execute("SET preserve_insertion_order = false")  # nothing relies on it; less memory
    # One pass over the logs and no sorting of rows. A session's rows share one start time, time_utc
    # minus offset_s (the pipeline stamps each window at its start plus the offset, and the stream
    # clock moves on over dropped audio), so the start in whole seconds keys the session.
    con.execute("""
        CREATE TEMP TABLE r AS
        SELECT src, model_id, t, offset_s, round(epoch(t) - offset_s)::BIGINT AS sk, score::FLOAT AS score,
               label = 'negative' AS neg, label = 'neutral' AS neu
        FROM raw
    """)
    total, lo, hi = con.execute("SELECT count(*), epoch(min(t)), epoch(max(t)) FROM r").fetchone()
    if total == 0:
        raise SpecmonError(f"{source.describe()}: no rows: nothing was logged yet")
    lt = _local_time_sql("t", tz, lo, hi)
    # Sessions in one-minute bins (about 1/60 of the rows): stride, dropped audio and gaps come from
    # these, ordered by time; the rows themselves are only ever grouped.
    con.execute("""
        CREATE TEMP TABLE b0 AS
        SELECT src, sk, (epoch(t) // 60)::BIGINT AS mi, any_value(model_id) AS model_id, count(*) AS n,
               min(offset_s) AS o0, max(offset_s) AS o1, min(t) AS t0, max(t) AS t1
        FROM r GROUP BY src, sk, mi
    """)
    keys = con.execute("SELECT DISTINCT src, sk FROM b0 ORDER BY src, sk").fetchall()
    sid, prev, mapping = -1, None, []
    for src, sk in keys:  # a start within a second of the previous one is the same session, rounded
        if prev is None or src != prev[0] or sk - prev[1] > 1:
            sid += 1
        mapping.append(f"({src}, {sk}, {sid})")
        prev = (src, sk)
    con.execute("CREATE TEMP TABLE skmap AS SELECT * FROM (VALUES " + ", ".join(mapping)
                + ") v(src, sk, sid)")
    con.execute("""
        CREATE TEMP TABLE b AS
        SELECT src, sid, mi, any_value(model_id) AS model_id, sum(n) AS n, min(o0) AS o0, max(o1) AS o1,
               min(t0) AS t0, max(t1) AS t1
        FROM b0 JOIN skmap USING (src, sk) GROUP BY src, sid, mi
    """)
    # Stride per stream: the usual offset step within a minute (1 s strides are 0.992 s: whole
    # 32-ms hops); for strides over a minute, the session's average step.
    con.execute("""
        CREATE TEMP TABLE st AS
        WITH s AS (SELECT src, sid, (max(o1) - min(o0)) / nullif(sum(n) - 1, 0) AS whole,
                          median((o1 - o0) / (n - 1)) FILTER (WHERE n >= 2) AS inner_step
                   FROM b GROUP BY src, sid)
        SELECT src, coalesce(median(inner_step), median(whole), 1.0) AS stride FROM s GROUP BY src
    """)
    files = con.execute("""
        SELECT src, model_id, count(*), epoch(min(t)), epoch(max(t)),
               any_value(st.stride), max(score) FILTER (WHERE neu), min(score) FILTER (WHERE neg)
        FROM r JOIN st USING (src) GROUP BY src, model_id ORDER BY min(t), src
    """).fetchall()
    hours = con.execute(f"""
        SELECT model_id, ({lt})::DATE AS d, hour({lt}) AS h, count(*), sum(stride), count(score),
               count(*) FILTER (WHERE neg), coalesce(sum(stride) FILTER (WHERE score IS NOT NULL), 0)
        FROM r JOIN st USING (src) GROUP BY ALL
    """).fetchall()
    medians = dict(
        ((m, d), v) for m, d, v in con.execute(
            f"SELECT model_id, ({lt})::DATE, median(score) FROM r WHERE score IS NOT NULL GROUP BY ALL"
        ).fetchall()
    )
    # Dropped audio: inside a session the offsets advance one stride per window; more is a hole.
    blt = _local_time_sql("t0", tz, lo, hi)
    drops = con.execute(f"""
        WITH d AS (
            SELECT model_id, t0, stride, o1 - o0 - (n - 1) * stride AS inner_gap,
                   o0 - lag(o1) OVER (PARTITION BY src, sid ORDER BY mi) - stride AS cross_gap
            FROM b JOIN st USING (src)),
        h AS (SELECT model_id, t0, CASE WHEN inner_gap > 0.5 * stride THEN inner_gap ELSE 0 END AS g1,
                     CASE WHEN cross_gap > 0.5 * stride THEN cross_gap ELSE 0 END AS g2 FROM d)
        SELECT model_id, ({blt})::DATE, hour({blt}), sum(g1 + g2), count(*) FILTER (WHERE g1 > 0)
               + count(*) FILTER (WHERE g2 > 0)
        FROM h WHERE g1 > 0 OR g2 > 0 GROUP BY ALL
    """).fetchall()
    sessions = dict(con.execute(
        "SELECT model_id, count(DISTINCT (src, sid)) FROM b GROUP BY model_id").fetchall())
    # Gaps: no rows at all (from any log of the model) for at least GAP_MIN minutes.
    gaps = con.execute(f"""
        WITH g AS (SELECT model_id, t0, max(t1) OVER (PARTITION BY model_id ORDER BY t0
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end FROM b)
        SELECT model_id, epoch(prev_end), epoch(t0) FROM g
        WHERE t0 - prev_end >= INTERVAL {GAP_MIN} MINUTE ORDER BY t0 - prev_end DESC
    """).fetchall()

    models = _group(files, hours, drops, sessions, medians, gaps, names, tz)
    return ReportData(models, source.describe(), tz, int(total),
                      [str(p) for p in getattr(source, "empty", [])])


def _zone(tz: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecmonError(f"unknown time zone {tz!r} (use a name like Europe/Berlin or UTC)") from None


def _local_time_sql(col: str, tz: str, lo: float, hi: float) -> str:
    """SQL for the local time of UTC timestamp column col in tz, between epochs lo and hi.

    The UTC offset is constant between a zone's transitions (daylight saving), so it is a CASE over
    the few transitions in the logs' span: plain arithmetic per row, much cheaper than a time-zone
    lookup per row.
    """
    zone = _zone(tz)

    def off(x: float) -> int:
        return int(dt.datetime.fromtimestamp(x, dt.timezone.utc).astimezone(zone).utcoffset()
                   .total_seconds())

    cases, x, cur = [], lo - 900.0, off(lo - 900.0)
    while x < hi:
        nxt = min(x + 900.0, hi)
        if off(nxt) != cur:
            a, b = x, nxt  # the change is in (a, b]: find the second
            while b - a > 1:
                mid = (a + b) // 2 if b - a > 2 else a + 1
                a, b = (mid, b) if off(mid) == cur else (a, mid)
            cases.append((b, cur))
            cur = off(b)
        x = nxt
    if not cases:
        return f"({col} + INTERVAL {cur} SECOND)"
    whens = " ".join(
        f"WHEN {col} < TIMESTAMP '{dt.datetime.fromtimestamp(b, dt.timezone.utc):%Y-%m-%d %H:%M:%S}' "
        f"THEN {o}" for b, o in cases)
    return f"({col} + to_seconds(CASE {whens} ELSE {cur} END))"


def _local(epoch_s: float, tz: str) -> dt.datetime:
    """A UTC epoch as a local time in tz (UTC if this system has no zone data for it)."""
    return dt.datetime.fromtimestamp(epoch_s, _zone(tz))


def _r(x: float | None) -> float | None:
    """A score as logged (4 decimals; held as float32 in DuckDB to save memory)."""
    return None if x is None else round(float(x), 4)


def _group(files, hours, drops, sessions, medians, gaps, names: list[str], tz: str) -> list[ModelData]:
    by_model: dict[str, list] = {}
    for src, model, n, first, last, stride, nmax, nmin in files:
        by_model.setdefault(model, []).append(
            FileInfo(names[src], model, n, _local(first, tz), _local(last, tz), float(stride),
                     Threshold(_r(nmax), _r(nmin))))
    out = []
    for model, finfo in by_model.items():
        hrs = [h for h in hours if h[0] == model]
        d0, d1 = min(h[1] for h in hrs), max(h[1] for h in hrs)
        days = [d0 + dt.timedelta(days=i) for i in range((d1 - d0).days + 1)]
        nd = len(days)
        H = {k: np.zeros((nd, 24)) for k in ("n", "listen", "scored", "neg", "speech", "drop", "holes")}
        for _, d, h, *vals in hrs:
            for k, v in zip(("n", "listen", "scored", "neg", "speech"), vals, strict=True):
                H[k][(d - d0).days, h] = v
        for _, d, h, drop, holes in (x for x in drops if x[0] == model):
            if d0 <= d <= d1:
                H["drop"][(d - d0).days, h] += drop
                H["holes"][(d - d0).days, h] += holes
        neutral_max = [f.threshold.neutral_max for f in finfo if f.threshold.neutral_max is not None]
        negative_min = [f.threshold.negative_min for f in finfo if f.threshold.negative_min is not None]
        mg = [g for g in gaps if g[0] == model]
        out.append(ModelData(
            model_id=model, days=days,
            windows=H["n"].sum(1).astype(int), listen_s=H["listen"].sum(1), speech_s=H["speech"].sum(1),
            scored=H["scored"].sum(1).astype(int), negative=H["neg"].sum(1).astype(int),
            median=np.array([float(medians.get((model, d), math.nan)) for d in days]),
            dropped_s=H["drop"].sum(1), holes=H["holes"].sum(1).astype(int),
            hour_listen_s=H["listen"], hour_speech_s=H["speech"], hour_negative=H["neg"],
            hour_scored=H["scored"],
            threshold=Threshold(max(neutral_max) if neutral_max else None,
                                min(negative_min) if negative_min else None),
            files=finfo,
            gaps=[(_local(a, tz), _local(b, tz)) for _, a, b in mg[:10]],
            gap_count=len(mg), gap_s=float(sum(b - a for _, a, b in mg)),
            sessions=int(sessions.get(model, 0)),
            first=min(f.first for f in finfo), last=max(f.last for f in finfo),
        ))
    out.sort(key=lambda m: m.last, reverse=True)
    return out
