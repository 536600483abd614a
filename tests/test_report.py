"""`specmon report`: the verdict rule, per-model sections, data quality, the page in a real headless
Chromium, and one-line errors for bad input."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from monitor.cli import app
from monitor.csvlog import HEADER_LINE
from monitor.errors import SpecmonError
from monitor.report import DayStatus, ElevatedRule, State, assess, make_report
from monitor.report_data import CsvLogs, summarize
from monitor.store import open_store

REPO = Path(__file__).resolve().parents[1]
STEP = 0.992
END = dt.date(2026, 11, 24)


def _demo():
    spec = importlib.util.spec_from_file_location("make_demo_logs", REPO / "scripts" / "make_demo_logs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def day_rows(day: dt.date, neg: int, neu: int, nospeech: int = 0, model: str = "m1",
             start: dt.time = dt.time(8, 0), offset0: float = 4.032, hole_after: int | None = None,
             hole_s: float = 0.0, score_neg: float = 0.8, score_neu: float = 0.2) -> list[str]:
    """One session's rows: neg negative, then neu neutral, then nospeech windows, one per 0.992 s."""
    t0 = dt.datetime.combine(day, start)
    labels = ["negative"] * neg + ["neutral"] * neu + ["no-speech"] * nospeech
    out, off = [], offset0
    for i, lab in enumerate(labels):
        if hole_after is not None and i == hole_after:
            off += hole_s  # dropped audio: the stream clock moves on, no rows
        t = t0 + dt.timedelta(seconds=off)
        score = {"negative": f"{score_neg:.4f}", "neutral": f"{score_neu:.4f}", "no-speech": ""}[lab]
        out.append(f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z,{off:.3f},{off - 4.032:.3f},"
                   f"{off:.3f},{score},{lab},0.5000,-30.0,0.80,1.0,{model}")
        off += STEP
    return out


def write_log(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER_LINE + "".join(r + "\n" for r in rows))
    return path


def days_logs(folder: Path, shares: list[float | None], speech: int = 400, model: str = "m1",
              end: dt.date = END) -> list[Path]:
    """One log per day ending on `end`; each day `speech` scored windows with the given negative share
    (None: a day with only 60 scored windows, i.e. too little speech)."""
    folder.mkdir(exist_ok=True)
    out = []
    for k, s in enumerate(shares):
        day = end - dt.timedelta(days=len(shares) - 1 - k)
        n = 60 if s is None else speech
        neg = round((0.9 if s is None else s) * n)
        out.append(write_log(folder / f"{model}-{day:%Y%m%d}.csv", day_rows(day, neg, n - neg, 50, model)))
    return out


def verdict(folder: Path, rule: ElevatedRule = ElevatedRule()):
    data = summarize(CsvLogs([folder]), "UTC")
    assert len(data.models) == 1
    return assess(data.models[0], rule, data.last_day)


# -- the rule --------------------------------------------------------------------------------------
def test_rule_elevated_on_exactly_n_days(tmp_path: Path):
    days_logs(tmp_path / "a", [0.8] * 8 + [0.2] * 6)
    v = verdict(tmp_path / "a")
    assert v.state is State.ELEVATED and v.elevated == 8 and v.counted == 14
    assert v.days[-1] == END and len(v.days) == 14
    assert "8 of the last 14 days" in v.sentence()


def test_rule_not_elevated_and_share_must_be_above(tmp_path: Path):
    # 7 clearly elevated days, and 7 days at exactly the rule's share: "above" means strictly above
    days_logs(tmp_path / "b", [0.8] * 7 + [0.5] * 7)
    v = verdict(tmp_path / "b")
    assert v.state is State.NOT_ELEVATED and v.elevated == 7
    assert v.status.count(DayStatus.BELOW) == 7
    # the same logs with a lower share rule: every day is elevated
    assert verdict(tmp_path / "b", ElevatedRule(share=0.4)).elevated == 14


def test_rule_undetermined_when_missing_days_could_change_it(tmp_path: Path):
    # 7 elevated, 2 with too little speech, 5 below: 7 + 2 could still reach 8
    days_logs(tmp_path / "c", [0.8] * 7 + [None] * 2 + [0.1] * 5)
    v = verdict(tmp_path / "c")
    assert v.state is State.UNDETERMINED and v.elevated == 7 and v.counted == 12
    assert v.status.count(DayStatus.LITTLE_SPEECH) == 2
    # with a stricter rule the missing days cannot matter any more
    assert verdict(tmp_path / "c", ElevatedRule(days=10)).state is State.NOT_ELEVATED
    # and days with no log at all count as missing too
    days_logs(tmp_path / "d", [0.8] * 5)
    v = verdict(tmp_path / "d")
    assert v.state is State.UNDETERMINED and v.status.count(DayStatus.NO_DATA) == 9


