"""Soak: hours of audio through the real `specmon listen --fast`, with faults, every second accounted.

    python scripts/soak.py                 # 24 h of audio time (about 10 min here; needs root)
    python scripts/soak.py --minutes 20    # the short run CI does (tests/test_soak.py)

What runs: `specmon listen --input sample.flac --fast --headless --csv LOG` in a child process: the real
CLI, pipeline, scorer, CSV log, signal handlers and file system. One thing differs: its FileSource is
replaced by FaultSource (below), which loops the bundled sample (with 5 s of silence after each pass,
so no-speech windows occur) for the whole duration and injects faults on a schedule of audio time,
the way a microphone would suffer them:

- a device loss every (audio) hour: poll() raises DeviceLost; the pipeline reconnects with its real
  backoff (1 s) and measures the gap from the last delivery to the first after it (one buffer, as a
  microphone's first callback), so each gap is about a second;
- a ring overflow every hour: the ring is filled with audio (a stalled consumer), then 1.5 s more is
  written into the full ring, which drops it;
- a driver overrun every hour: 0.05 s skipped and marked as a hole, as MicSource's callback does on
  PortAudio's paInputOverflow flag;
- a clock step: for 10 s of audio the source turns real-time, so the pipeline compares its stream
  clock (hours ahead after the fast replay) with the system clock and re-anchors time_utc (the path
  an NTP step takes on a Pi that booted with a wrong clock).

This script, as the supervisor, adds the faults from outside:
- SIGHUP: the log is renamed (as logrotate does) and the child is sent SIGHUP;
- a full disk: the log lives on a small tmpfs (mounting it needs root); at the chosen moment it is
  filled with a ballast file; listen must stop with one line and whole rows; the ballast is removed
  and listen restarted on the same log for the rest of the audio (what systemd's Restart=always does).

Why a replaced class and not a hook in specmon: production code carries no test switch (no hidden
option or environment variable that could be left on in the field); the child imports monitor.source,
swaps FileSource for the subclass, then calls monitor.cli.main() exactly as the `specmon` entry point
does. Everything downstream of the source is the shipped code.

Pass: RSS growth <= 5 MB (the child's RSS over the last audio hour against the second one, in the
session that ran longest), every scheduled window accounted for (a row, scored or no-speech, or inside
a logged loss), offsets monotonic within a session, no torn rows, every injected fault reported once.
Prints a summary; exit 0 on pass, 1 on fail.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "scripts" / "sample.flac"
HEADER = ["time_utc", "offset_s", "start_s", "end_s", "score", "label", "smoothed", "rms_dbfs",
          "voiced", "latency_ms", "model_id"]
STRIDE_S = 0.992  # the default stride (31 hops)
WINDOW_S = 4.032
RING_HOLE_S = 1.5
OVERRUN_S = 0.05
EPISODE_S = 10.0  # the real-time stretch that meets the system clock
RSS_LIMIT_MB = 5.0


# --------------------------------------------------------------------------------------------------
# The child: `specmon listen` with a fault-injecting source
# --------------------------------------------------------------------------------------------------
def run_child(plan_json: str, listen_args: list[str]) -> None:
    import numpy as np
    import soundfile as sf

    import monitor.source as source
    from monitor.ringbuffer import RingBuffer

    plan = json.loads(plan_json)

    class FaultSource(source.FileSource):
        """Loops the file (plus silence) for plan['seconds'] and injects plan['faults'], each a
        (seconds of audio from the start, kind)."""

        def __init__(self, path, realtime: bool = True) -> None:
            super().__init__(path, realtime=False)
            x, _ = sf.read(str(self.path), dtype="float32", always_2d=True)
            self._loop = np.concatenate([x.mean(axis=1), np.zeros(5 * self.rate, np.float32)])
            self._total = int(round(plan["seconds"] * self.rate))
            self._faults = sorted((int(round(t * self.rate)), k) for t, k in plan["faults"])
            self._made = 0  # file samples consumed (delivered or dropped)
            self._episode_end = -1
            self._opens = 0
            self._done: list[tuple[float, str]] = []  # (seconds of audio, kind) injected
            self._first = False  # just reconnected: the first delivery is one small buffer
            self.last_data = 0.0  # monotonic time of the last delivery (as MicSource.last_data)

        def _next_block(self, n: int) -> np.ndarray:
            n = min(n, self._total - self._made)
            i = self._made % self._loop.shape[0]
            out = self._loop[i : i + n]
            if out.shape[0] < n:  # wrap around the loop
                out = np.concatenate([out, self._loop[: n - out.shape[0]]])
            self._made += out.shape[0]
            return out

        def _fill(self, n: int) -> None:
            while n > 0:
                x = self._next_block(n)
                if x.shape[0] == 0:
                    return
                self.ring.write(x)
                self._pos += x.shape[0]
                self.last_data = time.monotonic()
                n -= x.shape[0]

        def open(self) -> None:  # the first open, or a reconnect: a fresh ring, as MicSource
            self._opens += 1
            self._first = self._opens > 1
            self.ring = RingBuffer(int(source.RING_SECONDS * self.rate))
            self._t0 = time.monotonic() - self._pos / self.rate

        def _inject(self, kind: str) -> None:
            if kind == "lose":
                raise source.DeviceLost("soak: input unplugged")
            if kind == "overflow":  # a stalled consumer: the ring fills with audio, then drops
                self._fill(self.ring.free())
                lost = int(RING_HOLE_S * self.rate)
                dropped = 0
                while dropped < lost:
                    x = self._next_block(lost - dropped)
                    if x.shape[0] == 0:
                        break
                    assert self.ring.write(x) == 0
                    dropped += x.shape[0]
                self._pos += dropped
            elif kind == "overrun":  # the driver lost samples and said so
                n = int(OVERRUN_S * self.rate)
                self._next_block(n)
                self._pos += n
                self.overflows += 1
                self.ring.mark_hole(n)
            elif kind == "clock":
                self.realtime = self.paced = True
                self._t0 = time.monotonic() - self._pos / self.rate
                self._episode_end = self._made + int(EPISODE_S * self.rate)

        def poll(self) -> None:
            while self._faults and self._made >= self._faults[0][0]:
                _, kind = self._faults.pop(0)
                self._done.append((self._made / self.rate, kind))
                self._inject(kind)  # a device loss raises: the next poll is after the reconnect
            if self.realtime and self._made >= self._episode_end:
                self.realtime = self.paced = False
            room = self.ring.free()
            if self.realtime:
                room = min(room, int((time.monotonic() - self._t0) * self.rate) - self._pos)
            nxt = self._faults[0][0] if self._faults else self._total
            if self.realtime:
                nxt = min(nxt, self._episode_end)
            if self._first:  # a microphone's first callback after a reconnect: one buffer, so
                room = min(room, source.FRAMES_PER_BUFFER)  # the gap ends when it arrives
                self._first = False
            self._fill(min(room, nxt - self._made))

        def finished(self) -> bool:
            return self._made >= self._total

        def close(self) -> None:  # also on a reconnect: keep the loop, report progress
            Path(plan["state"]).write_text(json.dumps({"made_s": self._made / self.rate,
                                                       "opens": self._opens,
                                                       "injected": self._done}))

    source.FileSource = FaultSource
    from monitor.cli import main

    main(["listen", "--input", str(SAMPLE), "--fast", "--headless", *listen_args])


# --------------------------------------------------------------------------------------------------
# The supervisor
# --------------------------------------------------------------------------------------------------
@dataclass
class Session:
    seconds: float  # audio asked for
    faults: list[tuple[float, str]]
    code: int = 0
    made_s: float = 0.0  # audio the source delivered or dropped
    rss: list[tuple[float, int]] = field(default_factory=list)  # (offset_s, RSS kB)
    wall_s: float = 0.0
    stderr: str = ""
    stdout: str = ""
    files: list[Path] = field(default_factory=list)  # the log files its rows went to, in order
    injected: list[tuple[float, str]] = field(default_factory=list)  # (audio s, kind) done


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def last_offset(path: Path) -> float:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 400))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return 0.0
    for line in reversed(lines):
        parts = line.split(",")
        if len(parts) == len(HEADER):
            try:
                return float(parts[1])
            except ValueError:
                continue
    return 0.0


def fill_disk(path: Path) -> None:
    """Fill the file system to the last byte (unbuffered writes, smaller and smaller)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 16, 4096, 512, 64, 1):
            try:
                while os.write(fd, b"\0" * size) == size:
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)


