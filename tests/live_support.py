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
