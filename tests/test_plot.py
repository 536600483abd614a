"""plot_log: a real PNG from a listen log, and one-line errors for bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from monitor.errors import SpecmonError
from monitor.plot import COLUMNS, _join_sessions, plot_log, read_log

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_log(path: Path, n: int = 120, sessions: int = 1) -> Path:
    """A listen log with a sine-shaped score, a no-speech run and a stream gap."""
    lines = [",".join(COLUMNS)]
    sm = None
    for _ in range(sessions):
        for i in range(n):
            if 80 < i < 84:
                continue  # dropped audio: no rows
            off = 4.032 + 0.992 * i
            t = f"2026-11-25T10:{i // 60:02d}:{i % 60:02d}.000Z"
            if 30 <= i < 40:
                smt = "" if sm is None else f"{sm:.4f}"
                lines.append(f"{t},{off:.3f},{off - 4.032:.3f},{off:.3f},,no-speech,{smt},"
                             "-62.0,0.03,0.0,m1")  # fmt: skip
                continue
            s = 0.5 + 0.4 * math.sin(i / 10)
            sm = s if sm is None else 0.8 * sm + 0.2 * s
            label = "negative" if s >= 0.5 else "neutral"
            lines.append(f"{t},{off:.3f},{off - 4.032:.3f},{off:.3f},{s:.4f},{label},{sm:.4f},"
                         '-24.0,0.90,11.5,"model, v1"')  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def png_size(p: Path) -> tuple[int, int]:
    data = p.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_log_writes_a_png(tmp_path: Path):
    log = write_log(tmp_path / "s.csv")
    out = tmp_path / "s.png"
    plot_log(log, out, threshold=0.6)
    w, h = png_size(out)
    assert w >= 800 and h >= 300
    assert out.stat().st_size > 20_000  # not a blank canvas


def test_read_log_columns(tmp_path: Path):
    rows = read_log(write_log(tmp_path / "s.csv"))
    assert len(rows.offset_s) == 120 - 3
    nospeech = [lab == "no-speech" for lab in rows.label]
    assert sum(nospeech) == 10
    assert (
        np.isnan(rows.score[nospeech]).all() and not np.isnan(rows.score[~np.array(nospeech)]).any()
    )
    assert rows.model_id == "model, v1"  # quoted field


def test_plot_log_joins_appended_sessions(tmp_path: Path):
    log = write_log(tmp_path / "two.csv", n=50, sessions=2)
    t, starts = _join_sessions(read_log(log).offset_s)
    assert starts == [0, 50] and (np.diff(t) > 0).all()
    out = tmp_path / "two.png"
    plot_log(log, out)
    png_size(out)


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "no such file"),
        ("", "empty file"),
        ("a,b,c\n1,2,3\n", "missing column"),
        (",".join(COLUMNS) + "\n", "no rows"),
        (",".join(COLUMNS) + "\nT,abc,0,4,0.5,neutral,0.5,-20,0.9,1.0,m\n", "line 2: offset_s"),
        (",".join(COLUMNS) + "\nT,4.0,0,4\n", "line 2: 4 fields"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path: Path, content, words):
    log = tmp_path / "bad.csv"
    if content is not None:
        log.write_text(content)
    out = tmp_path / "bad.png"
    with pytest.raises(SpecmonError) as e:
        plot_log(log, out)
    msg = str(e.value)
    assert "\n" not in msg and str(log) in msg and words in msg, msg
    assert not out.exists()


def test_binary_file_and_unwritable_output(tmp_path: Path):
    blob = tmp_path / "x.csv"
    blob.write_bytes(b"\xff\xfe\x00\x81" * 100)
    with pytest.raises(SpecmonError, match="x.csv"):
        plot_log(blob, tmp_path / "x.png")
    out = tmp_path / "no" / "such" / "dir.png"
    with pytest.raises(SpecmonError, match="dir.png"):
        plot_log(write_log(tmp_path / "ok.csv"), out)


def test_torn_and_glued_rows_are_skipped_and_listed(tmp_path: Path):
    """A power cut leaves a torn last row (or a block of NULs); appending after it glued the next
    row onto it. The plot skips those lines, says which, and draws the rest."""
    log = write_log(tmp_path / "torn.csv", n=60)
    whole = log.read_text().splitlines()
    row = whole[5]
    lines = whole[:10] + [row[:25] + whole[10]] + whole[11:] + ["\x00" * 40, row[:31]]
    log.write_text("\n".join(lines))  # no newline after the torn last row
    rows = read_log(log)
    assert len(rows.offset_s) == len(whole) - 2  # all but the glued line and the header
    n = len(whole)  # header + rows: the NUL block is line n + 1, the torn row line n + 2
    assert [s.split(":")[0] for s in rows.skipped] == ["line 11", f"line {n + 1}", f"line {n + 2}"]
    assert "fields, expected 11" in rows.skipped[0] and "NUL" in rows.skipped[1]
    assert "fields, expected 11" in rows.skipped[2]
    out = tmp_path / "torn.png"
    assert plot_log(log, out).skipped == rows.skipped
    png_size(out)


def test_plot_cli_reports_skipped_lines(tmp_path: Path):
    """Through the real `specmon plot`: exit 0, the PNG, and one warning line naming the file."""
    import subprocess
    import sys

    log = write_log(tmp_path / "cut.csv", n=30)
    with log.open("a") as f:
        f.write("2026-11-25T10:00:31.000Z,33.7")  # the power went here
    out = tmp_path / "cut.png"
    p = subprocess.run([sys.executable, "-m", "monitor.cli", "plot", str(log), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(out)
    assert p.stderr.splitlines() == [f"specmon: warning: {log}: skipped 1 damaged line(s) (torn by a "
                                     "power cut or a crash?): line 32: 2 fields, expected 11"]
    png_size(out)
