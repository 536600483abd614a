"""The config file: every `listen` option (MQTT included) from TOML; the command line overrides it;
an unknown key or a wrong type is one line naming the key; credentials readable by others warn."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import config
from monitor.errors import SpecmonError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "scripts" / "sample.flac"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def listen(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPECMON_MQTT", "XDG_"))}
    env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "monitor.cli", "listen", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_load_maps_keys_and_checks_types(tmp_path):
    p = write(tmp_path / "c.toml", '[listen]\ncsv = "~/x.csv"\nstride = 2\nheadless = true\nrate = 48000\n'
              '[mqtt]\nurl = "mqtt://b:1883"\nha_discovery = true\nusername = "u"\npassword = "p"\n')
    c = config.load(p)
    assert c.defaults == {"csv_path": str(Path.home() / "x.csv"), "stride": 2.0, "headless": True,
                          "rate": 48000, "mqtt": "mqtt://b:1883", "ha_discovery": True}
    assert (c.username, c.password, c.warnings) == ("u", "p", [])
    cases = {
        "[listen]\nstrid = 1\n": "unknown key 'listen.strid'",
        "[mqtt]\nuser = 'x'\n": "unknown key 'mqtt.user'",
        "verbose = true\n": "unknown key 'verbose'",
        "[listen]\nstride = '1'\n": "listen.stride must be a number, not a string",
        "[listen]\nheadless = 1\n": "listen.headless must be true or false, not an integer",
        "[listen]\nrate = 1.5\n": "listen.rate must be an integer, not a number",
        "[mqtt]\nurl = 5\n": "mqtt.url must be a string, not an integer",
        "[listen]\nstride = \n": "not valid TOML",
    }
    for text, expected in cases.items():
        with pytest.raises(SpecmonError) as e:
            config.load(write(tmp_path / "bad.toml", text))
        assert expected in str(e.value) and "\n" not in str(e.value), str(e.value)
    with pytest.raises(SpecmonError, match="no such file"):
        config.load(tmp_path / "missing.toml")
    assert config.load(tmp_path / "missing.toml", required=False).defaults == {}


def test_credentials_readable_by_others_warn(tmp_path):
    text = '[mqtt]\nurl = "mqtt://b"\npassword = "p"\nusername = "u"\n'
    assert config.load(write(tmp_path / "ok.toml", text, 0o600)).warnings == []
    w = config.load(write(tmp_path / "open.toml", text, 0o644)).warnings
    assert len(w) == 1 and "other users can read it" in w[0] and "chmod 600" in w[0]
    # no credentials, no warning
    assert config.load(write(tmp_path / "plain.toml", '[mqtt]\nurl = "mqtt://b"\n', 0o644)).warnings == []


def test_listen_uses_the_config_file_and_the_command_line_wins(tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "specmon").mkdir(parents=True)
    write(home / ".config" / "specmon" / "config.toml",
          f'[listen]\ninput = "{SAMPLE}"\nrealtime = false\nheadless = true\nstride = 2.0\n'
          'csv = "from-config.csv"\nduration = 12\n')
    r = listen([], tmp_path, home)  # everything from the default config file
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "from-config.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    ends = [float(r["end_s"]) for r in rows]
    assert len(rows) == 5 and round(ends[1] - ends[0], 2) == 1.98  # stride 2 (62 hops), 12 s

    r = listen(["--stride", "1", "--csv", "cli.csv"], tmp_path, home)  # the command line overrides
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "cli.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9
    with open(tmp_path / "from-config.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 5  # untouched: --csv overrode it

    bad = write(tmp_path / "bad.toml", "[listen]\nstride = 'fast'\n")
    r = listen(["--config", str(bad)], tmp_path, home)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1
    assert lines[0].startswith("specmon: error: ") and "listen.stride must be a number" in lines[0]

    r = listen(["--config", str(tmp_path / "nope.toml")], tmp_path, home)
    assert r.returncode == 2 and "no such file" in r.stderr and len(r.stderr.strip().splitlines()) == 1

    creds = write(tmp_path / "creds.toml", f'[listen]\ninput = "{SAMPLE}"\nrealtime = false\n'
                  'headless = true\nduration = 5\ncsv = "c.csv"\n[mqtt]\nusername = "u"\npassword = "p"\n',
                  0o644)
    r = listen(["--config", str(creds)], tmp_path, home)
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warn) == 1 and "creds.toml holds MQTT credentials" in warn[0]


def test_every_listen_option_can_be_set_in_the_config_file():
    """The [listen] keys come from the command's own options: none is left out."""
    import typer
    from typer.main import get_command

    from monitor import live_cli, mqtt_cli

    app = typer.Typer(add_completion=False)
    app.command()(live_cli.listen)
    params = get_command(app).params
    keys = mqtt_cli.listen_keys(params)
    mqtt_params = {p for p, _k in config.MQTT_KEYS.values() if p}
    options = {p.name for p in params if p.name not in ("config", "help")}
    assert {p for p, _k in keys.values()} | mqtt_params == options
    assert keys["vad_db"] == ("vad_db", "float") and keys["input"] == ("input_file", "path")
    assert keys["realtime"] == ("realtime", "bool") and keys["rate"] == ("rate", "int")


