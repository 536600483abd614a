"""The session's CSV log: one row per scheduled window, safe against kills, power cuts and full disks.

Each row is formatted completely and handed to the OS in one os.write() on an O_APPEND descriptor,
so a session stopped by SIGINT or SIGTERM (handled: the write completes) leaves only whole rows
behind. A SIGKILL can still cut the row being written where it crosses a page of the file (Linux
checks for a fatal signal between the pages of one write); the next append repairs that. The file is
fsync'ed every `fsync_s` seconds (default FSYNC_EVERY_S, chosen for SD cards: one flush per 10 s
instead of per row), on rotation and on close, so a power cut loses at most the rows of the last
fsync_s seconds. A power cut can also leave a torn last row (or a tail of NUL bytes, when the size
reached the disk before the data): appending to such a file, torn either way, first cuts it back to
its last whole row and says so (LogRepaired).

reopen() (SIGHUP, between two rows) closes the file and opens the path again: after logrotate moved
the log away, the next row starts a fresh file with a header; if it was not moved, rows continue.

DailyCsvLog (--csv-dir) writes one such file per UTC day, specmon-YYYY-MM-DD.csv, and with keep_days
deletes days older than that; never the current day.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from monitor.errors import SpecmonError
from monitor.events import Event, LiveStatus, LiveWindow, LogDeleted, LogOpened, LogRepaired

HEADER = [
    "time_utc", "offset_s", "start_s", "end_s", "score", "label", "smoothed",
    "rms_dbfs", "voiced", "latency_ms", "model_id",
]
HEADER_LINE = ",".join(HEADER) + "\n"
FSYNC_EVERY_S = 10.0
TAIL_CHECK = 1 << 16  # bytes at the end of an existing log checked for a torn row


def _csv_field(s: str) -> str:
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def format_row(w: LiveWindow) -> str:
    """The CSV line (with newline) for one judged window."""
    r = w.result
    fields = [
        w.time_utc,
        f"{w.offset_s:.3f}",
        f"{r.start_s:.3f}",
        f"{r.end_s:.3f}",
        "" if r.score is None else f"{r.score:.4f}",
        r.label,
        "" if w.smoothed is None else f"{w.smoothed:.4f}",
        f"{r.rms_dbfs:.1f}",
        f"{r.voiced:.2f}",
        f"{r.latency_ms:.1f}",
        _csv_field(w.model_id),
    ]
    return ",".join(fields) + "\n"


class LogFullError(SpecmonError):
    """The disk filled up (or another write error): logging stopped, earlier rows are intact."""


class CsvLog:
    """A Sink writing the CSV log. Opening checks the path, so a bad path fails before capture."""

    def __init__(self, path: str | Path, fsync_s: float = FSYNC_EVERY_S,
                 notify: Callable[[Event], None] | None = None) -> None:
        self.path = Path(path)
        self.fsync_s = fsync_s
        self.notify = notify
        self.rows = 0  # rows written by this session (all files, when reopened)
        self._fd = -1
        self._created = self._open()

    def _open(self) -> bool:
        """Open the path for appending (repairing a torn end) or start it with the header; True
        if the file was new or empty."""
        self.repaired_bytes = 0  # cut from a torn end when this file was opened
        if self.path.is_dir():
            raise SpecmonError(f"{self.path}: is a directory, not a CSV file")
        existing = self._existing_header()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise SpecmonError(f"{self.path}: cannot write the CSV log ({e.strerror})") from None
        if existing is not None:
            self._repair_tail()
            if self.repaired_bytes and self.notify is not None:
                self.notify(LogRepaired(str(self.path), self.repaired_bytes))
        self._size = os.fstat(self._fd).st_size  # end of the last whole row
        self._last_sync = time.monotonic()
        self.appending = existing is not None
        created = existing is None and self._size == 0
        if existing is None:
            try:
                self._write(HEADER_LINE)
                self._sync()
            except SpecmonError:
                os.close(self._fd)
                self._fd = -1
                raise
        return created

    def reopen(self) -> None:
        """SIGHUP: fsync and close the file, then open its path again (a fresh file with a header
        if logrotate moved the old one away). Called between rows, so no row is split."""
        if self._fd < 0:
            return
        self.close()
        self._open()
        if self.notify is not None:
            self.notify(LogOpened(str(self.path), self.appending, reopened=True))

    def _existing_header(self) -> str | None:
        """The header of an existing non-empty file (checked against ours), or None."""
        if not self.path.exists() or not self.path.is_file():
            return None  # new file, or a device/pipe (e.g. /dev/null): nothing to continue
        try:
            with open(self.path, encoding="utf-8", newline="") as f:
                first = f.readline(4096)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            msg = getattr(e, "strerror", None) or "not a text file"
            raise SpecmonError(f"{self.path}: cannot read the existing CSV log ({msg})") from None
        if first == "":
            return None
        if first.rstrip("\r\n") != HEADER_LINE.rstrip("\n"):
            raise SpecmonError(
                f"{self.path}: exists with a different header; choose another --csv path "
                "(only a specmon listen log can be continued)"
            )
        if not first.endswith("\n"):
            raise SpecmonError(f"{self.path}: existing log is truncated inside its header")
        return first

    def _repair_tail(self) -> None:
        """Cut a torn last row (no newline, or NUL bytes from a power cut) back to the last whole
        row, so the next row starts on a line of its own."""
        try:
            size = os.fstat(self._fd).st_size
            start = max(0, size - TAIL_CHECK)
            with open(self.path, "rb") as f:
                f.seek(start)
                tail = f.read()
        except OSError as e:
            os.close(self._fd)
            raise SpecmonError(f"{self.path}: cannot read the existing CSV log ({e.strerror})"
                               ) from None
        good = len(tail)
        nul = tail.find(b"\0")
        if nul >= 0:
            good = nul
        if good and tail[good - 1 : good] != b"\n":
            good = tail.rfind(b"\n", 0, good) + 1  # 0 if no newline: the whole tail is torn
        if start + good < len(HEADER_LINE):  # never cut into the header
            good = len(HEADER_LINE) - start
        if good < len(tail):
            try:
                os.ftruncate(self._fd, start + good)
                os.fsync(self._fd)
            except OSError as e:
                os.close(self._fd)
                raise SpecmonError(f"{self.path}: cannot repair the torn end of the CSV log "
                                   f"({e.strerror})") from None
            self.repaired_bytes = len(tail) - good

    def _write(self, line: str) -> None:
        data = line.encode("utf-8")
        try:
            n = os.write(self._fd, data)
        except OSError as e:
            self._fail(e)
        if n != len(data):  # a short write only happens when the disk is full
            self._cut_partial()
            self._fail(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        self._size += n

    def _cut_partial(self) -> None:
        """Remove the tail of a row the disk had no room for, so the file ends with a whole row."""
        try:
            if os.fstat(self._fd).st_size > self._size:
                os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # not a regular file (e.g. /dev/full): nothing to cut

    def _fail(self, e: OSError) -> None:
        why = "disk full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise LogFullError(
            f"{self.path}: cannot write the CSV log ({why}); stopped after {self.rows} rows"
        ) from None

    def _sync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as e:
            if e.errno != errno.EINVAL:  # pipes and some special files cannot be synced
                self._fail(e)
        self._last_sync = time.monotonic()

    def write_window(self, w: LiveWindow) -> None:
        self._write(format_row(w))
        self.rows += 1
        if time.monotonic() - self._last_sync >= self.fsync_s:
            self._sync()

    # Sink protocol
    def on_window(self, w: LiveWindow, status: LiveStatus) -> None:
        self.write_window(w)

    def on_tick(self, status: LiveStatus) -> None:
        if self._fd >= 0 and time.monotonic() - self._last_sync >= self.fsync_s:
            self._sync()

    def abandon(self) -> None:
        """Close; delete the file if this session created it and logged nothing (failed start)."""
        self.close()
        if self._created and self.rows == 0 and self.path.is_file():
            self.path.unlink()

    def close(self, status: LiveStatus | None = None) -> None:
        if self._fd < 0:
            return
        try:
            self._sync()
        except LogFullError:
            pass
        finally:
            os.close(self._fd)
            self._fd = -1


DAY_FILE = re.compile(r"^specmon-(\d{4}-\d{2}-\d{2})\.csv$")


def day_path(directory: Path, day: date) -> Path:
    return directory / f"specmon-{day.isoformat()}.csv"


class DailyCsvLog:
    """A Sink writing one CsvLog per UTC day (by each window's time_utc) into a directory; with
    keep_days, deletes specmon-YYYY-MM-DD.csv files more than keep_days - 1 days older than the
    current one (keep_days=1: only the current day). The current day is never deleted."""

    def __init__(self, directory: str | Path, keep_days: int | None = None,
                 fsync_s: float = FSYNC_EVERY_S, notify: Callable[[Event], None] | None = None,
                 today: date | None = None) -> None:
        self.dir = Path(directory)
        self.keep_days = keep_days
        self.fsync_s = fsync_s
        self.notify = notify
        if keep_days is not None and keep_days < 1:
            raise SpecmonError("--keep-days must be at least 1 (the current day is always kept)")
        if self.dir.exists() and not self.dir.is_dir():
            raise SpecmonError(f"{self.dir}: --csv-dir is not a directory")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpecmonError(f"{self.dir}: cannot create the log directory ({e.strerror})") from None
        self.day = today or datetime.now(timezone.utc).date()
        self.log = CsvLog(day_path(self.dir, self.day), fsync_s, notify)  # fails before capture
        self.rows = 0
        self.prune()

    @property
    def path(self) -> Path:
        return self.log.path

    def _say(self, ev: Event) -> None:
        if self.notify is not None:
            self.notify(ev)

    def prune(self) -> list[Path]:
        """Delete day files older than keep_days (counting the current day); returns them."""
        if self.keep_days is None:
            return []
        oldest = self.day - timedelta(days=self.keep_days - 1)
        gone = []
        for p in sorted(self.dir.iterdir()):
            m = DAY_FILE.match(p.name)
            if not m or p == self.log.path:
                continue
            try:
                d = date.fromisoformat(m.group(1))
            except ValueError:
                continue
            if d < oldest:
                try:
                    p.unlink()
                except OSError:
                    continue
                gone.append(p)
                self._say(LogDeleted(str(p)))
        return gone

    def _rotate(self, day: date) -> None:
        self.log.close()  # fsync'ed: a day's file is complete when the next one starts
        self.day = day
        self.log = CsvLog(day_path(self.dir, day), self.fsync_s, self.notify)
        self._say(LogOpened(str(self.log.path), self.log.appending))
        self.prune()

    def on_window(self, w: LiveWindow, status: LiveStatus) -> None:
        try:
            day = date.fromisoformat(w.time_utc[:10])
        except ValueError:
            day = self.day
        if day != self.day:
            self._rotate(day)
            if status is not None:
                status.csv_path = str(self.log.path)
        self.log.on_window(w, status)
        self.rows += 1

    def on_tick(self, status: LiveStatus) -> None:
        self.log.on_tick(status)

    def reopen(self) -> None:
        self.log.reopen()

    def abandon(self) -> None:
        self.log.abandon()

    def close(self, status: LiveStatus | None = None) -> None:
        self.log.close(status)
