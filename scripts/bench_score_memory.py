"""Peak memory of `specmon score` on a long recording (issue 8: <= 250 MB for 2 h of 48 kHz stereo).

    python scripts/bench_score_memory.py               # 2 h of 48 kHz stereo (a 1.4 GB WAV in /tmp)
    python scripts/bench_score_memory.py --minutes 10  # shorter, for a quick look

Writes the recording (a gliding, gated tone over noise: speech-like levels, so most windows are
scored) block by block into a temporary folder, runs the real CLI on it and reads the child's peak
RSS from wait4() (the same figure as `/usr/bin/time -v`'s "Maximum resident set size"). Also runs a
10-s file, to show how much of the peak is the runtime (Python, numba, LiteRT) rather than audio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

TARGET_MB = 250.0


def write_recording(path: Path, seconds: float, rate: int = 48_000) -> None:
    rng = np.random.default_rng(0)
    block = rate * 10
    with sf.SoundFile(str(path), "w", rate, 2, subtype="PCM_16") as f:
        done = 0
        while done < seconds * rate:
            n = int(min(block, seconds * rate - done))
            t = (done + np.arange(n)) / rate
            tone = 0.25 * np.sin(2 * np.pi * (180 + 40 * np.sin(0.7 * t)) * t) * (np.sin(2.1 * t) > -0.3)
            f.write((tone[:, None] + 0.02 * rng.standard_normal((n, 2))).astype(np.float32))
            done += n


def peak_rss_mb(cmd: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit status) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.stderr.write(proc.stderr.read().decode())
    return usage.ru_maxrss / 1024.0, wall, proc.returncode  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=120.0, help="length of the recording")
    args = ap.parse_args(argv)
    specmon = [sys.executable, "-m", "monitor.cli", "score"]
    tmp = Path(tempfile.mkdtemp(prefix="specmon-score-mem-", dir="/tmp"))
    try:
        long_wav, short_wav = tmp / "long.wav", tmp / "short.wav"
        print(f"writing {args.minutes:g} min of 48 kHz stereo ...", file=sys.stderr, flush=True)
        write_recording(long_wav, args.minutes * 60)
        write_recording(short_wav, 10.0)
        base, _, rc0 = peak_rss_mb([*specmon, str(short_wav), "-o", str(tmp / "short.csv")])
        peak, wall, rc = peak_rss_mb([*specmon, str(long_wav), "-o", str(tmp / "long.csv")])
        rows = sum(1 for _ in open(tmp / "long.csv")) - 1 if rc == 0 else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = rc == rc0 == 0 and peak <= TARGET_MB
    print(f"specmon score, {args.minutes:g} min of 48 kHz stereo: peak RSS {peak:.0f} MB "
          f"({wall:.1f} s, {rows} windows); a 10-s file: {base:.0f} MB; target <= {TARGET_MB:.0f} MB "
          f"{'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
