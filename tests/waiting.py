"""Polling for tests that watch a thread, a process or a broker catch up."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(cond: Callable[[], object], timeout: float, poll: float = 0.05) -> bool:
    """True as soon as cond() is true, else cond()'s truth once `timeout` seconds have passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll)
    return bool(cond())