def run_session(s: Session, log: Path, work: Path, model: str | None, actions: list) -> Session:
    """Run one `specmon listen`; actions: [(offset_s, callable(proc))] done when the log reaches
    that offset."""
    state = work / "state.json"
    plan = json.dumps({"seconds": s.seconds, "faults": s.faults, "state": str(state)})
    args = [sys.executable, str(Path(__file__).resolve()), "--child", plan, "--csv", str(log)]
    if model:
        args += ["--model", model]
    n = len(list(work.glob("stdout-*.txt"))) + 1
    out_path, err_path = work / f"stdout-{n}.txt", work / f"stderr-{n}.txt"
    t0 = time.monotonic()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=err, env={**os.environ,
                                "PYTHONPATH": str(REPO)})
        pending = sorted(actions, key=lambda a: a[0])
        s.files = [log]
        while proc.poll() is None:
            off = last_offset(log)
            kb = rss_kb(proc.pid)
            if kb and off > 0:
                s.rss.append((off, kb))
            while pending and off >= pending[0][0]:
                pending.pop(0)[1](proc, s)
            time.sleep(0.05)
    s.code = proc.returncode
    s.wall_s = time.monotonic() - t0
    s.stdout, s.stderr = out_path.read_text(), err_path.read_text()
    st = json.loads(state.read_text()) if state.is_file() else {}
    s.made_s = st.get("made_s", 0.0)
    s.injected = [tuple(f) for f in st.get("injected", [])]
    return s