@pytest.mark.parametrize("kw, words", [
    (dict(share=1.0), "--elevated-share"), (dict(days=15), "--elevated-days"),
    (dict(window=0), "--window-days"), (dict(min_speech_min=-1), "--min-speech"),
])
def test_rule_rejects_impossible_settings(kw, words):
    with pytest.raises(SpecmonError, match=words):
        ElevatedRule(**kw)


# -- the numbers -----------------------------------------------------------------------------------
def test_per_day_numbers_and_data_quality(tmp_path: Path):
    day = dt.date(2026, 11, 20)
    first = day_rows(day, 100, 300, 200, start=dt.time(6, 0), hole_after=150, hole_s=20.0)  # a 20-s hole
    # the monitor restarted at 16:00: a second session (offsets restart) after a gap of hours
    second = day_rows(day, 50, 50, 0, start=dt.time(16, 0))
    late = day_rows(day, 10, 0, 0, start=dt.time(23, 30))  # 23:30 UTC is already tomorrow in Berlin
    write_log(tmp_path / "d.csv", first + second + late)
    data = summarize(CsvLogs([tmp_path / "d.csv"]), "UTC")
    (m,) = data.models
    assert m.days == [day] and data.rows == 600 + 100 + 10
    assert m.scored[0] == 400 + 100 + 10 and m.negative[0] == 100 + 50 + 10
    assert m.negative_share[0] == pytest.approx(160 / 510)
    assert m.speech_s[0] == pytest.approx(510 * STEP, rel=1e-6)
    assert m.nospeech_share[0] == pytest.approx(200 / 710)
    assert m.median[0] == pytest.approx(0.2)
    assert m.dropped_s[0] == pytest.approx(20.0, abs=0.01) and m.holes[0] == 1
    assert m.sessions == 3
    assert m.gap_count == 2 and m.gaps[0][0].hour == 6 and m.gaps[0][1].hour == 16
    assert m.threshold.text() == "0.3"  # neutral scores 0.2, negative 0.8 -> the shortest between
    assert m.hour_scored[0, 6] > 0 and m.hour_scored[0, 16] == 100 and m.hour_scored[0, 23] == 10

    berlin = summarize(CsvLogs([tmp_path / "d.csv"]), "Europe/Berlin").models[0]
    assert berlin.days == [day, day + dt.timedelta(days=1)]
    assert berlin.scored[1] == 10 and berlin.hour_scored[1, 0] == 10  # 00:30 local
    assert berlin.hour_scored[0, 7] > 0 and berlin.hour_scored[0, 6] == 0


def test_threshold_inferred_from_rounded_scores(tmp_path: Path):
    # scores are logged to 4 decimals, labels come from the unrounded score: 0.4000 can be both
    rows = day_rows(END, 10, 10, score_neg=0.4, score_neu=0.4) + day_rows(
        END, 5, 5, start=dt.time(12), score_neg=0.7312, score_neu=0.3999)
    write_log(tmp_path / "t.csv", rows)
    m = summarize(CsvLogs([tmp_path / "t.csv"]), "UTC").models[0]
    assert m.threshold.consistent and m.threshold.text() == "0.4"
    write_log(tmp_path / "t.csv", day_rows(END, 10, 10, score_neg=0.45, score_neu=0.6))
    m = summarize(CsvLogs([tmp_path / "t.csv"]), "UTC").models[0]
    assert not m.threshold.consistent and "more than one" in m.threshold.text()


def test_models_are_never_pooled(tmp_path: Path):
    folder = tmp_path / "logs"
    days_logs(folder, [0.9] * 10, model="old-model", end=END - dt.timedelta(days=4))
    days_logs(folder, [0.1] * 4, model="new-model")
    out = tmp_path / "r.html"
    rep = make_report(CsvLogs([folder]), out, rule=ElevatedRule(), tz="UTC")
    assert [m.model_id for m in rep.data.models] == ["new-model", "old-model"]  # newest first
    new, old = rep.data.models
    assert new.negative.sum() == 4 * 40 and old.negative.sum() == 10 * 360  # nothing mixed
    assert len(new.days) == 4 and len(old.days) == 10
    page = out.read_text()
    assert 'id="models-notice"' in page and "2 different models" in page
    assert page.count('<section class="model"') == 2


