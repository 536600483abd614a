"""Smoke tests (not timings): the benchmark runs and writes valid JSON; the numba cache location."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from monitor import numba_cache

REPO = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    # The fast rows, and the dashboard row (two 8-s runs in tmux); the other real-time rows (cpu,
    # latency, startup, memory) take minutes.
    p = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--json", str(out),
         "--only", "stft,rolling,prosody,voice,whisper,model,score,dashboard"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    for row in ("stft", "rolling", "prosody", "voice", "whisper", "model", "score", "dashboard"):
        assert isinstance(r[row], dict), f"{row}: {r[row]}"
    assert r["stft"]["impl"]["ours"]["shape_ok"]
    assert r["stft"]["impl"]["numpy.fft"]["max_abs_diff_db"] < 0.01
    assert r["rolling"]["ratio"] > 0
    stride = r["rolling"]["stride"]["impl"]  # the same window every way, at the default stride
    assert stride["numpy, new frames only"]["max_abs_diff_db"] < 0.01
    assert stride["scipy, 4-s recompute"]["max_abs_diff_db"] < 0.01
    assert r["prosody"]["same_values"] and r["prosody"]["ratio"] > 0  # each frame once: same values
    assert r["voice"]["same_values"] and r["voice"]["ratio"] > 1  # each partial once: fewer, same
    assert r["whisper"]["same_values"] and r["whisper"]["ratio"] > 1  # half the blocks: less work
    assert r["score"]["windows"] > 0
    d = r["dashboard"]
    for mode in ("headless", "dashboard"):  # each really listened, at real-time pace, in tmux
        (run,) = d["runs"][mode]
        assert run["cpu_s"] > 0 and run["wall_s"] >= d["audio_s"], run
    assert "pi4_estimate_percent" in d and d["pi4_estimate_how"]
    assert r["table"] and r["meta"]["load_before"]["cpus"] >= 1


def test_numba_cache_dir_when_package_read_only(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert numba_cache.configure(pkg, env) is None  # writable: numba's in-tree default
    assert "NUMBA_CACHE_DIR" not in env
    monkeypatch.setattr(numba_cache, "_writable", lambda d: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    d = numba_cache.configure(pkg, env)
    assert d == str(tmp_path / "xdg" / "specmon" / "numba") == env["NUMBA_CACHE_DIR"]
    assert Path(d).is_dir()
    env2 = {"NUMBA_CACHE_DIR": "/somewhere"}  # the user's choice wins
    assert numba_cache.configure(pkg, env2) is None and env2["NUMBA_CACHE_DIR"] == "/somewhere"


def test_read_only_install_caches_kernels(tmp_path):
    """A copy of the package on a read-only mount compiles once, then loads from the user cache.

    Root ignores permission bits, so as root (CI) the copy is bind-mounted read-only instead.
    """
    import shutil

    pkg = tmp_path / "site" / "monitor"
    shutil.copytree(REPO / "monitor", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    mounted = False
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(pkg), str(pkg)], check=True)
        mounted = True
        subprocess.run(["mount", "-o", "remount,ro,bind", str(pkg)], check=True)
    else:
        for d in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
            d.chmod(0o555)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(pkg.parent))
    env.pop("NUMBA_CACHE_DIR", None)
    code = ("import numpy as np; from monitor.features import stft_logpower; "
            "stft_logpower(np.zeros(4096))")
    try:
        assert not os.access(pkg, os.W_OK), "the package copy is still writable"
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path)
        cached = list((tmp_path / "xdg" / "specmon" / "numba").rglob("*.nbi"))
        assert cached, "no numba index written to the user cache dir"
        assert not list(pkg.rglob("*.nbi"))
    finally:
        if mounted:
            subprocess.run(["umount", str(pkg)], check=True)
        else:
            for d in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
                d.chmod(0o755)
