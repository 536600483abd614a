"""Command-line layer for MQTT and the config file: `listen`'s extra options, the sink they make, and
the `specmon collect` command. Wording lives here; monitor.mqtt_sink and monitor.collect only report."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from monitor import config as config_file
from monitor.cli_common import fail
from monitor.errors import SpecmonError

_loaded = [config_file.Config()]  # set by the --config callback


def listen_keys(params) -> dict[str, tuple[str, str]]:
    """[listen] config keys from the command's own options (so every option, including ones added
    later, can be set): key = the long option without dashes ('--vad-db' -> 'vad_db')."""
    mqtt_params = {param for param, _kind in config_file.MQTT_KEYS.values() if param}
    keys = {}
    for p in params:  # click parameters (typer bundles its own click: duck-typed here)
        if getattr(p, "param_type_name", "") != "option" or p.name in mqtt_params or p.name == "config":
            continue
        longs = [o for o in p.opts if o.startswith("--")]
        if not longs or p.name == "help":
            continue
        kind = _kind(p)
        keys[longs[0][2:].replace("-", "_")] = (p.name, kind)
    return keys


def _kind(p) -> str:
    """The config type of a parameter: from typer's annotation, else from click's type name."""
    ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
    if ann is not None:
        return {bool: "bool", float: "float", int: "int", Path: "path"}.get(ann, "str")
    tname = getattr(getattr(p, "type", None), "name", "")
    if getattr(p, "is_flag", False) or tname == "boolean":
        return "bool"
    if tname.startswith(("float", "integer")):
        return "float" if tname.startswith("float") else "int"
    return "path" if tname in ("path", "file") else "str"


def _load_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """Eager --config callback: the file's values become the defaults of the other options, so
    anything given on the command line still wins."""
    if ctx.resilient_parsing:
        return value
    path = value if value is not None else config_file.default_path()
    try:
        cfg = config_file.load(path, required=value is not None, listen_keys=listen_keys(ctx.command.params))
    except SpecmonError as e:
        fail(str(e))
    for w in cfg.warnings:
        typer.echo(f"specmon: warning: {w}", err=True)
    ctx.default_map = {**(ctx.default_map or {}), **cfg.defaults}
    _loaded[0] = cfg
    return value


def _load_collect_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """Eager --config callback of `specmon collect`: [collect] and [mqtt] (broker, CA, credentials)
    become its defaults; [listen] is checked against listen's options, as `listen` would."""
    if ctx.resilient_parsing:
        return value
    path = value if value is not None else config_file.default_path()
    try:
        cfg = config_file.load(path, required=value is not None, listen_keys=listen_keys(_listen_params(ctx)))
    except SpecmonError as e:
        fail(str(e))
    for w in cfg.warnings:
        typer.echo(f"specmon: warning: {w}", err=True)
    ctx.default_map = {**(ctx.default_map or {}), **cfg.for_collect()}
    _loaded[0] = cfg
    return value


def _listen_params(ctx: typer.Context) -> list:
    """The `specmon listen` command's parameters (from the app it belongs to, else built here)."""
    listen = getattr(ctx.find_root().command, "commands", {}).get("listen")
    if listen is None:
        from typer.main import get_command

        from monitor import live_cli

        one = typer.Typer(add_completion=False)
        one.command()(live_cli.listen)
        listen = get_command(one)
    return listen.params


def loaded_config() -> config_file.Config:
    """The config file read for this command (one command per process), or an empty one."""
    return _loaded[0]


CONFIG = typer.Option(None, "--config", is_eager=True, callback=_load_config,
                      help="TOML file with listen and MQTT options (default: "
                      "~/.config/specmon/config.toml if it exists); command-line options override it.")
MQTT = typer.Option(None, "--mqtt", help="Publish each window to this broker: mqtt://host:1883 or "
                    "mqtts://host:8883 (TLS, verified). Credentials: SPECMON_MQTT_USER / "
                    "SPECMON_MQTT_PASSWORD or the config file, never the command line.")
MQTT_CA = typer.Option(None, "--mqtt-ca", help="CA certificate (PEM) for mqtts:// (default: the "
                       "system's).")
DEVICE_ID = typer.Option(None, "--device-id", help="Device id in the MQTT topics (default: the host "
                         "name).")
HA_DISCOVERY = typer.Option(False, "--ha-discovery", help="Publish Home Assistant MQTT discovery "
                            "configs (smoothed score, negative share last hour, speech today, status).")
MQTT_QUEUE = typer.Option(None, "--mqtt-queue", help="On-disk queue for messages the broker has not "
                          "acknowledged (default: ~/.local/state/specmon/mqtt-queue-<device>.sqlite).")
MQTT_QUEUE_DAYS = typer.Option(7.0, "--mqtt-queue-days", help="Drop queued messages older than this "
                               "many days.")


def listen_sink(url: str | None, *, ca: Path | None, device_id: str | None, ha_discovery: bool,
                queue: Path | None, queue_days: float, threshold: float, plain: bool):
    """The MQTT sink for `specmon listen`, or None without --mqtt. Raises SpecmonError.
    plain (headless): connection news also goes to stderr, one line each."""
    if url is None:
        return None
    from monitor.mqtt_sink import MqttSink, credentials_from_env

    cfg = loaded_config()
    user, password = credentials_from_env(cfg.username, cfg.password)
    return MqttSink(url, device_id, ca_file=ca, username=user, password=password, queue_path=queue,
                    queue_days=queue_days, ha_discovery=ha_discovery, threshold=threshold,
                    say=_say if plain else None)


def _say(text: str) -> None:
    print(f"specmon: {text}", file=sys.stderr, flush=True)


def collect(
    config: Path = typer.Option(None, "--config", is_eager=True, callback=_load_collect_config,
                                help="TOML file: [collect] options, and [mqtt] url, ca and credentials "
                                "(default: ~/.config/specmon/config.toml if it exists); command-line "
                                "options override it."),
    mqtt: str = typer.Option(..., "--mqtt", help="Broker: mqtt://host:1883 or mqtts://host:8883. "
                             "Credentials: SPECMON_MQTT_USER / SPECMON_MQTT_PASSWORD or the config file."),
    db: str = typer.Option(..., "--db", help="SQLite file, or postgresql://user@host/dbname."),
    mqtt_ca: Path = MQTT_CA,
    client_id: str = typer.Option(None, "--client-id", help="MQTT client id; the broker keeps this "
                                  "session's messages while the collector is away (default: "
                                  "specmon-collect-<host>)."),
    duration: float = typer.Option(None, "--duration", min=0.1, help="Stop after this many seconds."),
    stats_every: float = typer.Option(60.0, "--stats-every", min=0.1, help="Seconds between counter "
                                      "lines."),
) -> None:
    """Store every device's windows and status from specmon/+/... topics in SQLite or PostgreSQL.

    Idempotent: a message delivered twice makes one row. Malformed, oversized or hostile messages are
    rejected and counted; the collector goes on.
    """
    from monitor.collect import Collector
    from monitor.mqtt_sink import credentials_from_env
    from monitor.store import open_store

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        store = open_store(db)
        try:
            cfg = loaded_config()
            user, password = credentials_from_env(cfg.username, cfg.password)
            col = Collector(mqtt, store, ca_file=mqtt_ca, username=user, password=password,
                            client_id=client_id, log=say)
            col.connect()
            stats = col.run(duration, stats_every)
        finally:
            store.close()
    except SpecmonError as e:
        fail(str(e))
        return
    typer.echo(stats.line())