LOST = re.compile(r"^specmon: audio lost: ([\d.]+) s at ([\d.]+) s \((.*)\)$")
BACK = re.compile(r"^specmon: audio input back after ([\d.]+) s \(gap at ([\d.]+) s\)$")
STEP = re.compile(r"^specmon: clock: time_utc re-anchored by ([-+\d.]+) s")


def losses(stderr: str) -> list[tuple[float, float, str]]:
    """(offset_s, length_s, kind) of every logged loss, in order."""
    out = []
    for line in stderr.splitlines():
        if m := LOST.match(line):
            out.append((float(m.group(2)), float(m.group(1)), "driver" if "driver" in m.group(3)
                        else "ring" if "buffer" in m.group(3) else "clock"))
        elif m := BACK.match(line):
            out.append((float(m.group(2)), float(m.group(1)), "device"))
    return out


def read_rows(files: list[Path], problems: list[str]) -> list[dict]:
    """All rows of a session's files in order; each file must be a header and whole rows."""
    rows = []
    for f in files:
        data = f.read_bytes()
        if not data.endswith(b"\n"):
            problems.append(f"{f.name}: does not end with a whole row")
        text = data.decode("utf-8", "replace")
        lines = text.splitlines()
        if not lines or lines[0].split(",") != HEADER:
            problems.append(f"{f.name}: no header")
        if text.count("time_utc,") != 1:
            problems.append(f"{f.name}: {text.count('time_utc,')} headers")
        for i, r in enumerate(csv.reader(lines[1:]), start=2):
            if len(r) != len(HEADER) or r[5] not in ("negative", "neutral", "no-speech") \
                    or (r[4] == "") != (r[5] == "no-speech"):
                problems.append(f"{f.name}:{i}: torn or malformed row {r!r}"[:200])
                continue
            rows.append(dict(zip(HEADER, r, strict=True)))
    return rows


