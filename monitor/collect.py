"""`specmon collect`: subscribe to every device's topics and store windows and status.

Delivery: a persistent MQTT session (clean_session off, QoS 1) and manual acknowledgements. A message
is acknowledged only after the transaction that stores it has committed, so a collector that crashes
loses nothing: the broker delivers the unacknowledged messages again when it is back, and the store
keeps one row per (device, seq). (The broker queues for a collector that is away only as many
messages as its `max_queued_messages` allows: raise it on the broker, see the README.)

Bad input: every message is checked before it goes near the database (topic, size, UTF-8, JSON, each
field's type and range); a bad one is counted by reason, acknowledged and dropped, and the collector
goes on. Values reach SQL only as bound parameters (monitor.store).
"""

from __future__ import annotations

import json
import math
import queue
import re
import signal
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from monitor.errors import SpecmonError
from monitor.mqtt_sink import TOPIC_ROOT, parse_broker_url
from monitor.store import Store

MAX_PAYLOAD = 4096  # a window message is about 300 bytes
BATCH = 500  # messages per transaction at most
TOPIC_RE = re.compile(r"^specmon/([A-Za-z0-9._-]{1,64})/(window|status|summary)$")
LABELS = {"negative", "neutral", "no-speech"}
SEQ_MAX = 2**63 - 1
_NUM_FIELDS = ("offset_s", "start_s", "end_s", "rms_dbfs", "voiced", "latency_ms")


class Rejected(ValueError):
    """A message that is not a valid specmon message; str(e) is the reason (counted)."""


def _no_constants(name: str):
    raise Rejected("not JSON (NaN/Infinity)")


def _number(obj: dict, key: str, lo: float = -1e12, hi: float = 1e12, null: bool = False) -> float | None:
    v = obj.get(key)
    if v is None and null:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise Rejected(f"bad field {key}")
    return float(v)


def _text(obj: dict, key: str, max_len: int) -> str:
    v = obj.get(key)
    if not isinstance(v, str) or not 0 < len(v) <= max_len or not v.isprintable():
        raise Rejected(f"bad field {key}")
    return v


def _json_object(payload: bytes) -> dict:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("not UTF-8") from None
    try:
        obj = json.loads(text, parse_constant=_no_constants)
    except Rejected:
        raise
    except (ValueError, RecursionError):
        raise Rejected("not JSON") from None
    if not isinstance(obj, dict):
        raise Rejected("not a JSON object")
    return obj


def parse_window(payload: bytes) -> tuple:
    """(seq, *WINDOW_FIELDS) from a window message, checked field by field."""
    obj = _json_object(payload)
    seq = obj.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= SEQ_MAX:
        raise Rejected("bad field seq")
    t = _text(obj, "time_utc", 40)
    try:
        datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected("bad field time_utc") from None
    label = obj.get("label")
    if label not in LABELS:
        raise Rejected("bad field label")
    score = _number(obj, "score", 0.0, 1.0, null=True)
    if (score is None) != (label == "no-speech"):
        raise Rejected("bad field score")
    offset_s, start_s, end_s, rms, voiced, latency = (_number(obj, k) for k in _NUM_FIELDS)
    return (seq, t, offset_s, start_s, end_s, score, label,
            _number(obj, "smoothed", 0.0, 1.0, null=True), rms, voiced, latency,
            _text(obj, "model_id", 200), _number(obj, "threshold", 0.0, 1.0, null=True))


def parse_message(topic: str, payload: bytes, max_payload: int = MAX_PAYLOAD) -> tuple[str, str, object]:
    """(kind, device, value) of a valid message; raises Rejected with the reason otherwise."""
    m = TOPIC_RE.match(topic)
    if m is None:
        raise Rejected("bad topic")
    device, kind = m.group(1), m.group(2)
    if len(payload) > max_payload:
        raise Rejected("oversized")
    if kind == "status":
        if payload not in (b"online", b"offline"):
            raise Rejected("bad status")
        return kind, device, payload.decode()
    if kind == "summary":
        return kind, device, json.dumps(_json_object(payload), separators=(",", ":"))
    return kind, device, parse_window(payload)