# -- the page in a real browser --------------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def chromium(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium not found: run scripts/setup_services.sh (scripts/test.sh does)")
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"  # a fresh profile every time
    p = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    return p


def test_report_renders_in_chromium(tmp_path: Path):
    logs = tmp_path / "logs"
    n = _demo().make_logs(logs, days=21, end=END, step_s=30.0, elevated_days=12)
    assert n > 50_000
    out, png = tmp_path / "report.html", tmp_path / "summary.png"
    p = subprocess.run([sys.executable, "-m", "monitor.cli", "report", str(logs), "--out", str(out),
                        "--png", str(png), "--tz", "UTC"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "persistently elevated" in p.stdout and str(out) in p.stdout
    page = out.read_text()
    # self-contained: every link or source is in the page itself (#id) or inline (data:)
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', page)
    assert refs and all(r.startswith(("#", "data:")) for r in refs), sorted(set(refs))[:5]
    assert "<link" not in page and "@import" not in page and "url(http" not in page

    dom = chromium(tmp_path, out.as_uri(), "--dump-dom").stdout
    charts = re.search(r'data-charts-rendered="(\d+)"', dom)
    assert charts and int(charts.group(1)) == 4, dom[:500]  # trend, daily, heat map, coverage
    for name in ("trend-0", "daily-0", "heatmap-0", "coverage-0"):
        assert f'id="{name}"' in dom
    assert re.search(r'class="verdict elevated" data-state="elevated"', dom)
    assert "Persistently elevated" in dom and "not a diagnosis" in dom
    assert "Traceback" not in dom and 'class="error"' not in dom

    shot = tmp_path / "shot.png"
    chromium(tmp_path, out.as_uri(), f"--screenshot={shot}", "--window-size=1100,1800")
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (1800, 1100)
    ink = (img.sum(axis=2) < 600).mean()  # not a blank page
    red = ((abs(img[..., 0] - 192) < 25) & (abs(img[..., 1] - 57) < 25) & (abs(img[..., 2] - 43) < 25))
    blue = ((abs(img[..., 0] - 91) < 20) & (abs(img[..., 1] - 126) < 20) & (abs(img[..., 2] - 164) < 20))
    assert ink > 0.05, ink
    assert red.sum() > 5_000 and blue.sum() > 1_000, (red.sum(), blue.sum())  # the trend bars

    summary = np.asarray(Image.open(png).convert("RGB"))
    assert summary.shape[0] > 800 and summary.shape[1] > 1000
    assert len(np.unique(summary.reshape(-1, 3), axis=0)) > 50  # charts, not a blank canvas


# -- bad input -------------------------------------------------------------------------------------
def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    good = write_log(tmp / "good.csv", day_rows(END, 10, 10))
    (tmp / "other.csv").write_text("a,b,c\n1,2,3\n")
    (tmp / "scores.csv").write_text("file,start_s,end_s,score,label,rms_dbfs,voiced\n"
                                    "x.wav,0,4,0.5,neutral,-20,1\n")
    (tmp / "header.csv").write_text(HEADER_LINE)
    (tmp / "zero.csv").write_bytes(b"")
    (tmp / "blob.csv").write_bytes(b"\xff\xfe\x00\x81" * 50)
    write_log(tmp / "corrupt.csv", day_rows(END, 3, 0) + ["2026-11-24T08:00:09.000Z,abc,0,4,0.5,neutral,"
                                                          "0.5,-30.0,0.80,1.0,m1"])
    write_log(tmp / "short.csv", day_rows(END, 3, 0) + ["2026-11-24T08:00:09.000Z,4.0,0"])
    (tmp / "emptydir").mkdir()
    store = open_store(tmp / "fleet.sqlite")  # a collect store holding one device, "pi-1"
    store.add_windows([("pi-1", 1, "2026-11-24T08:00:04.032Z", 4.032, 0.0, 4.032, 0.5, "negative", 0.5,
                        -30.0, 0.8, 1.0, "m1", 0.4, "2026-11-24T08:00:04.100Z")])
    store.close()
    return {
        "missing": ([str(tmp / "nope.csv")], "no such file"),
        "not specmon": ([str(good), str(tmp / "other.csv")], "not a specmon listen log"),
        "score output": ([str(tmp / "scores.csv")], "specmon score"),
        "header only": ([str(tmp / "header.csv")], "no rows"),
        "zero bytes": ([str(tmp / "zero.csv"), str(tmp / "header.csv")], "no rows"),
        "binary": ([str(tmp / "blob.csv")], "not a text file"),
        "bad number": ([str(tmp / "corrupt.csv")], "line 5"),
        "short row": ([str(tmp / "short.csv")], "line 5"),
        "empty folder": ([str(tmp / "emptydir")], "no .csv logs"),
        "bad tz": ([str(good), "--tz", "Mars/Olympus"], "unknown time zone"),
        "bad rule": ([str(good), "--elevated-days", "20"], "--elevated-days"),
        "no logs": ([], "no logs given"),
        "db missing": (["--db", str(tmp / "nope.sqlite"), "--device", "pi-1"], "nope.sqlite: no such file"),
        "db folder": (["--db", str(tmp / "emptydir"), "--device", "pi-1"], "is a folder"),
        "db not sqlite": (["--db", str(tmp / "blob.csv"), "--device", "pi-1"], "blob.csv: cannot"),
        "db unknown device": (["--db", str(tmp / "fleet.sqlite"), "--device", "kitchen"],
                              "no windows of device 'kitchen' (it holds pi-1)"),
        "db no device": (["--db", str(tmp / "fleet.sqlite")], "--device is needed (it holds pi-1)"),
        "db and logs": ([str(good), "--db", str(tmp / "fleet.sqlite"), "--device", "pi-1"], "not both"),
        "device without db": ([str(good), "--device", "pi-1"], "--device goes with --db"),
    }


@pytest.mark.parametrize("case", ["missing", "not specmon", "score output", "header only", "zero bytes",
                                  "binary", "bad number", "short row", "empty folder", "bad tz",
                                  "bad rule", "no logs", "db missing", "db folder", "db not sqlite",
                                  "db unknown device", "db no device", "db and logs", "device without db"])
def test_bad_input_one_line_exit_2(tmp_path: Path, case: str):
    args, words = _bad_inputs(tmp_path)[case]
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", *args, "--out", str(out)])
    err = res.stderr if hasattr(res, "stderr") else res.output
    assert res.exit_code == 2, (res.exit_code, res.output)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("specmon: error:") and words in lines[0], err
    assert not out.exists()
    assert not (tmp_path / "nope.sqlite").exists()  # a report never creates a store


def test_bad_input_through_the_real_entry_point_keeps_the_old_report(tmp_path: Path):
    out = tmp_path / "r.html"
    out.write_text("previous report")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    p = subprocess.run([sys.executable, "-m", "monitor.cli", "report", str(tmp_path / "other.csv"),
                        "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "other.csv" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and out.read_text() == "previous report"
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".r.html")]  # no temp left over


def test_png_only_and_default_html_name(tmp_path: Path, monkeypatch):
    days_logs(tmp_path / "logs", [0.3] * 14)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["report", "logs", "--png", "only.png", "--tz", "UTC"])
    assert res.exit_code == 0, res.output
    assert "not persistently elevated (0 of the last 14 days elevated, 14 counted)" in res.output
    assert (tmp_path / "only.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "report.html").exists()
    res = CliRunner().invoke(app, ["report", "logs", "--tz", "UTC"])
    assert res.exit_code == 0 and (tmp_path / "report.html").stat().st_size > 50_000


def test_local_days_across_a_daylight_saving_change(tmp_path: Path):
    # Europe/Berlin leaves summer time on 2026-10-25 at 01:00 UTC: 12:00 UTC is 14:00, then 13:00
    rows = []
    for day in (dt.date(2026, 10, 24), dt.date(2026, 10, 26)):
        rows += day_rows(day, 5, 5, start=dt.time(12, 0))
    rows += day_rows(dt.date(2026, 10, 24), 3, 0, start=dt.time(23, 0))  # 01:00 on the 25th (CEST)
    write_log(tmp_path / "dst.csv", rows)
    m = summarize(CsvLogs([tmp_path / "dst.csv"]), "Europe/Berlin").models[0]
    assert m.days == [dt.date(2026, 10, 24) + dt.timedelta(days=i) for i in range(3)]
    assert m.hour_scored[0, 14] == 10 and m.hour_scored[2, 13] == 10 and m.hour_scored[1, 1] == 3
