"""`specmon listen --mqtt`: publishing to a real Mosquitto broker (started per test on loopback).

Covers: windows in order with nothing lost across a broker restart and across a restart of specmon
while the broker is away (the on-disk queue), wrong credentials (one line, exit 2), TLS (verified;
a name mismatch refused), retained status and last will, and Home Assistant discovery payloads
checked against HA's documented MQTT discovery schema.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from mqtt_support import PASSWORD, USER, Mosquitto
from waiting import wait_until

from monitor.errors import SpecmonError
from monitor.events import LiveWindow
from monitor.mqtt_sink import MqttSink, Outbox, ha_discovery_configs, parse_broker_url
from monitor.windows import WindowResult

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "scripts" / "sample.flac"
CSV_FIELDS = ["time_utc", "offset_s", "start_s", "end_s", "score", "label", "smoothed", "rms_dbfs",
              "voiced", "latency_ms", "model_id"]


class Recorder:
    """A subscriber with a persistent session: records every message (topic, payload, retain)."""

    def __init__(self, port: int, topics: str = "specmon/#", client_id: str = "recorder",
                 username: str | None = None, password: str | None = None) -> None:
        self.msgs: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if username:
            c.username_pw_set(username, password)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topics, 1)
        c.on_message = self._on_message
        c.reconnect_delay_set(0.2, 1)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        self.wait(lambda: c.is_connected(), 5)
        time.sleep(0.2)  # subscription in place

    def _on_message(self, client, userdata, m) -> None:
        with self._lock:
            self.msgs.append((m.topic, bytes(m.payload), bool(m.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _r in self.msgs if t == topic]

    def windows(self, device: str) -> list[dict]:
        return [json.loads(p) for p in self.on(f"specmon/{device}/window")]

    @staticmethod
    def wait(cond, timeout: float) -> bool:
        return wait_until(cond, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def window(i: int, score: float | None = 0.3) -> LiveWindow:
    label = "no-speech" if score is None else ("negative" if score >= 0.5 else "neutral")
    r = WindowResult(float(i), i + 4.032, score, label, -31.25, 0.87, 0.42)
    return LiveWindow(f"2026-11-20T10:00:{i % 60:02d}.000Z", i + 4.032, r, score, "specmon-int8-test")


def assert_in_order_complete(wins: list[dict], first_seq: int, n: int) -> None:
    """Every seq first_seq..first_seq+n-1 arrived, and first arrivals are in order (a copy of a
    message whose PUBACK was lost may follow; consumers drop it by seq)."""
    seqs = [w["seq"] for w in wins]
    firsts = list(dict.fromkeys(seqs))
    assert firsts == list(range(first_seq, first_seq + n)), seqs


@pytest.fixture()
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker")
    yield b
    b.stop()


def test_broker_url_and_device_id_checks():
    assert parse_broker_url("mqtt://h")[:3] == ("h", 1883, False)
    b = parse_broker_url("mqtts://broker.lan")
    assert (b.host, b.port, b.tls) == ("broker.lan", 8883, True)
    for bad in ("http://h", "mqtt://user:pw@h", "mqtt://h:99999", "mqtt://", "mqtt://h/x"):
        with pytest.raises(SpecmonError):
            parse_broker_url(bad)
    with pytest.raises(SpecmonError, match="device-id"):
        MqttSink("mqtt://127.0.0.1:1", "a/b", queue_path=Path("/nonexistent/q.sqlite"))


def test_windows_in_order_across_broker_restart(tmp_path, broker):
    rec = Recorder(broker.port)
    sink = MqttSink(broker.url, "dev1", queue_path=tmp_path / "q.sqlite", threshold=0.5)
    first = sink.outbox.next_seq()
    n = 0
    for _ in range(20):
        sink.on_window(window(n), None)
        n += 1
        time.sleep(0.02)
    assert rec.wait(lambda: len(rec.windows("dev1")) >= 20, 10)
    broker.stop()  # the broker goes away mid-run
    for _ in range(30):
        sink.on_window(window(n), None)
        n += 1
        time.sleep(0.02)
    assert rec.wait(lambda: not sink.connected, 5)
    assert len(sink.outbox) >= 30, "windows made while the broker is away wait in the on-disk queue"
    broker.start()
    for _ in range(20):
        sink.on_window(window(n), None)
        n += 1
        time.sleep(0.02)
    assert rec.wait(lambda: len({w["seq"] for w in rec.windows("dev1")}) >= n, 20)
    sink.close()
    rec.close()
    wins = rec.windows("dev1")
    assert_in_order_complete(wins, first, n)
    by_seq = {w["seq"]: w for w in wins}
    w0 = by_seq[first + 7]
    # the CSV's fields plus seq and threshold; scores only
    assert set(w0) == set(CSV_FIELDS) | {"seq", "threshold"}
    assert (w0["offset_s"], w0["score"], w0["label"], w0["voiced"]) == (11.032, 0.3, "neutral", 0.87)
    assert rec.on("specmon/dev1/status")[-1] == b"offline"
    assert len(Outbox(tmp_path / "q.sqlite")) == 0, "acknowledged messages leave the queue"


def test_queue_survives_a_restart_of_specmon_while_the_broker_is_away(tmp_path, broker):
    broker.stop()
    q = tmp_path / "q.sqlite"
    sink = MqttSink(broker.url, "dev2", queue_path=q, connect_wait_s=0.5)
    assert "unreachable" in sink.message
    first = sink.outbox.next_seq()
    for i in range(10):
        sink.on_window(window(i, None if i == 3 else 0.8), None)
    sink.close()  # specmon stops (or crashes) before the broker is back
    assert len(Outbox(q)) == 11  # 10 windows and the final summary
    broker.start()
    rec = Recorder(broker.port)
    sink = MqttSink(broker.url, "dev2", queue_path=q)
    assert sink.outbox.next_seq() == first + 10, "sequence numbers continue after a restart"
    for i in range(10, 15):
        sink.on_window(window(i), None)
    assert rec.wait(lambda: len({w["seq"] for w in rec.windows("dev2")}) >= 15, 15)
    sink.close()
    rec.close()
    wins = rec.windows("dev2")
    assert_in_order_complete(wins, first, 15)
    nospeech = next(w for w in wins if w["seq"] == first + 3)
    assert nospeech["score"] is None and nospeech["label"] == "no-speech"


def test_summary_every_period_and_retained_status(tmp_path, broker):
    sink = MqttSink(broker.url, "dev3", queue_path=tmp_path / "q.sqlite", summary_every_s=0.3,
                    threshold=0.5)
    for i in range(6):
        sink.on_window(window(i, 0.9 if i % 2 else 0.1), None)
        sink.on_tick(None)
        time.sleep(0.1)
    assert sink.outbox.expired == 0
    sink.publish_summary()
    rec = Recorder(broker.port, client_id="late")  # subscribes later: retained messages still come
    assert rec.wait(lambda: rec.on("specmon/dev3/status") == [b"online"], 5)
    assert rec.wait(lambda: rec.on("specmon/dev3/summary")
                    and json.loads(rec.on("specmon/dev3/summary")[-1])["windows"] == 6, 5)
    s = json.loads(rec.on("specmon/dev3/summary")[-1])
    assert s["windows"] == 6 and s["negative_share_1h"] == 0.5
    # 6 windows one second apart: 4.032 s for the first, then 1 s each
    assert s["speech_minutes_today"] == round((4.032 + 5) / 60, 2)
    # the last will: a broker that loses the connection announces 'offline' (retained)
    sink._stop.set()
    sink.client._sock.close()  # as if the device lost power: no clean disconnect
    sink.client.loop_stop()
    assert rec.wait(lambda: rec.on("specmon/dev3/status")[-1:] == [b"offline"], KEEPALIVE_WAIT)
    rec.close()


KEEPALIVE_WAIT = 10


def _listen(args: list[str], env: dict, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor.cli", "listen", "--input", str(SAMPLE),
                           "--fast", "--headless", *args], capture_output=True, text=True, env=env,
                          cwd=tmp, timeout=120)


def csv_text(key: str, v) -> str:
    """A window message's value as the CSV log writes it."""
    digits = {"offset_s": 3, "start_s": 3, "end_s": 3, "score": 4, "smoothed": 4, "rms_dbfs": 1,
              "voiced": 2, "latency_ms": 1}.get(key)
    if v is None:
        return ""
    return f"{v:.{digits}f}" if digits else str(v)


