"""systemd's notify protocol without a dependency: one datagram to $NOTIFY_SOCKET per message.

Under a unit with WatchdogSec, the pipeline's status tick calls Notifier.heartbeat(); if the loop
stalls, the heartbeats stop and systemd restarts the service. Outside systemd (no NOTIFY_SOCKET)
every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):  # abstract namespace
            addr = "\0" + addr[1:]
        self.addr = addr or None
        usec = env.get("WATCHDOG_USEC", "")
        # Ping at least twice per watchdog period (as sd_watchdog_enabled advises); 1 s at most.
        self.every_s = min(1.0, int(usec) / 2e6) if usec.isdigit() and int(usec) > 0 else 1.0
        self._last = 0.0
        self._ready = False

    @property
    def enabled(self) -> bool:
        return self.addr is not None

    def send(self, message: str) -> bool:
        if self.addr is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect(self.addr)
                s.sendall(message.encode("utf-8"))
            return True
        except OSError:
            return False  # systemd gone or socket not ours: never fatal

    def heartbeat(self) -> None:
        """READY=1 once, then WATCHDOG=1 at most every every_s seconds."""
        if self.addr is None:
            return
        now = time.monotonic()
        if not self._ready:
            self._ready = self.send("READY=1")
        if now - self._last >= self.every_s:
            self._last = now
            self.send("WATCHDOG=1")
