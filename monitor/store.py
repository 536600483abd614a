"""The fleet store: every device's windows and last status, in SQLite (a file) or PostgreSQL.

One schema for both. A window is keyed by (device, seq), so a message delivered twice (MQTT QoS 1 is
at-least-once) never makes a second row. Every statement is parameterized: values never become SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from monitor.errors import SpecmonError

# The CSV log's fields, in its order, then what the fleet adds.
WINDOW_FIELDS = ("time_utc", "offset_s", "start_s", "end_s", "score", "label", "smoothed",
                 "rms_dbfs", "voiced", "latency_ms", "model_id", "threshold")
_REAL = "DOUBLE PRECISION"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS windows (device TEXT NOT NULL, seq BIGINT NOT NULL, "
    f"time_utc TEXT NOT NULL, offset_s {_REAL}, start_s {_REAL}, end_s {_REAL}, score {_REAL}, "
    f"label TEXT NOT NULL, smoothed {_REAL}, rms_dbfs {_REAL}, voiced {_REAL}, latency_ms {_REAL}, "
    f"model_id TEXT NOT NULL, threshold {_REAL}, received_utc TEXT NOT NULL, "
    "PRIMARY KEY (device, seq))",
    "CREATE INDEX IF NOT EXISTS windows_device_time ON windows (device, time_utc)",
    "CREATE TABLE IF NOT EXISTS device_status (device TEXT PRIMARY KEY, status TEXT, status_utc TEXT, "
    "summary TEXT, summary_utc TEXT)",
)
_COLS = ("device", "seq", *WINDOW_FIELDS, "received_utc")


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


class Store:
    """Base: SQL written once with '?' placeholders; the PostgreSQL store translates them."""

    placeholder = "?"

    def __init__(self, conn, name: str) -> None:
        self.conn = conn
        self.name = name
        try:
            cur = self.conn.cursor()
            for stmt in SCHEMA:
                cur.execute(stmt)
            self.conn.commit()
        except Exception as e:
            raise SpecmonError(f"{name}: cannot create the tables ({_one_line(e)})") from None

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def add_windows(self, rows: list[tuple]) -> int:
        """Insert (device, seq, *WINDOW_FIELDS, received_utc) rows in one transaction; returns how many
        were new (the rest were copies already stored)."""
        if not rows:
            return 0
        marks = ",".join("?" * len(_COLS))
        sql = self._sql(f"INSERT INTO windows ({','.join(_COLS)}) VALUES ({marks}) "
                        "ON CONFLICT (device, seq) DO NOTHING")
        cur = self.conn.cursor()
        cur.executemany(sql, rows)  # rowcount: the rows inserted, summed over the batch
        new = cur.rowcount
        self.conn.commit()
        return new

    def set_status(self, device: str, status: str, when_utc: str) -> None:
        self._upsert(device, "status", status, "status_utc", when_utc)

    def set_summary(self, device: str, summary_json: str, when_utc: str) -> None:
        self._upsert(device, "summary", summary_json, "summary_utc", when_utc)

    def _upsert(self, device: str, col: str, value: str, tcol: str, when: str) -> None:
        # col/tcol are fixed names from this module, never from a message
        sql = self._sql(f"INSERT INTO device_status (device, {col}, {tcol}) VALUES (?,?,?) "
                        f"ON CONFLICT (device) DO UPDATE SET {col} = excluded.{col}, "
                        f"{tcol} = excluded.{tcol}")
        self.conn.cursor().execute(sql, (device, value, when))
        self.conn.commit()

    def count(self, device: str | None = None) -> int:
        cur = self.conn.cursor()
        if device is None:
            cur.execute("SELECT COUNT(*) FROM windows")
        else:
            cur.execute(self._sql("SELECT COUNT(*) FROM windows WHERE device = ?"), (device,))
        return int(cur.fetchone()[0])

    def devices(self) -> list[str]:
        cur = self.conn.cursor()
        cur.execute("SELECT DISTINCT device FROM windows ORDER BY device")
        return [r[0] for r in cur.fetchall()]

    def status(self, device: str) -> tuple[str | None, str | None]:
        cur = self.conn.cursor()
        cur.execute(self._sql("SELECT status, status_utc FROM device_status WHERE device = ?"), (device,))
        row = cur.fetchone()
        return (row[0], row[1]) if row else (None, None)

    def windows(self, device: str) -> list[dict]:
        """A device's windows in time order, as dicts with the CSV log's field names (plus seq and
        threshold): what `specmon report --db DB --device X` reads."""
        cur = self.conn.cursor()
        cur.execute(self._sql(f"SELECT seq, {','.join(WINDOW_FIELDS)} FROM windows WHERE device = ? "
                              "ORDER BY seq"), (device,))
        names = ("seq", *WINDOW_FIELDS)
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def window_batches(self, device: str, fields: tuple[str, ...], size: int = 100_000
                       ) -> Iterator[list[tuple]]:
        """A device's windows as tuples of `fields` (column names of WINDOW_FIELDS or seq), in batches
        of at most `size`, in no particular order: for reading millions of rows without holding them."""
        unknown = [f for f in fields if f not in WINDOW_FIELDS and f != "seq"]
        if unknown or not fields:
            raise ValueError(f"not window columns: {unknown or fields}")
        cur = self._stream_cursor()
        try:
            cur.execute(self._sql(f"SELECT {','.join(fields)} FROM windows WHERE device = ?"), (device,))
            while rows := cur.fetchmany(size):
                yield rows
        finally:
            cur.close()

    def _stream_cursor(self):
        return self.conn.cursor()

    def close(self) -> None:
        self.conn.close()


class SQLiteStore(Store):
    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            raise SpecmonError(f"--db {path}: is a directory, not a database file")
        try:
            conn = sqlite3.connect(str(path), check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as e:
            raise SpecmonError(f"--db {path}: cannot open ({e})") from None
        super().__init__(conn, str(path))


class PostgresStore(Store):
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise SpecmonError("PostgreSQL needs psycopg: pip install 'psycopg[binary]'") from None
        try:
            conn = psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as e:
            raise SpecmonError(f"--db {_redact(url)}: cannot connect ({_one_line(e)})") from None
        super().__init__(conn, _redact(url))

    def _stream_cursor(self):
        return self.conn.cursor(name="specmon_window_batches")  # server-side: rows arrive per batch


def open_store(db: str | Path) -> Store:
    """A SQLite file path, or a postgresql:// URL."""
    db = str(db)
    return PostgresStore(db) if is_postgres(db) else SQLiteStore(db)


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    u = urlsplit(url)
    if u.password is None:
        return url
    netloc = f"{u.username}:***@{u.hostname}" + (f":{u.port}" if u.port else "")
    return urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
