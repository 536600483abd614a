"""The bundled model on two known clips of ../shared, through `specmon score` as a user runs it."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

ANGRY = "tess/OAF/OAF_bought_angry.flac"
HAPPY = "tess/OAF/OAF_doll_happy.flac"


def test_shipped_model_calls_angry_negative_and_happy_not(speech_dir: Path) -> None:
    files = [speech_dir / ANGRY, speech_dir / HAPPY]
    p = subprocess.run([sys.executable, "-m", "monitor.cli", "score", *map(str, files)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    by_file = {Path(r["file"]).name: r for r in rows}
    assert set(by_file) == {Path(ANGRY).name, Path(HAPPY).name}  # one looped window per short clip
    angry, happy = by_file[Path(ANGRY).name], by_file[Path(HAPPY).name]
    assert angry["label"] == "negative", angry
    assert happy["label"] != "negative", happy
    assert float(angry["score"]) > float(happy["score"]) + 0.3