@dataclass
class Stats:
    received: int = 0
    stored: int = 0
    copies: int = 0  # redelivered windows already stored
    statuses: int = 0
    rejected: Counter = field(default_factory=Counter)

    def line(self) -> str:
        rej = sum(self.rejected.values())
        why = ", ".join(f"{k}: {v}" for k, v in sorted(self.rejected.items()))
        return (f"collect: {self.received} messages, {self.stored} windows stored, {self.copies} copies "
                f"dropped, {self.statuses} status updates, {rej} rejected" + (f" ({why})" if why else ""))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Collector:
    """Subscribes, checks, stores in batches, then acknowledges: see the module docstring."""

    def __init__(self, url: str, store: Store, *, ca_file: Path | None = None, username: str | None = None,
                 password: str | None = None, client_id: str | None = None,
                 max_payload: int = MAX_PAYLOAD, log=None) -> None:
        import paho.mqtt.client as mqtt

        self.broker = parse_broker_url(url)
        self.store = store
        self.max_payload = max_payload
        self.stats = Stats()
        self.log = log or (lambda line: None)
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._connack = None
        self._ever_connected = False
        self._connected = threading.Event()
        self._seen_reasons: set[str] = set()
        cid = client_id or f"specmon-collect-{socket.gethostname().split('.')[0]}"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False,
                        manual_ack=True)
        if username:
            c.username_pw_set(username, password)
        if self.broker.tls:
            c.tls_set_context(ssl.create_default_context(cafile=str(ca_file) if ca_file else None))
        c.max_inflight_messages_set(100)
        c.reconnect_delay_set(1, 30)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        self.client = c

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connack = reason_code
        if not reason_code.is_failure:
            self._ever_connected = True
            client.subscribe([(f"{TOPIC_ROOT}/+/window", 1), (f"{TOPIC_ROOT}/+/status", 1),
                              (f"{TOPIC_ROOT}/+/summary", 1)])
            self.log(f"collect: connected to {self.broker.host}:{self.broker.port}")
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._ever_connected and not self._stop.is_set():
            self.log(f"collect: connection lost ({reason_code}); reconnecting")

    def _on_message(self, client, userdata, msg) -> None:
        # Network thread: only queue it; the store thread checks, stores and acknowledges in order.
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = ""
        self._q.put((msg.mid, msg.qos, topic, bytes(msg.payload)))

    def connect(self, wait_s: float = 10.0) -> None:
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        except ssl.SSLCertVerificationError as e:
            raise SpecmonError(f"--mqtt {self.broker.url}: TLS certificate refused ({e.verify_message})"
                               ) from None
        except ssl.SSLError as e:
            raise SpecmonError(f"--mqtt {self.broker.url}: TLS failed ({e.reason or e})") from None
        except OSError as e:
            raise SpecmonError(f"--mqtt {self.broker.url}: cannot connect ({e.strerror or e})") from None
        self.client.loop_start()
        if not self._connected.wait(wait_s):
            self.client.loop_stop()
            raise SpecmonError(f"--mqtt {self.broker.url}: no answer from the broker in {wait_s:g} s")
        if self._connack is not None and self._connack.is_failure:
            self.client.loop_stop()
            raise SpecmonError(f"--mqtt {self.broker.url}: the broker refused the connection "
                               f"({self._connack}); check SPECMON_MQTT_USER/SPECMON_MQTT_PASSWORD")

    def stop(self, *_args) -> None:
        self._stop.set()

    def _store_batch(self, batch: list[tuple]) -> None:
        rows, now = [], _now()
        st = self.stats
        for _mid, _qos, topic, payload in batch:
            st.received += 1
            try:
                kind, device, value = parse_message(topic, payload, self.max_payload)
            except Rejected as e:
                reason = str(e)
                st.rejected[reason] += 1
                if reason not in self._seen_reasons:  # say each kind of problem once
                    self._seen_reasons.add(reason)
                    self.log(f"collect: rejected a message on {topic[:80]!r}: {reason} (counted; "
                             "further ones are only counted)")
                continue
            if kind == "window":
                rows.append((device, *value, now))
            elif kind == "status":
                self.store.set_status(device, value, now)
                st.statuses += 1
            else:
                self.store.set_summary(device, value, now)
        new = self.store.add_windows(rows)
        st.stored += new
        st.copies += len(rows) - new
        for mid, qos, _t, _p in batch:  # acknowledged in the order received, after the commit
            if qos:
                self.client.ack(mid, qos)

    def run(self, duration_s: float | None = None, stats_every_s: float = 60.0) -> Stats:
        """Store until stop() (SIGINT/SIGTERM) or duration_s; then acknowledge what is stored."""
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self.stop)
        t0 = time.monotonic()
        next_stats = t0 + stats_every_s
        try:
            while not self._stop.is_set():
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    break
                self._drain_once(timeout=0.2)
                if time.monotonic() >= next_stats:
                    next_stats += stats_every_s
                    self.log(self.stats.line())
        finally:
            for sig, h in handlers.items():
                signal.signal(sig, h)
            self.client.disconnect()
            self.client.loop_stop()
        # Store what had arrived; without a connection it stays unacknowledged, so the broker sends
        # it again next time and the store drops the copies.
        while self._drain_once(timeout=0.0):
            pass
        return self.stats

    def _drain_once(self, timeout: float) -> int:
        batch = []
        try:
            batch.append(self._q.get(timeout=timeout) if timeout else self._q.get_nowait())
            while len(batch) < BATCH:
                batch.append(self._q.get_nowait())
        except queue.Empty:
            pass
        if batch:
            try:
                self._store_batch(batch)
            except SpecmonError:
                raise
            except Exception as e:  # the database went away: stop; nothing more is acknowledged
                raise SpecmonError(f"{self.store.name}: cannot store ({' '.join(str(e).split())}); "
                                   "unacknowledged messages will be delivered again") from None
        return len(batch)