def account(rows: list[dict], lost: list[tuple[float, float, str]], problems: list[str]) -> int:
    """Walk the rows: each step is one stride, or a jump over logged losses that leaves no window
    out (the audio before a loss ends less than a stride after the last window; a stretch between
    two losses too short for a window has none). Returns the windows accounted for."""
    tol = 0.011  # offsets are logged with 2 decimals
    lost = sorted(lost)
    li = 0
    if rows:  # losses before the first window (a fault as a session starts): it starts after them
        at, first_start = 0.0, float(rows[0]["start_s"])
        while li < len(lost) and lost[li][0] < first_start - tol:
            o, n, _ = lost[li]
            if o > at + WINDOW_S + tol:
                problems.append(f"windows missing between {at:.3f} and the loss at {o} s")
            at = o + n
            li += 1
        if li and abs(at - first_start) > 2 * tol:
            problems.append(f"the loss ends at {at:.3f} s but the first window starts at "
                            f"{first_start:.3f}")
    for a, b in zip(rows, rows[1:], strict=False):
        s0, e0, s1 = float(a["start_s"]), float(a["end_s"]), float(b["start_s"])
        if float(b["end_s"]) <= e0:
            problems.append(f"offset not monotonic at {e0}")
            return 0
        if abs(s1 - s0 - STRIDE_S) < 2.5e-3:  # 3 decimals in the log
            if li < len(lost) and lost[li][0] < e0 - tol:
                problems.append(f"a loss at {lost[li][0]} s lies inside the window ending {e0}")
                li += 1
            continue
        at = e0  # walk the losses between the two rows
        first = True
        while li < len(lost) and lost[li][0] <= s1 + tol:
            o, n, _ = lost[li]
            room = STRIDE_S if first else WINDOW_S  # room left for no window
            if not (at - tol <= o < at + room + tol):
                problems.append(f"windows missing between {at:.3f} and the loss at {o} s")
            at, first = o + n, False
            li += 1
        if first:
            problems.append(f"unexplained jump {e0:.3f} -> {s1:.3f} s (a window lost?)")
        elif abs(at - s1) > 2 * tol:
            problems.append(f"the loss ends at {at:.3f} s but the next window starts at {s1:.3f}")
    return len(rows)


def schedule(seconds: float) -> tuple[list[tuple[float, str]], float, float, float]:
    """24 of each fault, one per 'hour' (1/24 of the run); the clock step at 40 %; SIGHUP at 30 %
    and the full disk at 80 % (done by the supervisor)."""
    hour = seconds / 24
    faults = []
    for k in range(24):
        faults += [((k + 0.25) * hour, "overflow"), ((k + 0.5) * hour, "lose"),
                   ((k + 0.75) * hour, "overrun")]
    faults.append((0.4 * seconds + 0.1 * hour, "clock"))
    return faults, hour, 0.3 * seconds, 0.8 * seconds


