"""The CSV log: header, appending, refusing foreign files, whole rows after kills, full disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.csvlog import HEADER, HEADER_LINE, CsvLog, LogFullError, format_row
from monitor.errors import SpecmonError
from monitor.events import LiveWindow
from monitor.windows import WindowResult


def window(i: int, score: float | None = 0.75) -> LiveWindow:
    label = "no-speech" if score is None else ("negative" if score >= 0.5 else "neutral")
    r = WindowResult(i * 0.992, i * 0.992 + 4.032, score, label, -30.0, 0.8, 1.5)
    return LiveWindow(f"2026-01-01T00:00:{i % 60:02d}.000Z", r.end_s, r, score, "model-abc")


def test_header_rows_and_append(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    log = CsvLog(p)
    log.on_window(window(0), None)
    log.on_window(window(1, None), None)
    log.close()
    lines = p.read_text().splitlines()
    assert lines[0].split(",") == HEADER
    assert lines[1].split(",")[4:6] == ["0.7500", "negative"]
    assert lines[2].split(",")[4:7] == ["", "no-speech", ""]
    log = CsvLog(p)  # same header: continue the file, no second header
    assert log.appending
    log.on_window(window(2, 0.25), None)
    log.close()
    lines = p.read_text().splitlines()
    assert len(lines) == 4 and lines.count(HEADER_LINE.strip()) == 1
    assert lines[3].split(",")[5] == "neutral"


def test_foreign_file_refused(tmp_path: Path) -> None:
    p = tmp_path / "other.csv"
    p.write_text("file,start_s,end_s,score\nx,0,4,0.5\n")
    with pytest.raises(SpecmonError, match="different header"):
        CsvLog(p)
    assert p.read_text().startswith("file,")  # untouched
    with pytest.raises(SpecmonError, match="directory"):
        CsvLog(tmp_path)
    with pytest.raises(SpecmonError, match="cannot write"):
        CsvLog(tmp_path / "missing-dir" / "log.csv")


_WRITER = """
import sys, time
from monitor.csvlog import CsvLog
from monitor.events import LiveWindow
from monitor.windows import WindowResult
log = CsvLog(sys.argv[1])
i = 0
while True:
    r = WindowResult(i, i + 4.032, 0.5, "negative", -30.0, 0.9, 1.0)
    log.on_window(LiveWindow("2026-01-01T00:00:00.000Z", r.end_s, r, 0.5, "m" * 200), None)
    i += 1
    if i == 50:
        print("ready", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_writer_leaves_whole_rows_but_the_last_which_the_next_open_repairs(
        tmp_path: Path, sig: int) -> None:
    """A fatal signal (this writer handles none) can stop the kernel inside the row being written,
    between two pages of the file (seen once in CI with SIGKILL); every row before it is whole, and
    the next CsvLog on the file cuts the torn one off."""
    p = tmp_path / "killed.csv"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(p)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(sig)
    proc.wait(10)
    data = p.read_bytes()
    whole, _, torn = data.rpartition(b"\n")
    lines = whole.decode().splitlines()
    assert len(lines) > 50
    assert all(len(line.split(",")) == len(HEADER) for line in lines)
    assert b"2026-01-01T00:00:00.000Z,".startswith(torn[:25])  # nothing, or the start of a row
    log = CsvLog(p)
    log.close()
    assert log.repaired_bytes == len(torn) and p.read_bytes() == whole + b"\n"


def test_format_row_quotes_model_id() -> None:
    w = window(3)
    w.model_id = 'a,"b"'
    assert format_row(w).rstrip("\n").endswith('"a,""b"""')


@pytest.fixture
def tiny_fs(tmp_path: Path):
    """A real 64 KiB tmpfs (we run as root in tests and CI)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_stops_with_rows_intact(tiny_fs: Path) -> None:
    p = tiny_fs / "log.csv"
    log = CsvLog(p)
    written = 0
    with pytest.raises(LogFullError, match="disk full"):
        for i in range(100_000):
            log.on_window(window(i), None)
            written += 1
    log.close()
    lines = p.read_text().splitlines()
    assert lines[0].split(",") == HEADER
    assert len(lines) - 1 == written > 100
    assert all(len(line.split(",")) == len(HEADER) for line in lines)


def test_dev_full_error_path() -> None:
    # A character device with nothing to continue, whose every write fails with ENOSPC: refused at
    # open (the header), i.e. before `listen` would start capturing.
    with pytest.raises(LogFullError, match="disk full"):
        CsvLog("/dev/full")
    assert os.path.exists("/dev/full")


@pytest.mark.parametrize("tail", [b"2026-01-01T00:00:09.000Z,9.0", b"\0" * 300,
                                  b"2026-01-01T00:00:09.0\0\0\0\0"])
def test_torn_last_row_repaired_on_append(tmp_path: Path, tail: bytes) -> None:
    """A power cut can leave a torn row, or NULs where data never reached the card: appending cuts
    the file back to its last whole row and reports it, instead of gluing the next row on."""
    p = tmp_path / "log.csv"
    log = CsvLog(p)
    for i in range(3):
        log.on_window(window(i), None)
    log.close()
    whole = p.read_bytes()
    with open(p, "ab") as f:
        f.write(tail)
    events = []
    log = CsvLog(p, notify=events.append)
    log.on_window(window(3), None)
    log.close()
    assert log.repaired_bytes == len(tail)
    assert [(type(e).__name__, e.bytes_cut) for e in events] == [("LogRepaired", len(tail))]
    data = p.read_bytes()
    assert data.startswith(whole) and b"\0" not in data
    lines = data.decode().splitlines()
    assert len(lines) == 5 and all(len(line.split(",")) == len(HEADER) for line in lines)
    # a whole file is left alone, and says nothing
    events.clear()
    CsvLog(p, notify=events.append).close()
    assert events == [] and p.read_bytes() == data


def test_torn_header_only_file_keeps_header(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text(HEADER_LINE + "2026-01-01T00:0")
    log = CsvLog(p)
    log.close()
    assert p.read_text() == HEADER_LINE and log.repaired_bytes == len("2026-01-01T00:0")


def test_fsync_interval(tmp_path: Path) -> None:
    """fsync_s=0 syncs every row; the default spares an SD card (one sync per FSYNC_EVERY_S)."""
    from monitor.csvlog import FSYNC_EVERY_S

    assert FSYNC_EVERY_S >= 5
    for fsync_s, want in ((0.0, 20), (3600.0, 0)):
        log = CsvLog(tmp_path / f"f{fsync_s}.csv", fsync_s=fsync_s)
        synced = [0]
        real = log._sync

        def counting(real=real, synced=synced) -> None:
            synced[0] += 1
            real()

        log._sync = counting
        for i in range(20):
            log.on_window(window(i), None)
        assert synced[0] == want
        log.close()


def day_window(day: str, i: int) -> LiveWindow:
    w = window(i)
    w.time_utc = f"{day}T12:00:{i % 60:02d}.000Z"
    return w


def test_csv_dir_one_file_per_utc_day_and_retention(tmp_path: Path) -> None:
    from datetime import date

    from monitor.csvlog import DailyCsvLog

    d = tmp_path / "logs"
    d.mkdir()
    for old in ("2026-02-20", "2026-02-27", "2026-02-28"):
        (d / f"specmon-{old}.csv").write_text(HEADER_LINE)
    (d / "specmon-2026-03-09.csv").write_text(HEADER_LINE)  # a later day (clock was ahead): kept
    (d / "notes.txt").write_text("mine")
    events = []
    log = DailyCsvLog(d, keep_days=3, notify=events.append, today=date(2026, 3, 1))
    assert log.path == d / "specmon-2026-03-01.csv"
    assert sorted(p.name for p in d.iterdir()) == [
        "notes.txt", "specmon-2026-02-27.csv", "specmon-2026-02-28.csv", "specmon-2026-03-01.csv",
        "specmon-2026-03-09.csv"]
    log.on_window(day_window("2026-03-01", 0), None)
    log.on_window(day_window("2026-03-02", 1), None)  # midnight UTC: a new file, 02-27 goes
    log.on_window(day_window("2026-03-02", 2), None)
    log.close()
    names = sorted(p.name for p in d.iterdir())
    assert "specmon-2026-02-27.csv" not in names and "specmon-2026-02-28.csv" in names
    assert "specmon-2026-03-09.csv" in names and "notes.txt" in names
    assert len((d / "specmon-2026-03-01.csv").read_text().splitlines()) == 2
    assert len((d / "specmon-2026-03-02.csv").read_text().splitlines()) == 3
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("LogDeleted") == 2 and kinds.count("LogOpened") == 1


def test_keep_days_never_deletes_the_current_day(tmp_path: Path) -> None:
    from datetime import date

    from monitor.csvlog import DailyCsvLog

    log = DailyCsvLog(tmp_path, keep_days=1, today=date(2026, 3, 1))
    log.on_window(day_window("2026-03-01", 0), None)
    log.on_window(day_window("2026-01-01", 1), None)  # the clock stepped back two months
    log.on_window(day_window("2026-03-01", 2), None)  # ... and forward again: 03-01 is current
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["specmon-2026-03-01.csv"]
    assert len((tmp_path / "specmon-2026-03-01.csv").read_text().splitlines()) == 3
    with pytest.raises(SpecmonError, match="at least 1"):
        DailyCsvLog(tmp_path, keep_days=0)


def test_reopen_after_rename_starts_a_fresh_file(tmp_path: Path) -> None:
    """SIGHUP's reopen(): after logrotate moved the file, a new one with the header at the path;
    without a move, the same file goes on. Each reopen is reported."""
    p = tmp_path / "log.csv"
    events = []
    log = CsvLog(p, notify=events.append)
    log.on_window(window(0), None)
    p.rename(tmp_path / "log.csv.1")
    log.reopen()
    log.on_window(window(1), None)
    log.reopen()
    log.on_window(window(2), None)
    log.close()
    old = (tmp_path / "log.csv.1").read_text().splitlines()
    new = p.read_text().splitlines()
    assert old[0] == new[0] == HEADER_LINE.strip()
    assert [ln.split(",")[1] for ln in old[1:]] == [f"{window(0).offset_s:.3f}"]
    assert [ln.split(",")[1] for ln in new[1:]] == [f"{window(i).offset_s:.3f}" for i in (1, 2)]
    assert [(type(e).__name__, e.appending, e.reopened) for e in events] == [
        ("LogOpened", False, True), ("LogOpened", True, True)]
    assert log.rows == 3
