"""Publishing a listening session to MQTT: a Sink beside the CSV log.

Topics (``<device>`` is the device id, by default the host name):

- ``specmon/<device>/window``: one JSON object per window: the CSV log's fields, plus ``seq`` (a
  sequence number that only grows, also across restarts) and the ``threshold`` in force;
- ``specmon/<device>/summary``: every minute (retained): smoothed score, negative share over the last
  hour, minutes of speech today (local time), windows so far, queue length;
- ``specmon/<device>/status``: ``online`` (retained) while connected; ``offline`` on a clean stop and,
  as the broker's last will, when the connection is lost.

Delivery: every window and summary goes first into an on-disk queue (the ``Outbox``, a SQLite file in
the user's state folder) and leaves it only when the broker acknowledged it (PUBACK, QoS 1). While
the broker is away the queue grows, bounded by age (7 days by default); after a reconnect, or a
restart of specmon, the queue is sent in its order. A message whose PUBACK was lost can reach the
broker twice: consumers drop the copy by its (device, seq), as ``specmon collect`` does.

Payloads carry scores only, never audio.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import sqlite3
import ssl
import threading
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from monitor import __version__
from monitor.errors import SpecmonError
from monitor.events import LiveStatus, LiveWindow
from monitor.windows import NEGATIVE

TOPIC_ROOT = "specmon"
USER_ENV = "SPECMON_MQTT_USER"
PASSWORD_ENV = "SPECMON_MQTT_PASSWORD"
DEFAULT_QUEUE_DAYS = 7.0
SUMMARY_EVERY_S = 60.0
INFLIGHT = 100  # messages handed to the client and not yet acknowledged
CONNECT_WAIT_S = 5.0  # how long the first connection may take before queueing offline
CLOSE_WAIT_S = 5.0  # on close: time to send what is queued before leaving it for next time
KEEPALIVE_S = 30
HA_PREFIX = "homeassistant"
DEVICE_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class Broker(NamedTuple):
    """Where to connect: from ``mqtt://host[:port]`` or ``mqtts://host[:port]`` (TLS, verified)."""

    host: str
    port: int
    tls: bool
    url: str


def parse_broker_url(url: str) -> Broker:
    """Parse and check a broker URL; credentials in it are refused (they would show in `ps`)."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as e:
        raise SpecmonError(f"--mqtt {url}: not a broker URL ({e})") from None
    if u.scheme not in ("mqtt", "mqtts"):
        raise SpecmonError(f"--mqtt {url}: use mqtt://host:1883 or mqtts://host:8883")
    if u.username is not None or u.password is not None:
        raise SpecmonError(f"--mqtt {url}: no credentials in the URL; set {USER_ENV} and "
                           f"{PASSWORD_ENV} or put them in the config file")
    if not u.hostname:
        raise SpecmonError(f"--mqtt {url}: no host name")
    if u.path not in ("", "/") or u.query or u.fragment:
        raise SpecmonError(f"--mqtt {url}: only scheme, host and port are allowed")
    tls = u.scheme == "mqtts"
    return Broker(u.hostname, port or (8883 if tls else 1883), tls, url)


def check_device_id(device_id: str) -> str:
    """A device id is one MQTT topic level: letters, digits, '.', '_' and '-' (at most 64)."""
    if not device_id or len(device_id) > 64 or not set(device_id) <= DEVICE_ID_CHARS:
        raise SpecmonError(f"--device-id {device_id!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return device_id


def default_device_id() -> str:
    """The host name, reduced to the characters a device id may hold."""
    name = "".join(c if c in DEVICE_ID_CHARS else "-" for c in socket.gethostname().split(".")[0])
    return name[:64] or "specmon"


def state_dir() -> Path:
    """$XDG_STATE_HOME/specmon, else ~/.local/state/specmon."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "specmon"


def default_queue_path(device_id: str) -> Path:
    return state_dir() / f"mqtt-queue-{device_id}.sqlite"


def credentials_from_env(config_user: str | None = None,
                         config_password: str | None = None) -> tuple[str | None, str | None]:
    """(user, password): the environment wins over the config file."""
    user = os.environ.get(USER_ENV) or config_user
    password = os.environ.get(PASSWORD_ENV) or config_password
    return user, password


def _r(v: float | None, digits: int) -> float | None:
    return None if v is None else round(float(v), digits)