def rss_growth(s: Session, hour: float) -> tuple[float, float, float]:
    """(RSS in the second audio hour, in the last one, growth) in MB; max within each."""
    second = [kb for off, kb in s.rss if hour <= off < 2 * hour]
    end = max(off for off, _ in s.rss)
    last = [kb for off, kb in s.rss if off >= end - hour]
    if not second or not last:
        return 0.0, 0.0, float("nan")
    a, b = max(second) / 1024, max(last) / 1024
    return a, b, b - a


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        run_child(argv[1], argv[2:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--hours", type=float, default=24.0, help="audio time to stream (default 24)")
    g.add_argument("--minutes", type=float, help="audio time in minutes (the short CI run: 20)")
    ap.add_argument("--model", help="model .tflite (default: the bundled one)")
    ap.add_argument("--work", type=Path, help="folder for the log mount and outputs (default: a temp dir)")
    a = ap.parse_args(argv)
    seconds = a.minutes * 60 if a.minutes is not None else a.hours * 3600
    if os.geteuid() != 0:
        print("soak: needs root to mount a small tmpfs for the full-disk episode", file=sys.stderr)
        return 2
    work = a.work or Path(tempfile.mkdtemp(prefix="specmon-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    disk = work / "disk"
    disk.mkdir(exist_ok=True)
    size_mb = max(4, int(seconds / STRIDE_S * 140 / 1e6 * 2) + 2)  # room for every row, twice
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(disk)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"soak: cannot mount a tmpfs: {r.stderr.strip()}", file=sys.stderr)
        return 2
    try:
        return soak(seconds, work, disk, a.model)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def soak(seconds: float, work: Path, disk: Path, model: str | None) -> int:
    faults, hour, hup_at, full_at = schedule(seconds)
    log = disk / "soak.csv"
    ballast = disk / "ballast"
    rotated = disk / "soak.csv.1"
    t_start = time.monotonic()

    def rotate(proc, s: Session) -> None:
        log.rename(rotated)
        s.files.insert(0, rotated)
        proc.send_signal(signal.SIGHUP)

    def fill(proc, s: Session) -> None:
        fill_disk(ballast)

    print(f"soak: {seconds / 3600:.2f} h of audio; log on a {disk} tmpfs; faults: 24 device losses, "
          f"24 ring overflows, 24 driver overruns, 1 clock step, 1 SIGHUP, 1 full disk")
    s1 = run_session(Session(seconds, faults), log, work, model, [(hup_at, rotate), (full_at, fill)])
    problems: list[str] = []
    last_line = (s1.stderr.strip().splitlines() or [""])[-1]
    if s1.code != 2 or not last_line.startswith("specmon: error: ") or "disk full" not in last_line:
        problems.append(f"session 1: expected a one-line disk-full stop (exit 2), got {s1.code}: "
                        f"{last_line}")
    sessions = [s1]
    files1 = list(s1.files)
    rows1 = read_rows(files1, problems)  # whole rows, before anything is freed
    ballast.unlink(missing_ok=True)
    left = seconds - s1.made_s
    if left > WINDOW_S:  # restart for the rest (systemd's Restart=always)
        # Every fault session 1 did not inject goes to session 2. A fault due exactly where
        # session 1 stopped was not injected yet (it fires on the poll after its sample), so the
        # split is by what was injected, not by time.
        done = list(s1.injected)
        later = []
        for t, k in faults:
            hit = next((d for d in done if d[1] == k and abs(d[0] - t) < 1e-3), None)
            if hit is not None:
                done.remove(hit)
            else:
                later.append((max(0.0, t - s1.made_s), k))
        s2 = run_session(Session(left, later), log, work, model, [])
        s2.files = [log]
        sessions.append(s2)
        if s2.code != 0:
            problems.append(f"session 2: exit {s2.code}: {s2.stderr.strip().splitlines()[-1:]}")
    # Rows per session: session 2 appended to `log` after session 1's rows there.
    per_session = [rows1]
    if len(sessions) > 1:
        in_rotated = len(read_rows([rotated], [])) if rotated in files1 else 0
        per_session.append(read_rows([log], problems)[len(rows1) - in_rotated :])
    report = []
    windows = scored = nospeech = 0
    injected = {"ring": 0, "driver": 0, "device": 0}
    found = {"ring": 0, "driver": 0, "device": 0, "clock": 0}
    steps = 0
    for i, (s, rows) in enumerate(zip(sessions, per_session, strict=True), start=1):
        lost = losses(s.stderr)
        for _, n, kind in lost:
            found[kind] += 1
            if kind == "ring" and abs(n - RING_HOLE_S) > 0.005:
                problems.append(f"session {i}: a ring hole of {n} s (injected {RING_HOLE_S})")
            if kind == "driver" and abs(n - OVERRUN_S) > 0.005:
                problems.append(f"session {i}: a driver hole of {n} s (injected {OVERRUN_S})")
        steps += sum(1 for line in s.stderr.splitlines() if STEP.match(line))
        if "Traceback" in s.stderr:
            problems.append(f"session {i}: a traceback")
        windows += account(rows, lost, problems)
        after: list[str] = []
        scored += sum(1 for r in rows if r["score"])
        nospeech += sum(1 for r in rows if r["label"] == "no-speech")
        if rows:  # the audio after the last window is less than a stride (or the stop)
            covered = float(rows[-1]["end_s"])
            total = s.made_s + sum(n for _, n, k in lost if k == "device")
            if s.code == 0 and not (total - STRIDE_S - 0.05 <= covered <= total + 1e-6):
                problems.append(f"session {i}: last window ends at {covered:.2f} s of {total:.2f}")
            tail = total - covered  # read but not judged when the disk-full stop came
            if s.code != 0:
                after.append(f"restart after session {i}: {tail:.1f} s of audio read after its "
                              f"last window were not judged (the stop); logged as its error line")
        # Each fault the source injected must be reported, but for those in the audio a stopped
        # session read and never judged (a ring hole comes with the 10 s of audio before it).
        cut = s.made_s - (tail + RING_HOLE_S if s.code != 0 and rows else 0.0)
        for kind, name in (("ring", "overflow"), ("driver", "overrun"), ("device", "lose")):
            done = [t for t, k in s.injected if k == name]
            sure = sum(1 for t in done if t <= cut)
            got = sum(1 for _, _, k in lost if k == kind)
            injected[kind] += len(done)
            if not sure <= got <= len(done):
                problems.append(f"session {i}: {got} {kind} losses reported, {len(done)} injected")
            if got < len(done):
                after.append(f"  {len(done) - got} {kind} fault(s) injected in that unjudged audio")
        g = rss_growth(s, hour)
        report.append(f"session {i}: {s.made_s / 3600:.2f} h of audio in {s.wall_s:.0f} s wall "
                      f"({s.made_s / max(s.wall_s, 1e-9):.0f}x real time), exit {s.code}, "
                      f"{len(rows)} windows; RSS {g[0]:.1f} MB in the 2nd hour, {g[1]:.1f} MB in "
                      f"the last: growth {g[2]:+.2f} MB")
        report += after
        if s is max(sessions, key=lambda x: x.made_s) and not g[2] <= RSS_LIMIT_MB:
            problems.append(f"session {i}: RSS grew {g[2]:.2f} MB (limit {RSS_LIMIT_MB})")
    if injected != {"ring": 24, "driver": 24, "device": 24}:
        problems.append(f"faults injected {injected}, not 24 of each")
    if abs(sum(s.made_s for s in sessions) - seconds) > 0.01:
        problems.append(f"{sum(s.made_s for s in sessions):.2f} s of audio streamed of {seconds}")
    if steps != 1:
        problems.append(f"{steps} clock steps logged (1 injected)")
    if "log: reopened on SIGHUP: new file" not in s1.stderr or not rotated.exists():
        problems.append("SIGHUP: the log was not reopened as a new file")
    print("\n".join(report))
    print(f"windows: {windows} ({scored} scored, {nospeech} no-speech), every one in order and "
          f"accounted for" if not problems else f"windows: {windows}")
    print(f"faults: {found['device']} device gaps, {found['ring']} ring holes, {found['driver']} "
          f"driver holes, {steps} clock step, SIGHUP rotation, full disk -> clean stop and restart")
    sizes = [f"{f.name} ({f.stat().st_size // 1024} KiB)" for f in (rotated, log) if f.exists()]
    print(f"log files: {', '.join(sizes)}")
    print(f"wall time: {time.monotonic() - t_start:.0f} s")
    if problems:
        print("FAIL:\n  " + "\n  ".join(problems[:30]))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
