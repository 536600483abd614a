"""Wall-clock time for stream offsets, and audio lost without a word from the driver.

offset_s counts samples (lost ones included) and is monotonic by construction; time_utc is the system
time of an offset. Counting samples from a start time drifts with the microphone's crystal (tens of
ppm: seconds a day), and on a Raspberry Pi without a real-time clock the system time itself can jump
when NTP syncs. So each time audio is read, the clock compares the newest sample's offset with two
clocks:

- the monotonic clock (never stepped): if the stream falls behind it by more than the tolerance
  within one check period, audio went missing that nobody reported (e.g. a sound server dropping a
  stalled client's buffers). That is reported as missing audio, and the caller moves the stream on by
  it. A slow difference is the crystal's drift and is absorbed.
- the system clock (UTC): if time_utc differs from it by more than the tolerance, time_utc is
  re-anchored (a step). A large step (NTP sync, clock set by hand) is taken at once.

Delivery latency only ever makes audio look older, so differences are taken as the smallest over a
check period (CLOCK_CHECK_S seconds of audio).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

CLOCK_TOLERANCE_S = 0.5  # well above callback jitter (tens of ms); ~3 h of a 50-ppm crystal's drift
CLOCK_CHECK_S = 5.0  # seconds of audio over which the smallest difference is taken
BIG_STEP = 10  # a system-clock difference this many tolerances wide is stepped at once


def utc_text(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Observation:
    missing_s: float = 0.0  # audio lost before the newest sample, unreported; add it to offsets
    step_s: float = 0.0  # time_utc re-anchored by this much (positive: the system clock is ahead)


class StreamClock:
    """Maps stream offsets (s) to UTC. A given start_utc is fixed: no re-anchoring, no checks."""

    def __init__(self, start_utc: datetime | None = None, tolerance_s: float = CLOCK_TOLERANCE_S,
                 check_s: float = CLOCK_CHECK_S) -> None:
        self.tolerance_s = tolerance_s
        self.check_s = check_s
        self.fixed = start_utc is not None
        self._anchor_s = 0.0
        self._anchor_utc: datetime | None = start_utc
        self._mono_s = 0.0  # (offset, monotonic time) at the first observation
        self._mono_t = 0.0
        self._base: float | None = None  # the stream's accepted lag behind the monotonic clock
        self._period_start = 0.0
        self._min_lag = math.inf
        self._min_wall = math.inf
        self._started = False

    def utc(self, offset_s: float) -> datetime:
        if self._anchor_utc is None:  # no audio seen yet: the best guess is now
            return datetime.now(timezone.utc)
        return self._anchor_utc + timedelta(seconds=offset_s - self._anchor_s)

    def observe(self, offset_s: float, now: datetime, mono: float, paced: bool = True
                ) -> Observation:
        """The newest sample read is at offset_s; the system time is now, the monotonic time mono.
        Unpaced sources (a file read as fast as possible) only anchor once."""
        obs = Observation()
        if self._anchor_utc is None:
            self._anchor_s, self._anchor_utc = offset_s, now
        if self.fixed or not paced:
            return obs
        if not self._started:
            self._started = True
            self._mono_s, self._mono_t = offset_s, mono
            self._period_start = offset_s
            return obs
        lag = (mono - self._mono_t) - (offset_s - self._mono_s)  # stream behind the monotonic clock
        wall = (now - self.utc(offset_s)).total_seconds()  # system clock ahead of time_utc
        self._min_lag = min(self._min_lag, lag)
        self._min_wall = min(self._min_wall, wall)
        rel = lag - (self._base or 0.0)
        if abs(wall - rel) > BIG_STEP * self.tolerance_s:  # the system clock jumped: step now
            obs.step_s = wall - rel
            self._anchor_utc += timedelta(seconds=obs.step_s)
            self._min_wall = math.inf
            return obs
        if offset_s - self._period_start < self.check_s:
            return obs
        min_lag, min_wall = self._min_lag, self._min_wall
        self._period_start = offset_s
        self._min_lag = self._min_wall = math.inf
        if self._base is None:
            self._base = min_lag
        elif min_lag - self._base > self.tolerance_s:
            obs.missing_s = min_lag - self._base  # the caller adds it to the offsets from now on
            min_wall -= obs.missing_s
        else:
            self._base = min_lag  # drift (or jitter): follow it
        if abs(min_wall) > self.tolerance_s:
            obs.step_s = min_wall
            self._anchor_utc += timedelta(seconds=min_wall)
        return obs
