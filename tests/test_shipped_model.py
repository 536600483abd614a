"""The bundled model on two known clips of ../shared, through `specmon score` as a user runs it."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.scorer import DEFAULT_MODEL, FAST_MODEL, float_model_path, read_model_info

ANGRY = "tess/OAF/OAF_bought_angry.flac"
HAPPY = "tess/OAF/OAF_doll_happy.flac"


@pytest.mark.parametrize("model", [[], ["--model", str(FAST_MODEL)]], ids=["shipped", "fast"])
def test_shipped_model_calls_angry_negative_and_happy_not(speech_dir: Path, model: list[str]) -> None:
    files = [speech_dir / ANGRY, speech_dir / HAPPY]
    p = subprocess.run([sys.executable, "-m", "monitor.cli", "score", *model, *map(str, files)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    by_file = {Path(r["file"]).name: r for r in rows}
    assert set(by_file) == {Path(ANGRY).name, Path(HAPPY).name}  # one looped window per short clip
    angry, happy = by_file[Path(ANGRY).name], by_file[Path(HAPPY).name]
    assert angry["label"] == "negative", angry
    assert happy["label"] != "negative", happy
    assert float(angry["score"]) > float(happy["score"]) + 0.3


def test_the_fast_model_is_the_shipped_network_with_a_head_without_whisper() -> None:
    """Both files of the network are the same bytes; only the heads (and so the thresholds) differ:
    the shipped head takes Whisper's block-3 states, the fast one the prosody alone."""
    for a, b in ((DEFAULT_MODEL, FAST_MODEL), (float_model_path(DEFAULT_MODEL),
                                                float_model_path(FAST_MODEL))):
        assert a.read_bytes() == b.read_bytes(), (a, b)
    shipped, fast = read_model_info(DEFAULT_MODEL), read_model_info(FAST_MODEL)
    assert shipped.head.encoder == "whisper_block3" and fast.head.encoder is None
    assert fast.head.uses_prosody and shipped.model_id != fast.model_id
    for m in (DEFAULT_MODEL, FAST_MODEL):  # each float32 original carries its int8 model's head
        f32 = read_model_info(float_model_path(m))
        assert f32.meta["stats_head"] == read_model_info(m).meta["stats_head"]
