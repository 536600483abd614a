"""The session's CSV log: one row per scheduled window, safe against kills and full disks.

Each row is formatted completely and handed to the OS in one os.write() on an O_APPEND descriptor,
so an interrupted session (SIGINT, SIGTERM, SIGKILL) leaves only whole rows behind. The file is
fsync'ed at least every FSYNC_EVERY_S seconds and on close, so a power loss costs at most that much.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from monitor.errors import SpecmonError
from monitor.events import LiveStatus, LiveWindow

HEADER = [
    "time_utc", "offset_s", "start_s", "end_s", "score", "label", "smoothed",
    "rms_dbfs", "voiced", "latency_ms", "model_id",
]
HEADER_LINE = ",".join(HEADER) + "\n"
FSYNC_EVERY_S = 2.0


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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise SpecmonError(f"{self.path}: is a directory, not a CSV file")
        existing = self._existing_header()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise SpecmonError(f"{self.path}: cannot write the CSV log ({e.strerror})") from None
        self.rows = 0
        self._size = os.fstat(self._fd).st_size  # end of the last whole row
        self._last_sync = time.monotonic()
        self.appending = existing is not None
        self._created = existing is None and self._size == 0
        if existing is None:
            try:
                self._write(HEADER_LINE)
                self._sync()
            except SpecmonError:
                os.close(self._fd)
                self._fd = -1
                raise

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
        if time.monotonic() - self._last_sync >= FSYNC_EVERY_S:
            self._sync()

    # Sink protocol
    def on_window(self, w: LiveWindow, status: LiveStatus) -> None:
        self.write_window(w)

    def on_tick(self, status: LiveStatus) -> None:
        if self._fd >= 0 and time.monotonic() - self._last_sync >= FSYNC_EVERY_S:
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
