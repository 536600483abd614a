"""Helpers for the live tests: the model to test with, clips from ../shared, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SPECMON = [PY, "-m", "monitor.cli"]


_made: list[Path] = []  # an untrained model generated once per test session


def model_for_tests(tmp_dir: Path) -> Path:
    """The bundled model if present (or $SPECMON_TEST_MODEL); else a real untrained int8 model
    from model.quantize, generated once per session."""
    from monitor.scorer import DEFAULT_MODEL

    env = os.environ.get("SPECMON_TEST_MODEL")
    if env:
        return Path(env)
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL
    if _made and _made[0].is_file():
        return _made[0]
    out = tmp_dir / "untrained.tflite"
    r = subprocess.run([PY, "-m", "model.quantize", "--untrained", str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not out.is_file():
        pytest.fail(f"no bundled model and model.quantize --untrained failed: {r.stderr[-500:]}")
    _made.append(out)
    return out


def concat_clips(rows: list[dict], speech_dir: Path, corpus: str, n: int) -> np.ndarray:
    """n clips of one corpus, end to end (16 kHz mono float32)."""
    picked = [r for r in rows if r["corpus"] == corpus][:n]
    assert len(picked) == n, f"fewer than {n} {corpus} clips in the manifest"
    parts = []
    for r in picked:
        x, rate = sf.read(speech_dir / r["path"], dtype="float32")
        assert rate == 16000, f"{r['path']}: expected 16 kHz"
        parts.append(x if x.ndim == 1 else x.mean(axis=1))
    return np.concatenate(parts)


def run_specmon(args: list[str], timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(SPECMON + args, cwd=kw.pop("cwd", REPO), capture_output=True, text=True,
                          timeout=timeout, **kw)


def read_log(path: Path) -> tuple[list[str], list[dict]]:
    import csv

    with open(path, newline="") as f:
        rd = csv.DictReader(f)
        rows = list(rd)
        return list(rd.fieldnames or []), rows


def prosody_model(tmp_dir: Path, base: Path) -> Path:
    """The network of `base` (a real int8 TFLite file) with a stats head that takes the window's
    prosody (monitor/prosody.py): standardized on real windows, random weights that lean on the
    prosody, so a prosody mistake would move the score."""
    import json
    import shutil

    from model.quantize import write_sidecar
    from monitor.prosody import N_PROSODY
    from monitor.window_stats import N_STATS, StatsHead

    out = tmp_dir / "prosody.tflite"
    shutil.copyfile(base, out)
    meta = {k: v for k, v in json.loads(base.with_suffix(".json").read_text()).items()
            if k not in ("sha256", "model_id", "features", "labels", "float_model")}
    rng = np.random.default_rng(7)
    mean = np.concatenate([np.zeros(N_STATS), [40.0, 0.1, 38.0, 40.0, 42.0, 4.0, 50.0, 40.0, -50.0,
                                               40.0, 600.0, 0.3, 150.0, 0.5, 1600.0, 0.2, 180.0,
                                               0.5, 2700.0, 0.1, 250.0, 0.4, 0.4,
                                               0.4, 0.6, 0.15, 0.35, 0.6, 0.45, 5.0, 5.0, -5.0, 5.0,
                                               4.0, 4.0, 0.1, 0.06, 0.12, 0.1]])
    scale = np.concatenate([np.full(N_STATS, 10.0), np.abs(mean[N_STATS:]) * 0.3 + 0.05])
    coef = np.concatenate([rng.normal(0, 0.02, N_STATS), rng.normal(0, 0.5, N_PROSODY)])
    meta["stats_head"] = StatsHead(mean, scale, coef, 0.0, 0.01).to_dict()
    write_sidecar(out, meta)
    return out
