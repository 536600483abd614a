"""Dataset builder: manifest validation, labels, speaker-disjoint splits, balanced windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.dataset import (
    build_streams,
    eval_windows,
    label_of,
    load_all,
    read_manifest,
    speaker_folds,
    split_by_speaker,
)
from monitor.errors import SpecmonError


def test_labels() -> None:
    """Negative against everything else a person sounds like; boredom is evaluated only."""
    assert [label_of(e) for e in ("anger", "sadness", "fear", "disgust")] == [1, 1, 1, 1]
    assert [label_of(e) for e in ("neutral", "calm", "happiness", "surprise")] == [0, 0, 0, 0]
    assert label_of("boredom") is None


def test_no_speaker_leakage_in_any_fold(speech_dir: Path) -> None:
    clips = read_manifest(speech_dir / "manifest.csv", check_files=False)
    folds = speaker_folds(clips, 5, seed=0)
    all_speakers = {c.speaker for c in clips}
    assert sorted(s for f in folds for s in f) == sorted(all_speakers)  # each speaker exactly once
    for f in folds:
        train, test = split_by_speaker(clips, set(f))
        assert {c.speaker for c in train}.isdisjoint({c.speaker for c in test})
        assert len(train) + len(test) == len(clips)
        assert {c.corpus for c in test}, "every fold has test speakers"
    # corpora are spread: the 18 RAVDESS speakers fall in every fold
    for f in folds:
        assert any(s.startswith("ravdess") for s in f)


def test_eval_windows_cover_every_stream(speech_dir: Path) -> None:
    clips = [c for c in read_manifest(speech_dir / "manifest.csv")
             if c.speaker == "ravdess-03"]
    audio = load_all(clips)
    ws = eval_windows(build_streams(clips, audio, seed=0))
    assert ws.x.shape[1:] == (513, 125)
    assert set(ws.emotion[ws.y == 1]) == {"anger", "sadness", "fear", "disgust"}
    assert set(ws.emotion[ws.y == 0]) == {"neutral", "calm", "happiness", "surprise"}
    for e in set(ws.emotion.tolist()):  # every window of every stream: ~1 per 4 s of its audio
        sec = sum(len(audio[c.path]) for c in clips if c.emotion == e) / 16000
        assert (ws.emotion == e).sum() == int((sec * 16000 - 1024) // 512 + 1) // 125
    again = eval_windows(build_streams(clips, audio, seed=0))
    np.testing.assert_array_equal(ws.x, again.x)  # fixed seed: same windows


def write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


HEADER = "path,corpus,speaker,gender,emotion,language,seconds\n"


def test_manifest_missing_column(tmp_path: Path) -> None:
    m = write(tmp_path / "m.csv", "path,corpus,speaker,emotion\na.flac,x,s1,anger\n")
    with pytest.raises(SpecmonError, match=r"m\.csv: manifest lacks column\(s\) gender, language"):
        read_manifest(m)


def test_manifest_unknown_emotion(tmp_path: Path) -> None:
    m = write(tmp_path / "m.csv", HEADER + "a.flac,x,s1,f,contempt,en,1.0\n")
    with pytest.raises(SpecmonError, match=r"m\.csv:2: unknown emotion 'contempt'"):
        read_manifest(m, check_files=False)


def test_manifest_missing_audio(tmp_path: Path) -> None:
    m = write(tmp_path / "m.csv", HEADER + "nope.flac,x,s1,f,anger,en,1.0\n")
    with pytest.raises(SpecmonError, match=r"m\.csv:2: audio file nope\.flac not found"):
        read_manifest(m)
