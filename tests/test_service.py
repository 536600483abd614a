"""The systemd service: the unit file (checked by systemd-analyze where installed), the watchdog's
sd_notify datagrams from a real `specmon listen`, and --wait-device with a sound server that
appears late (a private PulseAudio daemon started after specmon)."""

from __future__ import annotations

import configparser
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from live_support import REPO, SPECMON, model_for_tests, run_specmon

from monitor.sdnotify import Notifier

UNIT = REPO / "scripts" / "specmon-listen.service"
INSTALLED = "%h/specmon/.venv/bin/specmon"  # the README's Pi install: ~/specmon, its .venv


def parse_unit(path: Path) -> configparser.ConfigParser:
    """systemd unit syntax is close enough to INI for these checks (no repeated keys used)."""
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # keys are case-sensitive
    cp.read_string(path.read_text())
    return cp


def test_unit_restarts_always_with_watchdog_and_waits_for_the_device() -> None:
    u = parse_unit(UNIT)
    assert set(u.sections()) == {"Unit", "Service", "Install"}
    svc = u["Service"]
    cmd = svc["ExecStart"].split()
    assert cmd[0] == INSTALLED and cmd[1] == "listen"
    assert "--wait-device" in cmd and cmd[cmd.index("--wait-device") + 1] == "forever"
    assert "--headless" in cmd and "--csv-dir" in cmd
    assert svc["Restart"] == "always" and "RestartPreventExitStatus" not in svc
    assert int(svc["WatchdogSec"]) > 0 and svc["NotifyAccess"] == "main"
    assert u["Unit"]["StartLimitIntervalSec"] == "0"
    # The README installs exactly there.
    readme = (REPO / "README.md").read_text()
    assert "git clone" in readme and "~/specmon" in readme and "scripts/setup.sh" in readme


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        print("systemd-analyze not installed: the unit was checked by the INI parser test only")
        return
    home = tmp_path / "home"
    (home / "specmon" / ".venv" / "bin").mkdir(parents=True)
    (home / "specmon" / ".venv" / "bin" / "specmon").symlink_to(REPO / ".venv" / "bin" / "specmon")
    rt = tmp_path / "run"
    rt.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(rt)}
    for mode in ([], ["--user"]):
        r = subprocess.run([tool, *mode, "verify", str(UNIT)], capture_output=True, text=True,
                           env=env, timeout=60)
        assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", (mode, r)
    # ... and it does catch mistakes: a misplaced key, a missing executable.
    bad = tmp_path / "specmon-listen.service"
    bad.write_text(UNIT.read_text().replace("Restart=always", "Restart=always\nBogusKey=1")
                   .replace(INSTALLED, "%h/nowhere/specmon"))
    r = subprocess.run([tool, "verify", str(bad)], capture_output=True, text=True, env=env,
                       timeout=60)
    assert "BogusKey" in r.stderr and "not executable" in r.stderr


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)

    def messages(self, until: float) -> list[str]:
        out = []
        while time.monotonic() < until:
            try:
                out.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return out


def test_notifier_sends_datagrams(tmp_path: Path) -> None:
    s = NotifySocket(tmp_path / "notify")
    n = Notifier({"NOTIFY_SOCKET": str(s.path), "WATCHDOG_USEC": "400000"})
    assert n.enabled and n.every_s == 0.2
    for _ in range(5):
        n.heartbeat()
        time.sleep(0.1)
    got = s.messages(time.monotonic() + 0.3)
    assert got[0] == "READY=1" and 2 <= got.count("WATCHDOG=1") <= 4
    assert not Notifier({}).enabled  # outside systemd: nothing to do
    Notifier({}).heartbeat()


def test_listen_pings_the_watchdog(tmp_path: Path) -> None:
    model = model_for_tests(tmp_path)
    s = NotifySocket(tmp_path / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(s.path), "WATCHDOG_USEC": "2000000"}
    proc = subprocess.Popen([*SPECMON, "listen", "--input", str(REPO / "scripts" / "sample.flac"),
                             "--headless", "--duration", "4", "--model", str(model),
                             "--csv", str(tmp_path / "l.csv")], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = s.messages(time.monotonic() + 12)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert got and got[0] == "READY=1" and got.count("WATCHDOG=1") >= 3, got


def test_wait_device_bad_value_and_timeout(tmp_path: Path) -> None:
    r = run_specmon(["listen", "--headless", "--wait-device", "soon"])
    assert r.returncode == 2 and r.stderr.count("specmon: error: --wait-device 'soon'") == 1
    env = {**os.environ, "PULSE_SERVER": "unix:/nonexistent/specmon"}
    r = run_specmon(["listen", "--headless", "--wait-device", "2", "--csv",
                     str(tmp_path / "x.csv"), "--model", str(model_for_tests(tmp_path))], env=env)
    assert r.returncode == 2 and "waiting for the input device" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("specmon: error: no microphone")
    assert "Traceback" not in r.stderr and not (tmp_path / "x.csv").exists()


def test_wait_device_until_the_sound_server_appears(tmp_path: Path) -> None:
    """specmon starts while no sound server runs, waits, and starts listening once one appears."""
    if shutil.which("pulseaudio") is None:
        pytest.fail("pulseaudio not installed (scripts/setup_audio.sh installs it)")
    rt = tmp_path / "pulse"
    rt.mkdir(mode=0o700)
    sock = rt / "native"
    env = {**os.environ, "PULSE_SERVER": f"unix:{sock}", "PULSE_RUNTIME_PATH": str(rt),
           "XDG_RUNTIME_DIR": str(rt), "HOME": str(tmp_path)}
    csv = tmp_path / "late.csv"
    proc = subprocess.Popen([*SPECMON, "listen", "--headless", "--device", "pulse",
                             "--wait-device", "forever", "--duration", "6", "--csv", str(csv),
                             "--model", str(model_for_tests(tmp_path))],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        time.sleep(3)
        assert proc.poll() is None, proc.communicate()
        subprocess.run(["pulseaudio", "-n", "--daemonize=yes", "--system=no", "--exit-idle-time=-1",
                        "--load=module-null-sink sink_name=late rate=48000",
                        f"--load=module-native-protocol-unix socket={sock}"],
                       env=env, capture_output=True, timeout=30)
        subprocess.run(["pactl", "set-default-source", "late.monitor"], env=env, timeout=10)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True, timeout=30)
    assert proc.returncode == 0, err
    assert "waiting for the input device" in err and "Traceback" not in err
    assert "--duration 6 s reached" in out and csv.read_text().startswith("time_utc,")
