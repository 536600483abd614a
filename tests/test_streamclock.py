"""time_utc against the system clock: drift is followed in small logged steps, an NTP step at once,
and audio lost without a report is found against the monotonic clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from monitor.streamclock import StreamClock

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def run(clock: StreamClock, seconds: float, rate_ppm: float = 0.0, wall_jump: tuple = (),
        lost: tuple = (), read_every: float = 0.25) -> tuple[list, list]:
    """Feed `seconds` of audio read every `read_every` s of real time. The microphone's crystal
    runs rate_ppm fast (negative: slow); wall_jump=(at, s) steps the system clock; lost=(at, s)
    loses s seconds of audio at real time `at` without a report. Returns (steps, missing)."""
    steps, missing = [], []
    offset, added = 0.0, 0.0
    t = 0.0
    while t < seconds:
        t += read_every
        offset += read_every * (1 + rate_ppm * 1e-6)
        if lost and lost[0] <= t < lost[0] + read_every:
            offset -= lost[1]  # the stream did not get those samples
        jitter = 0.03 * ((int(t * 4) * 7) % 3)  # delivery latency, 0..60 ms: read a bit later
        jump = wall_jump[1] if wall_jump and t >= wall_jump[0] else 0.0
        obs = clock.observe(offset + added, T0 + timedelta(seconds=t + jitter + jump), t + jitter)
        if obs.missing_s:
            missing.append((t, obs.missing_s))
            added += obs.missing_s  # the pipeline moves the stream on by it
        if obs.step_s:
            steps.append((t, obs.step_s))
    return steps, missing


def test_no_drift_no_steps() -> None:
    steps, missing = run(StreamClock(), 3600)
    assert steps == [] and missing == []


def test_drift_is_followed_in_small_steps() -> None:
    clock = StreamClock()
    steps, missing = run(clock, 6 * 3600, rate_ppm=-100)  # slow crystal: 2.16 s in 6 h
    assert missing == []  # drift is not lost audio
    assert 3 <= len(steps) <= 5 and all(0.5 < s < 0.6 for _, s in steps)
    # after the steps, time_utc is within the tolerance of the system clock
    offset = 6 * 3600 * (1 - 100e-6)
    assert abs((clock.utc(offset) - (T0 + timedelta(hours=6))).total_seconds()) <= 0.5


def test_ntp_step_taken_at_once() -> None:
    steps, missing = run(StreamClock(), 600, wall_jump=(100.0, 3600.0))
    assert missing == [] and len(steps) == 1
    t, s = steps[0]
    assert 100.0 <= t <= 100.5 and abs(s - 3600.0) < 0.1


def test_unreported_loss_found() -> None:
    steps, missing = run(StreamClock(), 120, lost=(50.0, 1.2))
    assert steps == []  # the loss is not mistaken for a clock step
    assert len(missing) == 1 and abs(missing[0][1] - 1.2) < 0.1 and 50 <= missing[0][0] <= 61


def test_fixed_start_never_moves() -> None:
    clock = StreamClock(start_utc=T0)
    assert clock.observe(10.0, T0 + timedelta(hours=5), 10.0).step_s == 0.0
    assert clock.utc(10.0) == T0 + timedelta(seconds=10)
