"""Load test for `specmon collect`: simulated devices publish windows to a real Mosquitto on loopback;
the real collector (a `specmon collect` process) stores them in SQLite or PostgreSQL. Then every row
is checked: nothing lost, nothing twice.

    python scripts/load_collect.py                      # 200 devices, 1 window/s each, 60 s, SQLite
    python scripts/load_collect.py --db postgresql://postgres@127.0.0.1:5432/postgres
    python scripts/load_collect.py --devices 20 --seconds 5 --backlog 5000   # short; plus a drain test

Phase 1 (steady): every device publishes one window message per second (QoS 1), as `specmon listen
--mqtt` does; reported: the rate the collector stored at, and how far behind it was at the end.
Phase 2 (--backlog N, optional): N messages are queued at the broker while the collector is stopped;
reported: how fast the restarted collector drains them (its capacity, not the offered load).

Everything runs on 127.0.0.1 only, is bounded in count and time, and stops by itself. With no
--broker, a private Mosquitto is started on a free port (needs the Debian package `mosquitto`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import paho.mqtt.client as mqtt  # noqa: E402

from monitor.events import LiveWindow  # noqa: E402
from monitor.mqtt_sink import dumps, window_message  # noqa: E402
from monitor.store import open_store  # noqa: E402
from monitor.windows import WindowResult  # noqa: E402


def _window(i: int) -> LiveWindow:
    score = ((i * 37) % 100) / 100.0
    r = WindowResult(float(i), i + 4.032, score, "negative" if score >= 0.4 else "neutral", -30.0, 0.9, 0.4)
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
    return LiveWindow(t, i + 4.032, r, score, "specmon-load")


class Device(threading.Thread):
    """One simulated device: its own MQTT connection; `count` windows, `rate` per second."""

    def __init__(self, name: str, port: int, count: int, rate: float, start_at: float) -> None:
        super().__init__(daemon=True)
        self.name_ = name
        self.count, self.rate, self.start_at = count, rate, start_at
        self.sent = 0
        self.infos: list = []
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"load-{name}")
        c.max_inflight_messages_set(100)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def run(self) -> None:
        for i in range(self.count):
            due = self.start_at + i / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            payload = dumps(window_message(_window(i), i, 0.4))
            self.infos.append(self.client.publish(f"specmon/{self.name_}/window", payload, qos=1))
            self.sent += 1

    def finish(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for info in self.infos:
            info.wait_for_publish(max(0.1, end - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()


def start_collector(url: str, db: str, client_id: str, timeout: float = 60.0) -> subprocess.Popen:
    """A `specmon collect` process, returned once it has subscribed (its "connected" line).

    Its first session holds nothing: a message published before it subscribes goes to no one. A
    fixed wait lost the first second of every device on a loaded machine (start-up took longer)."""
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "collect", "--mqtt", url, "--db", db,
                             "--client-id", client_id, "--stats-every", "3600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    seen: list[str] = []
    connected = threading.Event()

    def watch() -> None:  # stops reading at the line, so that _stop still gets the rest of stderr
        for line in proc.stderr:
            if line.startswith("collect: connected"):
                connected.set()
                return
            seen.append(line.strip())

    threading.Thread(target=watch, daemon=True).start()
    if connected.wait(timeout):
        return proc
    proc.kill()
    proc.wait()
    err = " | ".join(seen)
    raise RuntimeError(f"collector did not connect within {timeout:g} s: {err[-500:]}")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"collector exited {proc.returncode}: {err.strip()[-500:]}")
    return out.strip()


def _count(db: str) -> int:
    s = open_store(db)
    try:
        return s.count()
    finally:
        s.close()


def _wait_count(db: str, target: int, timeout: float) -> tuple[int, float]:
    t0 = time.monotonic()
    n = _count(db)
    while n < target and time.monotonic() - t0 < timeout:
        time.sleep(0.2)
        n = _count(db)
    return n, time.monotonic()


def _check(db: str, expected: dict[str, int]) -> dict:
    """Every device has exactly seqs 0..n-1, one row each."""
    s = open_store(db)
    try:
        cur = s.conn.cursor()
        cur.execute("SELECT device, COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM windows "
                    "GROUP BY device")
        got = {d: (c, dc, lo, hi) for d, c, dc, lo, hi in cur.fetchall()}
    finally:
        s.close()
    lost = dup = 0
    for dev, n in expected.items():
        c, dc, lo, hi = got.get(dev, (0, 0, None, None))
        dup += c - dc
        lost += n - dc
        if dc and (lo != 0 or hi != n - 1):
            lost += 1
    return {"lost": lost, "duplicated": dup, "rows": sum(v[0] for v in got.values())}


def run(devices: int = 200, seconds: float = 60.0, rate: float = 1.0, db: str | None = None,
        broker: str | None = None, backlog: int = 0, workdir: Path | None = None) -> dict:
    """Run the load test; returns the figures (see the module docstring)."""
    from mqtt_support import Mosquitto

    tmp = Path(workdir or tempfile.mkdtemp(prefix="specmon-load-"))
    own = None
    if broker is None:
        own = Mosquitto(tmp / "broker")
        broker_url, port = own.url, own.port
    else:
        broker_url, port = broker, int(broker.rsplit(":", 1)[1])
    db = db or str(tmp / "fleet.sqlite")
    cid = f"load-collector-{os.getpid()}-{int(time.time())}"
    out: dict = {"devices": devices, "seconds": seconds, "rate": rate, "db": "postgresql" if
                 db.startswith("postgres") else "sqlite"}
    try:
        base = _count(db)
        col = start_collector(broker_url, db, cid)
        start_at = time.monotonic() + 1.0
        devs = [Device(f"dev{i:03d}", port, int(seconds * rate), rate, start_at) for i in range(devices)]
        for d in devs:
            d.start()
        for d in devs:
            d.join()
        for d in devs:
            d.finish(30)
        sent_end = time.monotonic()
        total = sum(d.sent for d in devs)
        n, t_done = _wait_count(db, base + total, 60)
        out.update(sent=total, stored=n - base, catch_up_s=round(t_done - sent_end, 2),
                   steady_msgs_per_s=round((n - base) / (t_done - start_at), 1))
        out["collector"] = _stop(col)

        if backlog:
            # Queue messages at the broker for the stopped collector's session, then time the drain.
            bdev = Device("backlog", port, backlog, 1e9, time.monotonic())  # as fast as it can
            bdev.run()
            bdev.finish(60)
            col = start_collector(broker_url, db, cid)
            t0 = time.monotonic()
            n2, t_done = _wait_count(db, n + backlog, 120)
            out.update(backlog=backlog, backlog_stored=n2 - n,
                       drain_msgs_per_s=round((n2 - n) / (t_done - t0), 1))
            _stop(col)
        expected = {d.name_: d.sent for d in devs}
        if backlog:
            expected["backlog"] = backlog
        if base == 0:
            out.update(_check(db, expected))
    finally:
        if own is not None:
            own.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=1.0, help="windows per second per device")
    ap.add_argument("--db", help="SQLite file or postgresql:// URL (default: a temporary SQLite file; "
                    "use an empty database)")
    ap.add_argument("--broker", help="mqtt://127.0.0.1:PORT of a running broker (default: start one)")
    ap.add_argument("--backlog", type=int, default=0, help="also time draining this many queued messages")
    a = ap.parse_args()
    if a.devices * a.seconds * a.rate > 100_000 or a.backlog > 100_000:
        ap.error("bounded: at most 100000 messages per phase")
    res = run(a.devices, a.seconds, a.rate, a.db, a.broker, a.backlog)
    print(json.dumps(res, indent=2))
    sys.exit(0 if res.get("lost", 0) == 0 and res.get("duplicated", 0) == 0 else 1)


if __name__ == "__main__":
    main()