def _env(**kw: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECMON_MQTT")}
    env["XDG_STATE_HOME"] = kw.pop("state")
    env["XDG_CONFIG_HOME"] = kw.pop("config", env["XDG_STATE_HOME"])
    env.update(kw)
    return env


def test_listen_publishes_every_csv_row_with_credentials(tmp_path):
    b = Mosquitto(tmp_path / "broker", password=True)
    try:
        rec = Recorder(b.port, username=USER, password=PASSWORD)
        env = _env(state=str(tmp_path / "state"), SPECMON_MQTT_USER=USER, SPECMON_MQTT_PASSWORD=PASSWORD)
        r = _listen(["--csv", "s.csv", "--mqtt", b.url, "--device-id", "pi-1"], env, tmp_path)
        assert r.returncode == 0, r.stderr
        with open(tmp_path / "s.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) >= 15
        assert rec.wait(lambda: len(rec.windows("pi-1")) >= len(rows), 10)
        wins = sorted({w["seq"]: w for w in rec.windows("pi-1")}.values(), key=lambda w: w["seq"])
        assert len(wins) == len(rows)
        for row, w in zip(rows, wins, strict=True):  # the CSV's values, same rounding
            assert {k: csv_text(k, w[k]) for k in CSV_FIELDS} == row
        assert (tmp_path / "state" / "specmon" / "mqtt-queue-pi-1.sqlite").is_file()

        # wrong credentials: one line, exit 2, no empty log left behind
        env["SPECMON_MQTT_PASSWORD"] = "wrong"
        r = _listen(["--csv", "bad.csv", "--mqtt", b.url, "--device-id", "pi-1"], env, tmp_path)
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("specmon: error: --mqtt ") and "refused" in lines[0]
        assert not (tmp_path / "bad.csv").exists()
        # credentials are never taken from the command line
        r = _listen(["--csv", "bad.csv", "--mqtt", f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{b.port}"], env,
                    tmp_path)
        assert r.returncode == 2 and "no credentials in the URL" in r.stderr
        rec.close()
    finally:
        b.stop()


def test_tls_verified_and_name_mismatch_refused(tmp_path):
    b = Mosquitto(tmp_path / "broker", tls=True)
    try:
        rec = Recorder(b.port)
        sink = MqttSink(f"mqtts://localhost:{b.tls_port}", "tls1", ca_file=b.ca,
                        queue_path=tmp_path / "q.sqlite")
        assert sink.connected
        sink.on_window(window(0), None)
        assert rec.wait(lambda: len(rec.windows("tls1")) == 1, 5)
        sink.close()
        rec.close()
        # the certificate names 'localhost' only: connecting by IP address is refused
        env = _env(state=str(tmp_path / "state"))
        r = _listen(["--csv", "t.csv", "--mqtt", f"mqtts://127.0.0.1:{b.tls_port}", "--mqtt-ca", str(b.ca)],
                    env, tmp_path)
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "TLS certificate refused" in lines[0] and "127.0.0.1" in lines[0]
        # and without our CA the system's trust store does not know the test CA
        with pytest.raises(SpecmonError, match="TLS certificate refused"):
            MqttSink(f"mqtts://localhost:{b.tls_port}", "tls1", queue_path=tmp_path / "q.sqlite")
    finally:
        b.stop()


# Home Assistant's documented MQTT discovery schema (home-assistant.io/integrations/mqtt,
# sensor.mqtt and binary_sensor.mqtt: "Configuration Variables"), the parts our payloads use.
HA_TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor)/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config$")
HA_COMMON = {"availability", "availability_mode", "availability_template", "availability_topic",
             "device", "device_class", "enabled_by_default", "encoding", "entity_category",
             "entity_picture", "expire_after", "force_update", "icon", "json_attributes_template",
             "json_attributes_topic", "name", "object_id", "default_entity_id", "payload_available",
             "payload_not_available", "qos", "state_topic", "unique_id", "value_template", "origin",
             "platform"}
HA_KEYS = {"sensor": HA_COMMON | {"last_reset_value_template", "options", "state_class",
                                  "suggested_display_precision", "unit_of_measurement"},
           "binary_sensor": HA_COMMON | {"off_delay", "payload_off", "payload_on"}}
HA_DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer",
                  "model", "model_id", "name", "serial_number", "suggested_area", "sw_version",
                  "via_device"}
HA_STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
HA_BINARY_CLASSES = {"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
                     "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
                     "occupancy", "opening", "plug", "power", "presence", "problem", "running",
                     "safety", "smoke", "sound", "tamper", "update", "vibration", "window"}


def check_ha_discovery(topic: str, cfg: dict) -> None:
    m = HA_TOPIC.match(topic)
    assert m, topic
    component = m.group(1)
    assert set(cfg) <= HA_KEYS[component], set(cfg) - HA_KEYS[component]
    assert isinstance(cfg["state_topic"], str) and "+" not in cfg["state_topic"]
    for k in ("name", "unique_id", "value_template", "availability_topic", "unit_of_measurement",
              "payload_on", "payload_off", "payload_available", "payload_not_available"):
        assert k not in cfg or isinstance(cfg[k], str), k
    assert not ("availability" in cfg and "availability_topic" in cfg)
    assert "icon" not in cfg or re.match(r"^[a-z]+:[a-z0-9-]+$", cfg["icon"])
    assert cfg.get("entity_category") in (None, "config", "diagnostic")
    if component == "sensor":
        assert cfg.get("state_class") in (None, *HA_STATE_CLASSES)
    else:
        assert cfg.get("device_class") in (None, *HA_BINARY_CLASSES)
    dev = cfg["device"]
    assert set(dev) <= HA_DEVICE_KEYS and "unique_id" in cfg  # a device needs a unique_id
    assert isinstance(dev.get("identifiers"), list) and all(isinstance(i, str) for i in dev["identifiers"])
    assert isinstance(cfg["origin"]["name"], str)
    assert set(cfg["origin"]) <= {"name", "sw_version", "support_url"}


def test_ha_discovery_payloads_match_the_documented_schema(tmp_path, broker):
    rec = Recorder(broker.port, topics="#")
    sink = MqttSink(broker.url, "kitchen", queue_path=tmp_path / "q.sqlite", ha_discovery=True,
                    summary_every_s=0.2)
    for i in range(3):
        sink.on_window(window(i, 0.7), None)
    time.sleep(0.3)
    sink.on_tick(None)
    assert rec.wait(lambda: len([t for t, _p, _r in rec.msgs if t.startswith("homeassistant/")]) == 4, 5)
    assert rec.wait(lambda: rec.on("specmon/kitchen/summary"), 5)
    sink.close()
    rec.close()
    configs = [(t, json.loads(p)) for t, p, r in rec.msgs if t.startswith("homeassistant/")]
    assert [t for t, _ in configs] == [t for t, _ in ha_discovery_configs("kitchen")]
    summary = json.loads(rec.on("specmon/kitchen/summary")[-1])
    uids = set()
    for topic, cfg in configs:
        check_ha_discovery(topic, cfg)
        uids.add(cfg["unique_id"])
        # every value the templates read is in the summary message
        for key in re.findall(r"value_json\.(\w+)", cfg.get("value_template", "")):
            assert key in summary, key
        assert cfg["state_topic"] in ("specmon/kitchen/summary", "specmon/kitchen/status")
    assert len(uids) == 4
    assert {c["name"] for _, c in configs} == {"Smoothed score", "Negative share, last hour",
                                               "Speech today", "Status"}
    assert summary["smoothed"] == 0.7 and summary["negative_share_1h"] == 1.0


def test_queue_is_bounded_by_age(tmp_path):
    box = Outbox(tmp_path / "q.sqlite", max_age_s=0.2)
    for i in range(3):
        box.put("specmon/d/window", b"{}", seq=box.next_seq() + i)
    time.sleep(0.3)
    box.put("specmon/d/window", b"{}")
    assert box.expire() == 3 and len(box) == 1 and box.expired == 3
    box.close()
