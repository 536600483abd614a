"""A tiny real training run (TensorFlow, the `train` extra) that yields a loadable int8 model, and
`specmon evaluate` on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from monitor.prosody import N_PROSODY
from monitor.scorer import Scorer

SPEAKERS = "casia-wangzhe,tess-OAF,tess-YAF,ravdess-04"


def test_tiny_training_run_gives_loadable_int8_model(tmp_path: Path, speech_dir: Path) -> None:
    out = tmp_path / "tiny.tflite"
    p = subprocess.run(
        [sys.executable, "-m", "model.train", "--manifest", str(speech_dir / "manifest.csv"),
         "--speakers", SPEAKERS, "--max-clips", "4", "--epochs", "2", "--steps", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "epoch  2/2" in p.stderr  # progress is shown
    assert out.stat().st_size < 1_000_000
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["quantization"] == "int8" and meta["features"]["hop"] == 512
    s = Scorer(out)
    assert s._in_dtype == np.int8  # full-integer: int8 in, int8 out
    rng = np.random.default_rng(0)
    score = s.score(rng.normal(-40, 20, (513, 125)).astype(np.float32), np.zeros(N_PROSODY))
    assert 0.0 <= score <= 1.0
    f32 = Scorer(out.with_name("tiny-float32.tflite"))
    assert f32._in_dtype == np.float32

    rep_dir = tmp_path / "eval"
    p = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "evaluate", "--manifest",
         str(speech_dir / "manifest.csv"), "--model", str(out), "--speakers", "emodb-11",
         "--out", str(rep_dir)],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    rep = json.loads((rep_dir / "report.json").read_text())
    assert set(rep["per_corpus"]) == {"emodb"}
    assert rep["overall"]["n"] > 0 and "int8_vs_float32" in rep
    assert {"boredom", "happiness", "anger", "neutral"} <= set(rep["per_emotion"])
    assert "false_alarm_rate" in rep["per_emotion"]["boredom"]
    assert "recall" in rep["per_emotion"]["anger"]
    for png in ("roc.png", "hist.png"):
        assert (rep_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_bad_manifest(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("path,speaker\n")
    p = subprocess.run([sys.executable, "-m", "model.train", "--manifest", str(m), "--out",
                        str(tmp_path / "x.tflite")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert f"{m}: manifest lacks column(s)" in p.stderr
