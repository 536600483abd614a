"""`specmon collect`: a real Mosquitto, real SQLite files and a real PostgreSQL cluster.

Covers: hostile, malformed and oversized payloads rejected and counted without stopping the collector
and never reaching SQL as text; idempotent storage (redelivery, collector killed and restarted);
a short run of the load test (scripts/load_collect.py) with no loss and no duplicates.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from mqtt_support import Mosquitto, PostgresCluster
from test_mqtt import window
from waiting import wait_until

from monitor.collect import Collector, Rejected, parse_message
from monitor.mqtt_sink import dumps, window_message
from monitor.store import open_store

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import load_collect  # noqa: E402

INJECTION = "x'); DROP TABLE windows; --"


@pytest.fixture(scope="module")
def postgres():
    # Not under pytest's tmp folder: that one is mode 0700 (re-set by every pytest run), and the
    # server runs as user 'postgres'.
    d = Path(tempfile.mkdtemp(prefix="specmon-pg-"))
    pg = PostgresCluster(d / "cluster")
    yield pg
    pg.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "fleet.sqlite")
    pg = request.getfixturevalue("postgres")
    s = open_store(pg.url)  # a clean database per test
    s.conn.cursor().execute("DROP TABLE IF EXISTS windows, device_status")
    s.conn.commit()
    s.close()
    return pg.url


@pytest.fixture()
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker")
    yield b
    b.stop()


def msg(n: int, **over) -> bytes:
    m = window_message(window(n), n, 0.4)
    m.update(over)
    return json.dumps(m).encode()


def test_parse_message_rejects_bad_input():
    kind, dev, row = parse_message("specmon/pi-1/window", msg(5))
    assert (kind, dev, row[0], row[6]) == ("window", "pi-1", 5, "neutral")
    assert parse_message("specmon/pi-1/status", b"online")[2] == "online"
    bad = {
        ("specmon/a'b/window", msg(1)): "bad topic",
        ("specmon/pi/window/x", msg(1)): "bad topic",
        ("other/pi/window", msg(1)): "bad topic",
        ("specmon/pi/window", b"{" + b" " * 5000 + b"}"): "oversized",
        ("specmon/pi/window", b"\xff\xfe"): "not UTF-8",
        ("specmon/pi/window", b"[" * 2000 + b"]" * 2000): "not JSON",
        ("specmon/pi/window", b"[1,2]"): "not a JSON object",
        ("specmon/pi/window", msg(1, score=float("nan"))): "not JSON (NaN/Infinity)",
        ("specmon/pi/window", msg(-1)): "bad field seq",
        ("specmon/pi/window", msg(2**70)): "bad field seq",
        ("specmon/pi/window", msg(1, seq=True)): "bad field seq",
        ("specmon/pi/window", msg(1, score="0.5' OR '1'='1")): "bad field score",
        ("specmon/pi/window", msg(1, score=3.0)): "bad field score",
        ("specmon/pi/window", msg(1, label="negative'; DROP TABLE windows;--")): "bad field label",
        ("specmon/pi/window", msg(1, time_utc="yesterday")): "bad field time_utc",
        ("specmon/pi/window", msg(1, model_id="a\x00b")): "bad field model_id",
        ("specmon/pi/window", msg(1, rms_dbfs=None)): "bad field rms_dbfs",
        ("specmon/pi/status", b"pwned"): "bad status",
    }
    for (topic, payload), reason in bad.items():
        with pytest.raises(Rejected) as e:
            parse_message(topic, payload)
        assert str(e.value) == reason, (topic, payload[:60])


def _publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def _publish_all(c: mqtt.Client, items: list[tuple[str, bytes]]) -> None:
    infos = [c.publish(t, p, qos=1) for t, p in items]
    for i in infos:
        i.wait_for_publish(10)




def test_hostile_payloads_are_counted_and_never_become_sql(db, broker):
    store = open_store(db)
    logged: list[str] = []
    col = Collector(broker.url, store, client_id="col-hostile", log=logged.append)
    col.connect()
    t = threading.Thread(target=col.run, kwargs={"duration_s": 30})
    t.start()
    try:
        pub = _publisher(broker.port)
        hostile = [
            ("specmon/pi/window", msg(1, score="0.5' OR '1'='1")),
            ("specmon/pi/window", b"'; DROP TABLE windows; --"),
            ("specmon/pi/window", b"\x00\xff" * 3000),  # oversized
            ("specmon/pi/window", b"[" * 3000),
            ("specmon/pi/window", msg(2, label="x' OR 1=1 --")),
            ("specmon/pi/status", b"online'); DELETE FROM device_status; --"),
            ("specmon/pi/summary", b"not json"),
        ]
        good = [("specmon/pi/window", msg(i, model_id=INJECTION)) for i in range(10)]
        _publish_all(pub, good[:5] + hostile + good[5:] + good[:3])  # good[:3] again: redelivered
        _publish_all(pub, [("specmon/pi/status", b"online")])
        assert wait_until(lambda: col.stats.received == len(good) + len(hostile) + 4, 15), col.stats
        pub.disconnect()
        pub.loop_stop()
    finally:
        col.stop()
        t.join(30)
    assert sum(col.stats.rejected.values()) == len(hostile)
    assert col.stats.stored == 10 and col.stats.copies == 3
    # the tables are intact and the hostile text is stored as text, verbatim
    s = open_store(db)
    try:
        assert s.count("pi") == 10
        rows = s.windows("pi")
        assert [r["seq"] for r in rows] == list(range(10))
        assert {r["model_id"] for r in rows} == {INJECTION}
        assert s.status("pi")[0] == "online"
    finally:
        s.close()
    # each kind of problem is said once, then only counted
    assert len([m for m in logged if "rejected" in m]) == len(set(col.stats.rejected))


def test_collector_killed_and_restarted_stores_each_window_once(db, broker, tmp_path):
    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "monitor.cli", "collect", "--mqtt", broker.url,
                                 "--db", db, "--client-id", "col-crash"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stored(device: str = "crash") -> int:
        s = open_store(db)
        try:
            return s.count(device)
        finally:
            s.close()

    col = start()
    pub = _publisher(broker.port)
    # the collector is subscribed once a probe message is stored
    assert wait_until(lambda: _publish_all(pub, [("specmon/probe/window", msg(0))]) or stored("probe"), 15)
    n = 600
    payloads = [("specmon/crash/window", msg(i)) for i in range(n)]
    _publish_all(pub, payloads[:300])
    assert wait_until(lambda: stored() > 0, 10)
    col.send_signal(signal.SIGKILL)  # a crash: whatever was not yet acknowledged comes again
    col.wait(10)
    _publish_all(pub, payloads[300:])  # published while the collector is down: kept by the broker
    _publish_all(pub, payloads[100:200])  # and some copies
    col = start()
    assert wait_until(lambda: stored() == n, 30), stored()
    time.sleep(0.5)
    col.send_signal(signal.SIGTERM)
    out, err = col.communicate(timeout=30)
    assert col.returncode == 0, err
    assert "rejected" in out and "0 rejected" in out
    s = open_store(db)
    try:
        assert [r["seq"] for r in s.windows("crash")] == list(range(n))
    finally:
        s.close()
    pub.disconnect()
    pub.loop_stop()


def test_wrong_credentials_collect_one_line_exit_2(tmp_path):
    b = Mosquitto(tmp_path / "broker", password=True)
    try:
        env = {"PATH": "/usr/bin:/bin", "SPECMON_MQTT_USER": "device", "SPECMON_MQTT_PASSWORD": "nope",
               "HOME": str(tmp_path)}
        r = subprocess.run([sys.executable, "-m", "monitor.cli", "collect", "--mqtt", b.url, "--db",
                            str(tmp_path / "f.sqlite")], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("specmon: error: --mqtt") and "refused" in lines[0]
    finally:
        b.stop()


def test_load_short_no_loss_no_duplicates(db, tmp_path):
    res = load_collect.run(devices=20, seconds=5, rate=2.0, db=db, backlog=1000, workdir=tmp_path)
    assert res["sent"] == 200 and res["stored"] == 200
    assert res["backlog_stored"] == 1000
    assert res["lost"] == 0 and res["duplicated"] == 0 and res["rows"] == 1200
    assert "0 rejected" in res["collector"]


def test_window_message_roundtrip_fields():
    kind, dev, row = parse_message("specmon/x/window", dumps(window_message(window(3, None), 7, 0.4)))
    assert row[0] == 7 and row[5] is None and row[6] == "no-speech" and row[-1] == 0.4


def test_listen_to_collect_through_a_broker_restart(tmp_path, broker):
    """End to end: `specmon listen --mqtt` (real-time replay) -> Mosquitto, restarted mid-run ->
    `specmon collect` -> SQLite. The store ends up with exactly the CSV log's rows, once each."""
    import csv
    import os

    db = str(tmp_path / "fleet.sqlite")
    col = load_collect.start_collector(broker.url, db, "col-e2e")  # returns once subscribed
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECMON_MQTT")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    lis = subprocess.Popen([sys.executable, "-m", "monitor.cli", "listen", "--input",
                            str(REPO / "scripts" / "sample.flac"), "--headless", "--csv", "s.csv",
                            "--mqtt", broker.url, "--device-id", "e2e"], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8.0)
    broker.restart(down_s=3.0)  # mid-run: both clients lose the broker, then reconnect
    out, err = lis.communicate(timeout=60)
    assert lis.returncode == 0, err
    assert "MQTT connection lost" in err  # the headless run said so, in one line

    with open(tmp_path / "s.csv", newline="") as f:
        rows = list(csv.DictReader(f))

    def stored() -> int:
        s = open_store(db)
        try:
            return s.count("e2e")
        finally:
            s.close()

    assert wait_until(lambda: stored() >= len(rows), 30), (stored(), len(rows))
    col.send_signal(signal.SIGTERM)
    col.communicate(timeout=30)
    s = open_store(db)
    try:
        got = s.windows("e2e")
    finally:
        s.close()
    assert len(got) == len(rows) >= 15
    seqs = [g["seq"] for g in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(rows)))  # consecutive: none lost, none twice
    for row, g in zip(rows, got, strict=True):
        assert row["time_utc"] == g["time_utc"] and row["label"] == g["label"]
        assert row["score"] == ("" if g["score"] is None else f"{g['score']:.4f}")
        assert float(row["offset_s"]) == g["offset_s"]