def collect(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPECMON_MQTT", "XDG_"))}
    env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "monitor.cli", "collect", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


def test_collect_reads_broker_credentials_and_store_from_the_config_file(tmp_path):
    """`specmon collect` takes [mqtt] url/ca/username/password and [collect] db/client_id from the same
    file as `listen` ([listen] keys are accepted, not applied); the command line overrides it."""
    from mqtt_support import PASSWORD, USER, Mosquitto

    from monitor.store import open_store

    broker = Mosquitto(tmp_path / "broker", password=True)
    try:
        home = tmp_path / "home"
        (home / ".config" / "specmon").mkdir(parents=True)
        db = tmp_path / "fleet.sqlite"
        conf = write(home / ".config" / "specmon" / "config.toml",
                     f'[listen]\nheadless = true\nvad_db = -45\nduration = 600\n'
                     f'[mqtt]\nurl = "{broker.url}"\ndevice_id = "kitchen"\nusername = "{USER}"\n'
                     f'password = "{PASSWORD}"\n[collect]\ndb = "{db}"\nclient_id = "col-config"\n'
                     'stats_every = 0.5\n')
        r = collect(["--duration", "1.5"], home)  # broker, credentials, store: all from the file
        assert r.returncode == 0, r.stderr
        assert "0 rejected" in r.stdout and "collect: connected to 127.0.0.1" in r.stderr
        assert r.stderr.count("windows stored") >= 2  # stats_every from [collect]; duration from the CLI
        open_store(db).close()  # the store the file named was created

        other = tmp_path / "cli.sqlite"
        r = collect(["--duration", "0.5", "--db", str(other)], home)  # the command line wins
        assert r.returncode == 0 and other.exists(), r.stderr

        conf.write_text(conf.read_text().replace(PASSWORD, "wrong"))
        r = collect(["--duration", "1"], home)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "refused" in lines[0], r.stderr

        r = collect(["--duration", "1", "--mqtt", "mqtt://127.0.0.1:1"], home)  # --mqtt overrides url
        assert r.returncode == 2 and "127.0.0.1:1" in r.stderr, r.stderr

        bad = write(tmp_path / "bad.toml", "[collect]\ndatabase = 'x.sqlite'\n")
        r = collect(["--config", str(bad), "--mqtt", broker.url, "--db", str(db)], home)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
        assert "unknown key 'collect.database'" in r.stderr

        readable = write(tmp_path / "pg.toml", '[collect]\ndb = "postgresql://u:pw@127.0.0.1:1/x"\n', 0o644)
        w = config.load(readable).warnings
        assert len(w) == 1 and "holds credentials" in w[0]
        assert config.load(readable).for_collect() == {"db": "postgresql://u:pw@127.0.0.1:1/x"}
    finally:
        broker.stop()
