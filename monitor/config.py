"""The config file: every `specmon listen` option, MQTT included, and `specmon collect`'s, in TOML.

~/.config/specmon/config.toml (or $XDG_CONFIG_HOME/specmon/config.toml), or the file given with
--config. Command-line options override it. Example:

    [listen]
    device = "USB"                    # --device
    csv = "~/specmon/listen.csv"      # --csv
    stride = 1.0
    headless = true

    [mqtt]
    url = "mqtts://broker.lan:8883"   # --mqtt
    ca = "/etc/ssl/certs/my-ca.pem"   # --mqtt-ca
    device_id = "kitchen"             # --device-id
    ha_discovery = true               # --ha-discovery
    username = "kitchen"              # only here or in SPECMON_MQTT_USER / SPECMON_MQTT_PASSWORD,
    password = "..."                  # never on the command line

    [collect]                         # `specmon collect` (it also reads [mqtt]: url, ca, credentials)
    db = "/var/lib/specmon/fleet.sqlite"   # --db
    client_id = "specmon-collect-hub"      # --client-id

An unknown key or a value of the wrong type is an error naming the key; a file holding credentials
that other users can read gets a warning.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from monitor.errors import SpecmonError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# config key -> (the `listen` parameter it sets, its type). Types: "str", "path", "float", "int", "bool".
LISTEN_KEYS: dict[str, tuple[str, str]] = {
    "device": ("device", "str"),
    "input": ("input_file", "path"),
    "realtime": ("realtime", "bool"),
    "csv": ("csv_path", "path"),
    "stride": ("stride", "float"),
    "threshold": ("threshold", "float"),
    "duration": ("duration", "float"),
    "model": ("model", "path"),
    "headless": ("headless", "bool"),
    "record": ("record", "path"),
    "rate": ("rate", "int"),
    "vad_db": ("vad_db", "float"),
    "min_voiced": ("min_voiced", "float"),
}
MQTT_KEYS: dict[str, tuple[str | None, str]] = {
    "url": ("mqtt", "str"),
    "ca": ("mqtt_ca", "path"),
    "device_id": ("device_id", "str"),
    "ha_discovery": ("ha_discovery", "bool"),
    "queue": ("mqtt_queue", "path"),
    "queue_days": ("mqtt_queue_days", "float"),
    "username": (None, "str"),  # credentials: not command-line options
    "password": (None, "str"),
}
# [mqtt] keys `specmon collect` uses (the others are the publishing side's).
COLLECT_MQTT_KEYS = ("url", "ca")
COLLECT_KEYS: dict[str, tuple[str, str]] = {
    "db": ("db", "str"),
    "client_id": ("client_id", "str"),
    "stats_every": ("stats_every", "float"),
}
SECTIONS = {"listen": LISTEN_KEYS, "mqtt": MQTT_KEYS, "collect": COLLECT_KEYS}
_TYPE_NAMES = {"str": "a string", "path": "a path (string)", "float": "a number", "int": "an integer",
               "bool": "true or false"}


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "specmon" / "config.toml"


@dataclass
class Config:
    path: Path | None = None
    defaults: dict[str, object] = field(default_factory=dict)  # listen parameter name -> value
    username: str | None = None
    password: str | None = None
    warnings: list[str] = field(default_factory=list)
    mqtt: dict[str, object] = field(default_factory=dict)  # [mqtt] key -> value (credentials aside)
    collect_defaults: dict[str, object] = field(default_factory=dict)  # collect parameter name -> value

    def for_collect(self) -> dict[str, object]:
        """`specmon collect`'s option defaults: [collect], and the broker and CA from [mqtt]."""
        out = {MQTT_KEYS[k][0]: self.mqtt[k] for k in COLLECT_MQTT_KEYS if k in self.mqtt}
        return {**out, **self.collect_defaults}


def _toml_type(v: object) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return "an array"
    return type(v).__name__


def _check(path: Path, key: str, kind: str, v: object) -> object:
    ok = {
        "str": isinstance(v, str),
        "path": isinstance(v, str),
        "float": isinstance(v, (int, float)) and not isinstance(v, bool),
        "int": isinstance(v, int) and not isinstance(v, bool),
        "bool": isinstance(v, bool),
    }[kind]
    if not ok:
        raise SpecmonError(f"{path}: {key} must be {_TYPE_NAMES[kind]}, not {_toml_type(v)} ({v!r})")
    if kind == "path":
        return str(Path(v).expanduser())
    if kind == "float":
        return float(v)
    return v


def load(path: Path, *, required: bool = True,
         listen_keys: dict[str, tuple[str, str]] | None = None) -> Config:
    """Read and check a config file. A missing file is an error only when required (--config).
    listen_keys: the [listen] keys (default LISTEN_KEYS; the CLI passes the command's own options)."""
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise SpecmonError(f"--config {path}: no such file") from None
        return Config()
    except OSError as e:
        raise SpecmonError(f"{path}: cannot read the config file ({e.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SpecmonError(f"{path}: not a text file") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecmonError(f"{path}: not valid TOML ({e})") from None
    cfg = Config(path=path)
    sections = {**SECTIONS, "listen": listen_keys or LISTEN_KEYS}
    for section, value in data.items():
        keys = sections.get(section)
        if keys is None:
            raise SpecmonError(f"{path}: unknown key '{section}' (sections: "
                               f"{', '.join('[' + s + ']' for s in sections)})")
        if not isinstance(value, dict):
            raise SpecmonError(f"{path}: {section} must be a table ([{section}]), not {_toml_type(value)}")
        for key, v in value.items():
            full = f"{section}.{key}"
            if key not in keys:
                raise SpecmonError(f"{path}: unknown key '{full}' (known: {', '.join(keys)})")
            param, kind = keys[key]
            v = _check(path, full, kind, v)
            if section == "collect":
                cfg.collect_defaults[param] = v
            elif param is not None:
                cfg.defaults[param] = v
                if section == "mqtt":
                    cfg.mqtt[key] = v
            elif key == "username":
                cfg.username = v
            else:
                cfg.password = v
    db = str(cfg.collect_defaults.get("db", ""))
    if cfg.password is not None or cfg.username is not None or _url_has_password(db):
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = 0
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            cfg.warnings.append(f"{path} holds {'MQTT ' if cfg.password or cfg.username else ''}"
                                f"credentials and other users can read it (chmod 600 {path})")
    return cfg


def _url_has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        return "://" in url and urlsplit(url).password is not None
    except ValueError:
        return False
