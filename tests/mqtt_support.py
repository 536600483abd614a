"""Real Mosquitto brokers and PostgreSQL clusters for the MQTT tests: each test starts its own on free
loopback ports, from a temporary configuration, and stops it afterwards (no system service needed)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
USER, PASSWORD = "device", "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for DNS name 'localhost' only (not '127.0.0.1')."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = (d / n for n in ("ca.key", "ca.crt", "server.key", "server.csr",
                                                 "server.crt"))

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=specmon test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", str(key),
        "-out", str(csr))
    ext = d / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost\n")
    ssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return ca, crt, key


class Mosquitto:
    """One broker: a plain listener (password file optional) and optionally a TLS listener."""

    def __init__(self, workdir: Path, *, password: bool = False, tls: bool = False,
                 extra: str = "") -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        lines = [f"user {getpass.getuser()}", "persistence true", f"persistence_location {self.dir}/",
                 "autosave_interval 1", f"log_dest file {self.dir}/mosquitto.log",
                 "per_listener_settings false", "max_queued_messages 0", "max_inflight_messages 100",
                 f"listener {self.port} 127.0.0.1"]
        if password:
            pw = self.dir / "passwd"
            subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), USER, PASSWORD], check=True,
                           capture_output=True)
            os.chmod(pw, 0o600)
            lines += [f"password_file {pw}", "allow_anonymous false"]
        else:
            lines += ["allow_anonymous true"]
        if tls:
            self.ca, crt, key = make_certs(self.dir / "certs")
            lines += [f"listener {self.tls_port} 127.0.0.1", f"certfile {crt}", f"keyfile {key}"]
        lines.append(extra)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            wait_port(self.port)
        except RuntimeError:
            self.proc.kill()
            raise RuntimeError(f"mosquitto did not start: {self.proc.stderr.read().decode()[-2000:]}"
                               ) from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: saves its persistence file
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


class PostgresCluster:
    """A throwaway PostgreSQL cluster in a temp folder (run as user 'postgres' when we are root)."""

    def __init__(self, workdir: Path) -> None:
        cands = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not cands:
            raise RuntimeError("PostgreSQL is not installed (Debian package 'postgresql')")
        self.bindir = cands[-1].parent
        self.dir = workdir
        self.data = workdir / "data"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        workdir.mkdir(parents=True, exist_ok=True)
        if self.as_user:  # workdir must be reachable by user postgres (e.g. under /tmp, not 0700)
            os.chmod(workdir.parent, 0o755)
            shutil.chown(workdir, "postgres")
            os.chmod(workdir, 0o755)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(workdir / "pg.log"), "-w", "-o",
                  f"-p {self.port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        r = subprocess.run([*self.as_user, str(self.bindir / tool), *args], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"{tool} failed: {r.stderr[-2000:]}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
