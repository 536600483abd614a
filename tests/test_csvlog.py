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
def test_killed_writer_leaves_whole_rows(tmp_path: Path, sig: int) -> None:
    p = tmp_path / "killed.csv"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(p)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(sig)
    proc.wait(10)
    data = p.read_bytes()
    assert data.endswith(b"\n")
    lines = data.decode().splitlines()
    assert len(lines) > 50
    assert all(len(line.split(",")) == len(HEADER) for line in lines)


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