def window_message(w: LiveWindow, seq: int, threshold: float) -> dict:
    """The JSON object of one window: the CSV row's fields (same rounding), seq and threshold."""
    r = w.result
    return {
        "seq": seq,
        "time_utc": w.time_utc,
        "offset_s": _r(w.offset_s, 3),
        "start_s": _r(r.start_s, 3),
        "end_s": _r(r.end_s, 3),
        "score": _r(r.score, 4),
        "label": r.label,
        "smoothed": _r(w.smoothed, 4),
        "rms_dbfs": _r(r.rms_dbfs, 1),
        "voiced": _r(r.voiced, 2),
        "latency_ms": _r(r.latency_ms, 1),
        "model_id": w.model_id,
        "threshold": _r(threshold, 4),
    }


def dumps(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


class Outbox:
    """The on-disk queue: messages in the order they were made, deleted once acknowledged.

    Also keeps the next window sequence number. A new queue starts it at the current Unix time in
    milliseconds, so even after the queue file is lost the numbers keep growing (windows come at
    most every 32 ms) and a collector never mistakes a new window for a copy of an old one.
    """

    def __init__(self, path: Path, max_age_s: float = DEFAULT_QUEUE_DAYS * 86400) -> None:
        self.path = Path(path)
        self.max_age_s = max_age_s
        self.expired = 0  # messages dropped because they waited longer than max_age_s
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # survives a crash of specmon; WAL
            self._db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                             " topic TEXT NOT NULL, payload BLOB NOT NULL, retain INTEGER NOT NULL,"
                             " created REAL NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('next_seq', ?)",
                             (int(time.time() * 1000),))
        except (sqlite3.Error, OSError) as e:
            raise SpecmonError(f"{self.path}: cannot open the MQTT queue ({e})") from None

    def next_seq(self) -> int:
        with self._lock:
            return self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]

    def put(self, topic: str, payload: bytes, retain: bool = False, seq: int | None = None) -> None:
        """Queue one message; with seq, also advance the stored next sequence number past it."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT INTO outbox (topic, payload, retain, created) VALUES (?,?,?,?)",
                                 (topic, payload, int(retain), time.time()))
                if seq is not None:
                    self._db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq + 1,))
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                self._db.execute("ROLLBACK")
                raise SpecmonError(f"{self.path}: cannot write the MQTT queue ({e})") from None

    def after(self, last_id: int, limit: int) -> list[tuple[int, str, bytes, bool]]:
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload, retain FROM outbox WHERE id > ? "
                                    "ORDER BY id LIMIT ?", (last_id, limit)).fetchall()
        return [(i, t, bytes(p), bool(r)) for i, t, p, r in rows]

    def delete(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
            self._db.execute("COMMIT")

    def expire(self, keep_ids: set[int] | None = None) -> int:
        """Drop messages older than max_age_s (except those in flight); returns how many."""
        cutoff = time.time() - self.max_age_s
        with self._lock:
            ids = [i for (i,) in self._db.execute("SELECT id FROM outbox WHERE created < ?", (cutoff,))
                   if not keep_ids or i not in keep_ids]
            if ids:
                self._db.execute("BEGIN")
                self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
                self._db.execute("COMMIT")
        self.expired += len(ids)
        return len(ids)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Summary:
    """Per-minute figures: negative share over the last hour and minutes of speech today."""

    def __init__(self) -> None:
        self._hour: deque[tuple[float, bool]] = deque()  # (unix time, negative) of scored windows
        self._day = ""
        self._speech_s = 0.0
        self._last_end: float | None = None
        self.windows = 0
        self.smoothed: float | None = None
        self.last_seq: int | None = None

    def add(self, w: LiveWindow, seq: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        r = w.result
        day = datetime.fromtimestamp(now).date().isoformat()  # local day
        if day != self._day:
            self._day, self._speech_s = day, 0.0
        # New audio this window brought: the distance from the previous window's end (one stride),
        # at most a window's length (after a gap, or for the first window).
        span = r.end_s - r.start_s
        step = span if self._last_end is None else min(max(r.end_s - self._last_end, 0.0), span)
        self._last_end = r.end_s
        if r.score is not None:
            self._speech_s += step
            self._hour.append((now, r.label == NEGATIVE))
        while self._hour and self._hour[0][0] < now - 3600:
            self._hour.popleft()
        self.windows += 1
        self.smoothed = w.smoothed
        self.last_seq = seq

    def message(self, queued: int, expired: int, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        while self._hour and self._hour[0][0] < now - 3600:
            self._hour.popleft()
        scored = len(self._hour)
        neg = sum(1 for _, n in self._hour if n)
        return {
            "time_utc": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            "smoothed": _r(self.smoothed, 4),
            "negative_share_1h": round(neg / scored, 4) if scored else None,
            "scored_windows_1h": scored,
            "speech_minutes_today": round(self._speech_s / 60.0, 2),
            "windows": self.windows,
            "last_seq": self.last_seq,
            "queued": queued,
            "expired": expired,
        }


def ha_discovery_configs(device_id: str, prefix: str = HA_PREFIX) -> list[tuple[str, dict]]:
    """Home Assistant MQTT discovery: (config topic, payload) for the device's four entities.

    Three sensors read the retained summary topic; a connectivity binary sensor reads the status
    topic. All entities use the status topic for availability, so they show "unavailable" when the
    device is offline.
    """
    base = f"{TOPIC_ROOT}/{device_id}"
    node = "specmon_" + "".join(c if c.isalnum() or c in "_-" else "_" for c in device_id)
    device = {
        "identifiers": [node],
        "name": f"specmon {device_id}",
        "manufacturer": "specmon",
        "model": "speech negativity monitor (screening aid, not a diagnosis)",
        "sw_version": __version__,
    }
    origin = {"name": "specmon", "sw_version": __version__}
    common = {"availability_topic": f"{base}/status", "payload_available": "online",
              "payload_not_available": "offline", "device": device, "origin": origin}
    sensors = [
        ("smoothed_score", "Smoothed score", "{{ value_json.smoothed }}", None, "mdi:chart-bell-curve"),
        ("negative_share_1h", "Negative share, last hour",
         "{{ (value_json.negative_share_1h * 100) | round(1) if value_json.negative_share_1h is "
         "not none else none }}", "%", "mdi:emoticon-sad-outline"),
        ("speech_minutes_today", "Speech today", "{{ value_json.speech_minutes_today }}", "min",
         "mdi:account-voice"),
    ]
    out = []
    for obj, name, template, unit, icon in sensors:
        cfg = {"name": name, "unique_id": f"{node}_{obj}", "state_topic": f"{base}/summary",
               "value_template": template, "state_class": "measurement", "icon": icon, **common}
        if unit:
            cfg["unit_of_measurement"] = unit
        out.append((f"{prefix}/sensor/{node}/{obj}/config", cfg))
    status = {"name": "Status", "unique_id": f"{node}_status", "state_topic": f"{base}/status",
              "payload_on": "online", "payload_off": "offline", "device_class": "connectivity",
              "entity_category": "diagnostic", "device": device, "origin": origin}
    out.append((f"{prefix}/binary_sensor/{node}/status/config", status))
    return out


class MqttSink:
    """A Sink that publishes each window (and a summary every minute) through the Outbox.

    The constructor connects once and waits up to CONNECT_WAIT_S: bad credentials or a refused TLS
    certificate are configuration errors (SpecmonError); an unreachable broker is not: the session
    starts, queues on disk and keeps retrying.

    One paho client per connection, without paho's own reconnect: after a reconnect nothing is
    re-sent from paho's memory; the pump thread sends the whole unacknowledged queue again, oldest
    first, and is the only one publishing, so the order on the wire is the queue's order.
    """

    def __init__(self, url: str, device_id: str | None = None, *, ca_file: Path | None = None,
                 username: str | None = None, password: str | None = None,
                 queue_path: Path | None = None, queue_days: float = DEFAULT_QUEUE_DAYS,
                 ha_discovery: bool = False, threshold: float = 0.5,
                 summary_every_s: float = SUMMARY_EVERY_S, connect_wait_s: float = CONNECT_WAIT_S,
                 say=None) -> None:
        self.broker = parse_broker_url(url)
        self.device_id = check_device_id(device_id or default_device_id())
        if ca_file is not None and not Path(ca_file).is_file():
            raise SpecmonError(f"--mqtt-ca {ca_file}: no such file")
        if queue_days <= 0:
            raise SpecmonError(f"--mqtt-queue-days {queue_days:g}: must be more than 0")
        if password and not username:
            raise SpecmonError(f"MQTT password set without a user name ({USER_ENV})")
        self._ca, self._user, self._password = ca_file, username, password
        self.base = f"{TOPIC_ROOT}/{self.device_id}"
        self.threshold = threshold
        self.ha_discovery = ha_discovery
        self.summary_every_s = summary_every_s
        self.outbox = Outbox(queue_path or default_queue_path(self.device_id), queue_days * 86400)
        self.summary = Summary()
        self._seq = self.outbox.next_seq()
        self.connected = False
        self.published = 0  # messages acknowledged by the broker in this session
        self.unqueued = 0  # windows the on-disk queue could not take (disk full)
        self.message = ""  # the last connection event, for the status line
        self._shown = ""
        self._say = say  # optional callable(str): connection news as lines (headless runs)
        self._gen = 0  # connection number: callbacks of an older client are ignored
        self._connack: object | None = None
        self._connected_evt = threading.Event()
        self._acks: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()  # (gen, mid)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox id (current connection)
        self._announce = False  # set on connect: the pump re-sends the queue, 'online', discovery
        self._next_expire = 0.0
        self._last_id = 0  # newest outbox id handed to the current connection
        self._last_summary = time.monotonic()
        self._retry_s = 1.0
        self._next_try = 0.0
        self._pending_since: float | None = None  # connected at TCP level, waiting for CONNACK
        self.client = None
        try:
            self._open()
        except ssl.SSLCertVerificationError as e:
            self.outbox.close()
            raise SpecmonError(f"--mqtt {url}: TLS certificate refused ({e.verify_message})") from None
        except ssl.SSLError as e:
            self.outbox.close()
            raise SpecmonError(f"--mqtt {url}: TLS failed ({e.reason or e})") from None
        except OSError as e:
            # Not reachable now (network down, broker restarting): queue and keep trying.
            self._unreachable(e)
        else:
            self._connected_evt.wait(connect_wait_s)
            rc = self._connack
            if rc is not None and getattr(rc, "is_failure", False):
                self._drop_client()
                self.outbox.close()
                raise SpecmonError(f"--mqtt {url}: the broker refused the connection ({rc}); check "
                                   f"{USER_ENV}/{PASSWORD_ENV} or the config file")
        self._pump_thread = threading.Thread(target=self._pump, name="specmon-mqtt", daemon=True)
        self._pump_thread.start()

    # -- connections (constructor, then only the pump thread) ---------------------------------------
    def _open(self) -> None:
        """A new client for a new connection; raises OSError (ssl errors included)."""
        import paho.mqtt.client as mqtt

        self._drop_client()
        self._gen += 1
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"specmon-{self.device_id}",
                        clean_session=True, userdata=self._gen, reconnect_on_failure=False)
        if self._user:
            c.username_pw_set(self._user, self._password)
        if self.broker.tls:
            ctx = ssl.create_default_context(cafile=str(self._ca) if self._ca else None)
            c.tls_set_context(ctx)  # verifies the chain and the host name
        c.will_set(f"{self.base}/status", "offline", qos=1, retain=True)
        c.max_inflight_messages_set(INFLIGHT)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self.client = c
        self._pending_since = time.monotonic()
        c.connect(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        c.loop_start()

    def _drop_client(self) -> None:
        c, self.client = self.client, None
        if c is not None:
            try:
                c.disconnect()
            finally:
                c.loop_stop()

    def _unreachable(self, e: OSError) -> None:
        why = getattr(e, "verify_message", None) or e.strerror or str(e)
        self.message = (f"MQTT broker {self.broker.host}:{self.broker.port} unreachable ({why}); "
                        f"queueing on disk, retrying in {self._retry_s:.0f} s")
        self._pending_since = None
        self._next_try = time.monotonic() + self._retry_s
        self._retry_s = min(self._retry_s * 2, 30.0)

    def _reconnect(self) -> None:
        try:
            self._open()
        except OSError as e:
            self._drop_client()
            self._unreachable(e)

    # -- paho callbacks (network thread): they only set flags; the pump thread publishes ------------
    def _on_connect(self, client, gen, flags, reason_code, properties) -> None:
        if gen != self._gen:
            return
        self._connack = reason_code
        self._pending_since = None
        if reason_code.is_failure:
            self.message = f"MQTT broker refused the connection ({reason_code}); retrying"
            self._next_try = time.monotonic() + self._retry_s
            self._retry_s = min(self._retry_s * 2, 30.0)
            self._connected_evt.set()
            return
        self._retry_s = 1.0
        self.connected = True
        self.message = f"MQTT connected to {self.broker.host}:{self.broker.port}"
        self._announce = True
        self._connected_evt.set()
        self._wake.set()

    def _on_disconnect(self, client, gen, flags, reason_code, properties) -> None:
        if gen != self._gen:
            return
        if self.connected:
            self.message = f"MQTT connection lost ({reason_code}); queueing on disk, retrying"
            self._next_try = time.monotonic() + self._retry_s
        self.connected = False
        self._pending_since = None
        self._wake.set()

    def _on_publish(self, client, gen, mid, reason_code, properties) -> None:
        self._acks.put((gen, mid))
        self._wake.set()

    # -- the pump thread: the only caller of publish() while running, so every ack it reads
    # belongs to a publish() that has returned and registered its mid. -------------------------------
    def _take_acks(self) -> list[int]:
        done = []
        while True:
            try:
                gen, mid = self._acks.get_nowait()
            except queue.Empty:
                break
            oid = self._inflight.pop(mid, None) if gen == self._gen else None
            if oid is not None:
                done.append(oid)
            # else: the ack of a status or discovery message, or of an older connection
        return done

    def _pump_once(self) -> None:
        done = self._take_acks()
        if done:
            self.outbox.delete(done)
            self.published += len(done)
        if time.monotonic() >= self._next_expire:
            self._next_expire = time.monotonic() + 60.0
            self.outbox.expire(set(self._inflight.values()))
        if not self.connected:
            waiting = self._pending_since is not None and time.monotonic() - self._pending_since < 10
            if not waiting and time.monotonic() >= self._next_try:
                self._reconnect()
            return
        if self._announce:  # a new connection: everything unacknowledged goes again, in order
            self._announce = False
            self._inflight.clear()
            self._last_id = 0
            self.client.publish(f"{self.base}/status", "online", qos=1, retain=True)
            if self.ha_discovery:
                for topic, cfg in ha_discovery_configs(self.device_id):
                    self.client.publish(topic, dumps(cfg), qos=1, retain=True)
        room = INFLIGHT - len(self._inflight)
        if room <= 0:
            return
        for oid, topic, payload, retain in self.outbox.after(self._last_id, room):
            info = self.client.publish(topic, payload, qos=1, retain=retain)
            self._last_id = oid
            self._inflight[info.mid] = oid

    def _pump(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._pump_once()
            except Exception as e:  # noqa: BLE001 - keep publishing; the status line shows why
                self.message = f"MQTT queue error: {e}"

    # -- Sink protocol (pipeline thread) ------------------------------------------------------------
    def _show(self, status: LiveStatus | None) -> None:
        """Connection news goes to the status line (dashboard, or one stderr line headless)."""
        if status is not None and self.message != self._shown:
            self._shown = status.message = self.message
            if self._say is not None:
                self._say(self.message)

    def on_window(self, w: LiveWindow, status: LiveStatus) -> None:
        self._show(status)
        seq = self._seq
        try:
            self.outbox.put(f"{self.base}/window", dumps(window_message(w, seq, self.threshold)), seq=seq)
        except SpecmonError as e:  # e.g. disk full: the CSV log matters more; say so and go on
            self.message = f"{e}; window not queued for MQTT"
            self.unqueued += 1
            return
        self._seq = seq + 1
        self.summary.add(w, seq)
        self._wake.set()

    def publish_summary(self) -> None:
        self._last_summary = time.monotonic()
        msg = self.summary.message(len(self.outbox), self.outbox.expired)
        self.outbox.put(f"{self.base}/summary", dumps(msg), retain=True)
        self._wake.set()

    def on_tick(self, status: LiveStatus) -> None:
        self._show(status)
        if time.monotonic() - self._last_summary >= self.summary_every_s:
            self.publish_summary()

    def close(self, status: LiveStatus | None = None) -> None:
        """Final summary; send what is queued (up to CLOSE_WAIT_S); 'offline'; disconnect."""
        if self._stop.is_set():
            return
        self.publish_summary()
        end = time.monotonic() + CLOSE_WAIT_S
        while self.connected and time.monotonic() < end and len(self.outbox):
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._pump_thread.join(2.0)
        try:
            if self.connected and self.client is not None:
                info = self.client.publish(f"{self.base}/status", "offline", qos=1, retain=True)
                info.wait_for_publish(2.0)
        except (RuntimeError, ValueError):
            pass
        self._drop_client()
        try:
            self.outbox.delete(self._take_acks())  # acks that came in while stopping
        finally:
            self.outbox.close()

    def abandon(self) -> None:
        self.close()