def test_report_from_the_store_equals_the_report_from_the_csv(db, broker, tmp_path):
    """`specmon report --db DB --device X`: a listen log's rows, published as window messages through
    a real broker into a real collector, give exactly the numbers the CSV log gives."""
    import csv
    import datetime as dt

    import numpy as np
    from test_report import day_rows, write_log
    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.report_data import CsvLogs, StoreLogs, summarize

    d1, d2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)
    lines = (day_rows(d1, 100, 300, 200, start=dt.time(6, 0), hole_after=150, hole_s=20.0)
             + day_rows(d1, 50, 50, start=dt.time(16, 0))  # a second session after a gap
             + day_rows(d2, 30, 10, 5, start=dt.time(9, 30), model="m2"))  # another model
    log = write_log(tmp_path / "pi.csv", lines)
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))

    def message(seq: int, r: dict) -> bytes:
        num = {k: float(r[k]) for k in ("offset_s", "start_s", "end_s", "rms_dbfs", "voiced", "latency_ms")}
        return json.dumps({"seq": seq, "time_utc": r["time_utc"], **num,
                           "score": float(r["score"]) if r["score"] else None, "label": r["label"],
                           "smoothed": float(r["smoothed"]), "model_id": r["model_id"],
                           "threshold": 0.3}).encode()

    store = open_store(db)
    col = Collector(broker.url, store, client_id="col-report")
    col.connect()
    t = threading.Thread(target=col.run, kwargs={"duration_s": 60})
    t.start()
    try:
        pub = _publisher(broker.port)
        _publish_all(pub, [("specmon/pi-7/window", message(i, r)) for i, r in enumerate(rows)])
        _publish_all(pub, [("specmon/other/window", msg(1))])
        assert wait_until(lambda: col.stats.stored == len(rows) + 1, 30), col.stats
        pub.disconnect()
        pub.loop_stop()
    finally:
        col.stop()
        t.join(30)
        store.close()

    a = summarize(CsvLogs([log]), "Europe/Berlin")
    b = summarize(StoreLogs(db, "pi-7"), "Europe/Berlin")
    assert b.rows == a.rows == len(rows) and b.source.startswith("device pi-7 in ")
    assert [m.model_id for m in b.models] == [m.model_id for m in a.models] == ["m2", "m1"]
    for ma, mb in zip(a.models, b.models, strict=True):
        assert mb.days == ma.days
        for k in ("windows", "scored", "negative", "holes", "hour_scored", "hour_negative"):
            assert np.array_equal(getattr(mb, k), getattr(ma, k)), k
        for k in ("listen_s", "speech_s", "median", "dropped_s", "hour_speech_s"):
            assert np.allclose(getattr(mb, k), getattr(ma, k), equal_nan=True), k
        assert (mb.sessions, mb.gap_count, mb.gaps) == (ma.sessions, ma.gap_count, ma.gaps)
        assert (mb.threshold.text(), mb.first, mb.last) == (ma.threshold.text(), ma.first, ma.last)
    m1 = b.models[1]
    assert m1.dropped_s.sum() == pytest.approx(20.0, abs=0.01) and m1.sessions == 2

    # the command: the same verdict lines as from the CSV, the page written
    runner = CliRunner()
    from_db = runner.invoke(app, ["report", "--db", db, "--device", "pi-7", "--tz", "UTC", "-o",
                                  str(tmp_path / "db.html")])
    from_csv = runner.invoke(app, ["report", str(log), "--tz", "UTC", "-o", str(tmp_path / "csv.html")])
    assert from_db.exit_code == 0 and from_csv.exit_code == 0, (from_db.output, from_csv.output)
    assert from_db.output.splitlines()[:2] == from_csv.output.splitlines()[:2]
    assert "device pi-7 in " in (tmp_path / "db.html").read_text()
    bad = runner.invoke(app, ["report", "--db", db, "--device", "nobody", "-o", str(tmp_path / "x.html")])
    assert bad.exit_code == 2 and "no windows of device 'nobody' (it holds other, pi-7)" in bad.output
    assert not (tmp_path / "x.html").exists()
