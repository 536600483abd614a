"""The training recipe of issue 7: target, splits, balanced streaming sampler, mixed streams, LOCO,
the paper's baseline, and both audio formats of ../shared (FLAC and Ogg/Opus)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from model.dataset import (
    BalancedSampler,
    Clip,
    Stream,
    build_streams,
    load_all,
    loco_splits,
    mixed_streams,
    read_manifest,
    validation_speakers,
)
from model.loco import subset
from monitor.features import SAMPLE_RATE, WINDOW_SAMPLES

MANIFEST_ARGS = ["--max-clips", "3", "--epochs", "1", "--steps", "2"]


def _quiet(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_no_corpus_on_both_sides_of_a_loco_split(speech_dir: Path) -> None:
    clips = read_manifest(speech_dir / "manifest.csv", check_files=False)
    splits = loco_splits(clips)
    assert [c for c, _, _ in splits] == sorted({c.corpus for c in clips})
    for corpus, train, test in splits:
        assert {c.corpus for c in test} == {corpus}
        assert corpus not in {c.corpus for c in train}
        assert {c.speaker for c in train}.isdisjoint({c.speaker for c in test})
        assert len(train) + len(test) == len(clips)
        val = validation_speakers(train)
        assert val and val <= {c.speaker for c in train}  # chosen inside the training corpora
        # corpora with fewer than four speakers stay wholly in training
        for c in {c.corpus for c in train}:
            spk = {x.speaker for x in train if x.corpus == c}
            if len(spk) < 4:
                assert not spk & val
            else:
                assert spk - val, f"{c}: some speakers must stay in training"


def test_baseline_builder_gives_the_papers_layer_list() -> None:
    from model.cnn import BASELINE_LAYERS, build_baseline, build_cnn, layer_list

    base = build_baseline()
    assert tuple(layer_list(base)) == BASELINE_LAYERS
    assert BASELINE_LAYERS == ("Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense",
                               "Dense")
    assert base.input_shape == (None, 513, 125, 1) and base.output_shape == (None, 1)
    shipped = build_cnn()
    assert shipped.input_shape == (None, 513, 125, 1) and shipped.output_shape == (None, 1)
    assert "Flatten" not in layer_list(shipped)  # time is pooled, not flattened


def _tone_stream(speaker: str, emotion: str, hz: float, seconds: float) -> Stream:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    clip = Clip(Path(f"/{speaker}/{emotion}.flac"), "synthetic", speaker, "u", emotion, "xx", seconds)
    return Stream(speaker, "synthetic", emotion, x, [clip])


def test_mixed_stream_windows_are_labelled_by_the_block_that_covers_them() -> None:
    tones = {"anger": 500.0, "neutral": 1500.0, "happiness": 3000.0}
    streams = [_tone_stream("s1", e, hz, 70.0) for e, hz in tones.items()]
    ws = mixed_streams(streams, seed=3)
    assert len(ws) > 100
    # each window holds exactly one tone: the one of the emotion it is labelled with
    bins = {e: int(round(hz / (SAMPLE_RATE / 1024))) for e, hz in tones.items()}
    for x, e in zip(ws.x, ws.emotion, strict=True):
        energy = {k: float(x[b].mean()) for k, b in bins.items()}
        assert max(energy, key=energy.get) == e
        others = [v for k, v in energy.items() if k != e]
        assert energy[e] - max(others) > 1.0  # no straddling window
    assert set(ws.y.tolist()) == {0, 1}
    # blocks come in a shuffled order: the labels change more often than once per emotion
    changes = int(np.sum(ws.emotion[1:] != ws.emotion[:-1]))
    assert changes > len(tones)


def test_sampler_balances_classes_and_languages(speech_dir: Path) -> None:
    clips = [c for c in read_manifest(speech_dir / "manifest.csv")
             if c.speaker in {"ravdess-03", "ravdess-04", "tess-OAF", "korean-ema", "turev-1234",
                              "emodb-08", "librispeech-19"}]
    clips = subset(clips, 0, 6)  # six clips per speaker and emotion
    audio = load_all(clips)
    sampler = BalancedSampler(build_streams(clips, audio), audio, None)
    assert sampler.languages == ["de", "en", "ko", "tr"]
    x, y, emo, corpora = sampler.draw(400, np.random.default_rng(0))
    assert set(corpora) == set(sampler.corpora) and len(corpora) == 400
    assert x.shape == (400, 513, 125)
    assert 0.4 < y.mean() < 0.5  # pairs, plus ~10 % extra non-negative from neutral-only speakers
    counts = Counter(emo)
    assert "boredom" not in counts
    assert counts["sadness"] > counts["anger"]  # sadness weighted double
    assert counts["happiness"] + counts["surprise"] > 0.3 * (y == 0).sum()  # not only calm speech


@pytest.mark.parametrize("balance, share", [(True, 0.5), (False, 1 / 3)])
def test_happiness_gets_half_of_the_non_negative_draws_unless_ablated(balance: bool,
                                                                      share: float) -> None:
    """Neutral, calm and happiness: with the arousal balance happiness gets as many draws as the
    other two together; its ablation (loco --no-arousal-balance) draws the three alike."""
    clips = {e: Clip(Path(f"{e}.wav"), "c", "s1", "f", e, "en", 4.0)
             for e in ("neutral", "calm", "happiness", "anger")}
    audio = {c.path: np.zeros(WINDOW_SAMPLES, np.float32) for c in clips.values()}
    sampler = BalancedSampler(build_streams(list(clips.values()), audio), audio, None,
                              arousal_balance=balance)
    assert sampler.describe()["arousal_balance"] is balance
    non, _ = sampler.groups["s1"]
    rng = np.random.default_rng(0)
    picks = Counter(sampler._pick_stream(non, rng, 0).emotion for _ in range(3000))
    assert abs(picks["happiness"] / 3000 - share) < 0.03


def test_tiny_loco_run_end_to_end(tmp_path: Path, speech_dir: Path) -> None:
    work = tmp_path / "loco"
    p = subprocess.run(
        [sys.executable, "-m", "model.loco", "--manifest", str(speech_dir / "manifest.csv"),
         "--work", str(work), "--speakers-per-corpus", "2", *MANIFEST_ARGS, "--folds",
         "korean,tess", "--head-cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "[korean] epoch  1/1" in p.stderr  # progress
    rep = json.loads((work / "loco_report.json").read_text())
    assert set(rep["per_corpus"]) == {"korean", "tess"}
    for corpus, fold in rep["per_corpus"].items():
        assert fold["corpora"] == [corpus]
        assert fold["int8"]["windows"]["balanced_accuracy"] is not None
        assert set(fold["model_sha256"]) == {f"{corpus}.tflite", f"{corpus}-float32.tflite"}
        sidecar = json.loads((work / f"{corpus}.json").read_text())  # not overwritten by the result
        assert sidecar["quantization"] == "int8" and sidecar["sha256"] == fold["model_sha256"][
            f"{corpus}.tflite"]
        assert 0.0 <= fold["int8_float32_label_agreement"] <= 1.0
        assert fold["mixed"]["windows"]["n"] > 0
        assert not set(fold["fit"]["val_speakers"]) & {s for s in fold["fit"]["val_speakers"]
                                                       if s.startswith(corpus)}
    assert len(rep["manifest_sha256"]) == 64 and rep["git_commit"]
    assert rep["machine"]["cores"] >= 1 and rep["fold_minutes_total"] > 0
    assert {"anger", "happiness", "neutral", "sadness"} <= set(rep["per_emotion_mean_over_corpora"])
    # the threshold of the rule's grid best on a test corpus's own windows is at least as good as
    # the one validation chose
    hind = rep["diagnostics"]["hindsight_threshold"]["per_corpus"]
    assert set(hind) == {"korean", "tess"}
    for corpus, h in hind.items():
        assert h["balanced_accuracy"] >= rep["per_corpus"][corpus]["int8"]["windows"][
            "balanced_accuracy"] - 1e-4
    # ... and the fusion's weights in hindsight: the shipped equal weights rank as the fused score
    fusion = rep["diagnostics"]["hindsight_fusion"]
    assert set(fusion["per_corpus"]) == {"korean", "tess"}
    for corpus, aucs in fusion["per_corpus"].items():
        assert list(aucs) == ["0.00", "0.25", "0.50", "0.75", "1.00"]
        assert abs(aucs["0.50"] - rep["per_corpus"][corpus]["int8"]["windows"]["roc_auc"]) <= 1e-4
        assert aucs["1.00"] == rep["per_corpus"][corpus]["components_int8"]["network_auc"]
    # a rerun resumes: finished folds are not trained again
    p = subprocess.run(
        [sys.executable, "-m", "model.loco", "--manifest", str(speech_dir / "manifest.csv"),
         "--work", str(work), "--speakers-per-corpus", "2", *MANIFEST_ARGS, "--folds",
         "korean,tess"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "epoch" not in p.stderr
    # the stats head: fitted on the training speakers, its regularization from the grid, in the sidecar
    for corpus, fold in rep["per_corpus"].items():
        head = fold["fit"]["stats_head"]
        assert head["C"] in (0.01, 0.1, 1.0) and head["train_windows"] > 0
        assert json.loads((work / f"{corpus}.json").read_text())["stats_head"]["C"] == head["C"]
    # a network reused from an earlier run is not trained again, only its head and threshold
    cached = sorted((tmp_path / "cache").iterdir())
    work2 = tmp_path / "reuse"
    p = subprocess.run(
        [sys.executable, "-m", "model.loco", "--manifest", str(speech_dir / "manifest.csv"),
         "--work", str(work2), "--speakers-per-corpus", "2", *MANIFEST_ARGS, "--folds", "korean",
         "--networks-from", str(work), "--threshold-rule", "unseen_corpus", "--head", "multinomial",
         "--head-cache", str(tmp_path / "cache"), "--head-c", "0.002,0.02"],
        capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "epoch" not in p.stderr and "stats head" in p.stderr
    # ... its head's training inputs and its validation and test windows' features from the cache
    # the first run filled (model/eval_features.py: nothing new is computed, so nothing is added)
    assert cached and sorted((tmp_path / "cache").iterdir()) == cached
    assert rep["head_inputs_cached_folds"] == []
    assert json.loads((work2 / "loco_report.json").read_text())["head_inputs_cached_folds"] == [
        "korean"]
    again = json.loads((work2 / "korean.result.json").read_text())
    assert again["eval_features"]["entries_computed"] == 0 and again["eval_features"]["entries_read"]
    assert again["model_sha256"] == rep["per_corpus"]["korean"]["model_sha256"]
    assert again["fit"]["network_from"] == str(work / "korean.tflite")
    # ... here with the threshold chosen on validation corpora each scored by a head without it
    assert again["fit"]["threshold_rule"] == "unseen_corpus"
    assert "threshold_in_corpus" in again["fit"]
    assert all("val_auc_fused_unseen_corpus" in row for row in again["fit"]["stats_head"]["grid"])
    # ... its regularization chosen from the grid given (--head-c)
    assert [row["C"] for row in again["fit"]["stats_head"]["grid"]] == [0.002, 0.02]
    assert again["fit"]["stats_head"]["C"] in (0.002, 0.02)
    assert "fit without it" in json.loads((work2 / "korean.json").read_text())["threshold_from"]
    # ... and a multinomial head (--head multinomial), in the sidecar the scorer reads
    assert again["fit"]["stats_head"]["form"] == "multinomial"
    assert {"emotions", "negative"} <= set(json.loads((work2 / "korean.json").read_text())["stats_head"])
    assert again["int8"]["windows"]["balanced_accuracy"] is not None


def test_head_inputs_cache_returns_what_it_computed_and_keys_on_what_they_come_from(
        tmp_path: Path, speech_dir: Path) -> None:
    """A cache hit gives exactly what stream_stats computes without a cache (values, dtypes, order);
    the entries (one per stream and copy) are what is read back; other audio, options, copy or
    stream make another key, the stream's place in the list does not; an unreadable entry is
    computed again."""
    from model.dataset import build_streams
    from model.head_inputs import states_key, stats_key, stream_stats

    clips = subset([c for c in read_manifest(speech_dir / "manifest.csv")
                    if c.speaker == "emodb-11"], 0, 1)
    streams = build_streams(clips, load_all(clips))
    x, meta, cached = stream_stats(streams, prosody=False)
    assert not cached
    assert not stream_stats(streams, prosody=False, cache=tmp_path)[2]  # a miss fills it
    cx, cmeta, cached = stream_stats(streams, prosody=False, cache=tmp_path)
    assert cached and np.array_equal(cx, x) and cx.dtype == x.dtype
    for k in ("corpus", "emotion", "y"):
        assert np.array_equal(cmeta[k], meta[k]) and cmeta[k].dtype == meta[k].dtype
    entries = sorted(tmp_path.iterdir())
    assert len(entries) == 2 * len([s for s in streams if s.label is not None])  # stream, copy
    for e in entries:  # what a hit returns is what the entries hold
        np.save(e, np.load(e) + 1.0)
    assert np.array_equal(stream_stats(streams, prosody=False, cache=tmp_path)[0], x + 1.0)
    entries[0].write_bytes(b"torn")  # unreadable: computed again, and kept again
    again, _, cached = stream_stats(streams, prosody=False, cache=tmp_path)
    redone = ~np.all(again == x + 1.0, axis=1)  # the torn entry's windows, as computed
    assert not cached and redone.any() and np.array_equal(again[redone], x[redone])
    assert stream_stats(streams, prosody=False, cache=tmp_path)[2]
    assert stream_stats(streams[::-1], prosody=False, cache=tmp_path)[2]  # a fold of other order
    s0 = streams[0]
    key = stats_key(s0, 62, None, False)
    assert len({key, stats_key(s0, 62, 0, False), stats_key(s0, 62, 1, False),
                stats_key(s0, 62, None, True), states_key(s0, 62, None, "voice_encoder"),
                states_key(s0, 62, None, "whisper_block3"), states_key(s0, 62, 0, "voice_encoder"),
                stats_key(s0, 31, None, False), stats_key(streams[1], 62, None, False)}) == 9
    s0.audio = s0.audio * 0.5
    assert stats_key(s0, 62, None, False) != key


def test_evaluation_features_are_kept_per_stream_and_read_back_exactly(
        tmp_path: Path, speech_dir: Path) -> None:
    """EvalFeatures with a folder gives the windows, labels and features all_windows and
    iter_mixed_streams give without one; a second run reads the entries (an entry per stream, per
    speaker for the mixed streams), another seed or stride for the mixed streams is another entry,
    and an unreadable entry is computed again."""
    from model.dataset import all_windows, build_streams, iter_mixed_streams
    from model.eval_features import EvalFeatures

    clips = subset([c for c in read_manifest(speech_dir / "manifest.csv")
                    if c.speaker in ("emodb-11", "ravdess-05")], 0, 1)
    streams = build_streams(clips, load_all(clips))
    plain = all_windows(streams, True, None)
    mixed = list(iter_mixed_streams(streams, 0, stride=62, prosody=True))
    kept = EvalFeatures(tmp_path, prosody=True, encoder=None)

    def same(a, b) -> bool:
        return all(np.array_equal(getattr(a, f), getattr(b, f)) and getattr(a, f).dtype ==
                   getattr(b, f).dtype for f in ("x", "y", "speaker", "corpus", "emotion", "prosody"))

    for _ in range(2):  # computed and kept, then read back
        assert same(kept.windows(streams), plain)
        got = list(kept.mixed(streams, 0, 62))
        assert len(got) == len(mixed) == 2 and all(same(a, b) for a, b in zip(got, mixed, strict=True))
    assert kept.counts() == {"entries_read": len(streams) + 2, "entries_computed": len(streams) + 2}
    entries = sorted(tmp_path.glob("eval-*.npy"))
    assert len(entries) == len(streams) + 2
    for e in entries:  # what a second run returns is what the entries hold
        np.save(e, np.load(e) + 1.0)
    assert np.array_equal(kept.windows(streams).prosody, plain.prosody + 1.0)
    assert np.array_equal(next(kept.mixed(streams, 0, 62)).prosody, mixed[0].prosody + 1.0)
    list(kept.mixed(streams, 1, 62))  # another seed, another stride: entries of their own
    list(kept.mixed(streams, 0, 31))
    assert len(sorted(tmp_path.glob("eval-*.npy"))) == len(streams) + 6
    for e in entries:
        e.write_bytes(b"torn")
    assert same(kept.windows(streams), plain)
    assert EvalFeatures(None, True, None).windows(streams[:1]).prosody.shape[1] == \
        plain.prosody.shape[1]
    assert EvalFeatures(tmp_path, prosody=False, encoder=None).windows(streams).prosody is None


def test_head_inputs_cache_keeps_encoder_states_apart_from_the_statistics(
        tmp_path: Path, speech_dir: Path, monkeypatch) -> None:
    """With an encoder, an entry's states are an entry of their own: the inputs are the window
    statistics and prosody, then the states, exactly as the serving path (SampleFeatures) puts them
    together; a change to the statistics' code recomputes them and reads the states back."""
    from model import head_inputs
    from model.dataset import build_streams, stream_prosody, stream_windows
    from monitor import voice_encoder
    from monitor.features import loop_to_window
    from monitor.window_stats import head_inputs as serving_inputs

    clips = [c for c in read_manifest(speech_dir / "manifest.csv") if c.speaker == "emodb-11"][:2]
    streams = [s for s in build_streams(clips, load_all(clips)) if s.label is not None][:1]
    x, _, _ = head_inputs.stream_stats(streams, conditioned=False, encoder="voice_encoder", cache=tmp_path)
    a = loop_to_window(streams[0].audio)
    want = np.stack([serving_inputs(w, p) for w, p in zip(
        stream_windows(a, 62), stream_prosody(a, 62, "voice_encoder"), strict=True)])
    np.testing.assert_array_equal(x, want)
    kinds = sorted(e.name.split("-")[0] for e in tmp_path.iterdir())
    assert kinds == ["states", "stream"]
    states = next(tmp_path.glob("states-*"))
    np.save(states, np.load(states) + 1.0)  # marks what is read back
    monkeypatch.setattr(head_inputs, "CODE_DIGEST", "other statistics code")
    again, _, cached = head_inputs.stream_stats(streams, conditioned=False, encoder="voice_encoder",
                                                cache=tmp_path)
    assert not cached and len(list(tmp_path.glob("stream-*"))) == 2  # the statistics: a new entry
    n = want.shape[1] - voice_encoder.FEATURES  # the encoder's states come last
    np.testing.assert_array_equal(again[:, :n], want[:, :n])
    np.testing.assert_array_equal(again[:, n:], want[:, n:] + 1.0)  # the states: read back


def test_head_inputs_key_reads_the_code_not_the_words_around_it() -> None:
    """A comment, a docstring or the layout does not throw the cache away; a change of code does."""
    from model.head_inputs import code_of

    src = 'def f(x):\n    """Twice x."""\n    return 2 * x  # doubled\n'
    assert code_of(src) == code_of('def f(x):\n    """Two times x."""\n\n    return 2*x\n')
    assert code_of(src) == code_of("def f(x):\n    return 2 * x\n")
    assert code_of(src) != code_of('def f(x):\n    """Twice x."""\n    return 3 * x\n')
    assert code_of('X = "a string constant"\n') != code_of('X = "another"\n')


def test_manifest_and_trainer_accept_flac_and_opus(tmp_path: Path, speech_dir: Path) -> None:
    rows = read_manifest(speech_dir / "manifest.csv")
    flac = next(c for c in rows if c.path.suffix == ".flac")
    opus = next(c for c in rows if c.path.suffix == ".opus")
    audio = load_all([flac, opus])
    for c in (flac, opus):
        assert audio[c.path].dtype == np.float32 and abs(len(audio[c.path]) / 16000 - c.seconds) < 0.1
    out = tmp_path / "mixed-formats.tflite"
    p = subprocess.run(
        [sys.executable, "-m", "model.train", "--manifest", str(speech_dir / "manifest.csv"),
         "--speakers", "ravdess-03,ravdess-04,korean-ema,korean-emf", *MANIFEST_ARGS, "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["trained_on"] == ["korean", "ravdess"]
    assert meta["quantization"] == "int8" and 0.0 < meta["threshold"] < 1.0
    assert meta["threshold_from"].startswith("validation speakers")
    rep = json.loads((tmp_path / "reports" / "train_report.json").read_text())
    assert rep["peak_rss_mb"] > 0 and rep["fit"]["val_speakers"]
    assert meta["stats_head"]["statistics"] > 100 and rep["fit"]["stats_head"]["train_windows"] > 0
    # keep that network, fit only the head and threshold: no training, the same network bytes
    out2 = tmp_path / "again" / "m.tflite"
    p = subprocess.run(
        [sys.executable, "-m", "model.train", "--manifest", str(speech_dir / "manifest.csv"),
         "--speakers", "ravdess-03,ravdess-04,korean-ema,korean-emf", *MANIFEST_ARGS,
         "--network-from", str(out), "--network-report",
         str(tmp_path / "reports" / "train_report.json"), "--out", str(out2)],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "epoch  1/1" not in p.stderr and out2.read_bytes() == out.read_bytes()
    rep2 = json.loads((out2.parent / "reports" / "train_report.json").read_text())
    assert rep2["fit"]["network_training"]["minutes"] == rep["minutes"]
    assert json.loads(out2.with_suffix(".json").read_text())["stats_head"]
    # ... and again from that refit (another head form): its report leads back to the training run;
    # the network under another name, as model/specmon-fast.tflite is model/specmon.tflite's (the
    # report knows it by its content)
    for a, b in (("m.tflite", "fast.tflite"), ("m-float32.tflite", "fast-float32.tflite"),
                 ("m-float32.json", "fast-float32.json")):
        shutil.copy(out2.parent / a, out2.parent / b)
    out3 = tmp_path / "third" / "m.tflite"
    p = subprocess.run(
        [sys.executable, "-m", "model.train", "--manifest", str(speech_dir / "manifest.csv"),
         "--speakers", "ravdess-03,ravdess-04,korean-ema,korean-emf", *MANIFEST_ARGS,
         "--network-from", str(out2.parent / "fast.tflite"), "--network-report",
         str(out2.parent / "reports" / "train_report.json"), "--out", str(out3), "--head", "multinomial"],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert out3.read_bytes() == out.read_bytes()
    rep3 = json.loads((out3.parent / "reports" / "train_report.json").read_text())
    assert rep3["fit"]["network_training"]["minutes"] == rep["minutes"]
    assert "emotions" in json.loads(out3.with_suffix(".json").read_text())["stats_head"]


@pytest.mark.parametrize("args, message", [
    (["--arch", "resnet"], "unknown architecture 'resnet'"),
    (["--folds", "atlantis"], "no corpus named atlantis in the manifest"),
    (["--augment", "wobble"], "unknown augmentation(s) wobble"),
    (["--min-epoch", "2"], "--min-epoch 2 is not between 1 and --epochs 1"),
    (["--ema", "0.99", "--adversary", "0.3"], "--ema and --adversary do not combine"),
    (["--emotion-task", "0.5", "--adversary", "0.3"],
     "--emotion-task does not combine with --adversary or --ema"),
    (["--emotion-task", "-1"], "--emotion-task -1.0: a weight is a number, 0 or more"),
    (["--emotion-task", "nan"], "--emotion-task nan: a weight is a number, 0 or more"),
    (["--epoch-auc", "median"], "--epoch-auc 'median': choose pooled or corpus_mean"),
    (["--mixup", "-1"], "--mixup -1.0: a Beta distribution's parameter is a number, 0 (off) or more"),
    (["--mixup", "0.4", "--emotion-task", "0.5"],
     "--mixup does not combine with --adversary or --emotion-task"),
    (["--no-stats-head", "--head-cache", "cache"], "--no-stats-head has no head"),
    (["--head-cache", sys.executable], f"--head-cache {sys.executable}: not a folder"),
    (["--average-from", "2"], "--average-from 2 is not between 1 and --epochs 1"),
    (["--head", "forest"], "--head 'forest': choose linear, gated or multinomial"),
    (["--head-c", "0.01,x"], "--head-c '0.01,x': give numbers above 0, separated by commas"),
    (["--head-c", "0.01,0"], "--head-c 0.01,0: give one or more regularizations, each a number"),
    (["--average-from", "1", "--ema", "0.99"], "--average-from and --ema do not combine"),
    (["--threads", "0"], "--threads 0: at least one"),
    (["--epochs", "2", "--average-from", "1", "--min-epoch", "2"],
     "--average-from and --min-epoch do not combine"),
])
def test_loco_bad_input_is_one_line(tmp_path: Path, speech_dir: Path, args, message) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "model.loco", "--manifest", str(speech_dir / "manifest.csv"),
         "--work", str(tmp_path / "w"), "--speakers-per-corpus", "1", "--max-clips", "1",
         "--epochs", "1", "--steps", "1", "--folds", "korean", *args],
        capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert message in p.stderr and _quiet(p.stderr)[-1].startswith("loco: error:")


def test_loco_missing_earlier_network_is_one_line(tmp_path: Path, speech_dir: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "model.loco", "--manifest", str(speech_dir / "manifest.csv"),
         "--work", str(tmp_path / "w"), "--speakers-per-corpus", "2", "--folds", "korean",
         "--networks-from", str(tmp_path / "none")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert _quiet(p.stderr)[-1].startswith(f"loco: error: {tmp_path / 'none' / 'korean.tflite'}: "
                                           "not found")
    assert "decoding" not in p.stderr  # checked before any audio is decoded


@pytest.mark.parametrize("args, message", [
    (["--network-report", "r.json"], "--network-report goes with --network-from"),
    (["--network-from", "m.tflite"], "--network-from needs --network-report"),
    (["--head-cache", sys.executable], f"--head-cache {sys.executable}: not a folder"),
    (["--threads", "-1"], "--threads -1: at least one"),
])
def test_train_bad_reuse_is_one_line(tmp_path: Path, speech_dir: Path, args, message) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "model.train", "--manifest", str(speech_dir / "manifest.csv"),
         "--speakers", "ravdess-03,ravdess-04,korean-ema,korean-emf", "--out",
         str(tmp_path / "x.tflite"), *args],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    lines = _quiet(p.stderr)
    assert len(lines) == 1 and lines[0].startswith("train: error: ") and message in lines[0], lines


def test_train_bad_speaker_is_one_line(tmp_path: Path, speech_dir: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "model.train", "--manifest", str(speech_dir / "manifest.csv"),
         "--speakers", "nobody", "--out", str(tmp_path / "x.tflite")],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert _quiet(p.stderr) == [f"train: error: {speech_dir / 'manifest.csv'}: no clips for speaker(s) "
                                "nobody"]


def test_threads_limits_blas_numba_and_tensorflow() -> None:
    # In a process of its own: the limit holds for the rest of the process.
    code = ("import os, numba; from threadpoolctl import threadpool_info; "
            "from monitor.threads import limit_threads; limit_threads(1); "
            "print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}), "
            "numba.get_num_threads(), os.environ['TF_NUM_INTRAOP_THREADS'])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["[1]", "1", "1"]


def test_threads_limited_holds_inside_its_block_only() -> None:
    code = ("import numba; from threadpoolctl import threadpool_info; "
            "from monitor.threads import threads_limited\n"
            "def now(): return (max(i['num_threads'] for i in threadpool_info() "
            "if i['user_api'] == 'blas'), numba.get_num_threads())\n"
            "before = now()\n"
            "with threads_limited(1): inside = now()\n"
            "print(before, inside, now() == before)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OPENBLAS_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["(2,", "2)", "(1,", "1)", "True"]


def test_window_samples_constant() -> None:
    assert WINDOW_SAMPLES == 64512


def test_provenance_sees_uncommitted_model_code(tmp_path: Path) -> None:
    """Reports say when the code that made them was not committed (git_dirty)."""
    repo = Path(__file__).resolve().parents[1]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, timeout=120)
    code = ("import json, sys; from model.loco import provenance; "
            "print(json.dumps(provenance(sys.argv[1])['git_dirty']))")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\n")

    def dirty() -> bool:
        p = subprocess.run([sys.executable, "-c", code, str(manifest)], cwd=clone, capture_output=True,
                           text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(clone)})
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    assert dirty() is False
    loco = clone / "model" / "loco.py"
    committed = loco.read_text()
    loco.write_text(committed + "\n# edit\n")
    assert dirty() is True
    # Started from uncommitted code and committed (here: restored) before the report: still dirty.
    code = ("import json, sys, pathlib; from model.loco import provenance; "
            f"pathlib.Path({str(loco)!r}).write_text({committed!r}); "
            "print(json.dumps(provenance(sys.argv[1])['git_dirty']))")
    assert dirty() is True
    assert dirty() is False


def test_threshold_by_the_mean_over_corpora() -> None:
    """Validation picks the threshold as the LOCO headline judges: balanced accuracy averaged over
    corpora (with both classes), so a corpus with many windows does not set it for the others."""
    from model.fit import best_threshold

    def corpus(n: int, neg: float, non: float) -> tuple[np.ndarray, np.ndarray]:
        return np.r_[np.ones(n), np.zeros(n)].astype(int), np.r_[np.full(n, neg), np.full(n, non)]

    parts = [corpus(900, 0.85, 0.75), corpus(100, 0.55, 0.45), corpus(100, 0.55, 0.45)]
    y = np.concatenate([p[0] for p in parts])
    s = np.concatenate([p[1] for p in parts])
    names = np.array(["big"] * 1800 + ["a"] * 200 + ["b"] * 200)
    assert best_threshold(y, s)[0] == 0.775  # pooled: the big corpus's boundary
    t, crit = best_threshold(y, s, names)
    assert 0.45 < t <= 0.55 and abs(crit - (0.5 + 1 + 1) / 3) < 1e-9  # two corpora of three
    # a corpus with one class only does not count (the headline has no balanced accuracy for it)
    read = np.array(["big"] * 1800 + ["read"] * 400)
    y_read = np.r_[y[:1800], np.zeros(400, int)]
    assert best_threshold(y_read, s, read)[0] == best_threshold(y[:1800], s[:1800])[0]


def test_unseen_corpus_logits_come_from_heads_fit_without_the_corpus() -> None:
    """The unseen_corpus threshold rule scores each validation corpus by a head that never saw it:
    a head fit on the other corpora's training windows only, with the same regularization."""
    from model.stats_head import fit_head, unseen_corpus_logits

    rng = np.random.default_rng(0)
    offsets = {"a": 0.0, "b": 2.0, "c": -1.0}  # each corpus's recording chain shifts the feature
    xs, cor, ys = [], [], []
    for name, off in offsets.items():
        y = rng.integers(0, 2, 300)
        xs.append(np.c_[y + off + rng.normal(0, 0.5, 300), rng.normal(0, 1, 300)])
        cor += [name] * 300
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    meta = {"corpus": np.array(cor), "y": y, "emotion": np.where(y == 1, "anger", "neutral")}
    vx, vcor = x[::10], meta["corpus"][::10]
    got = unseen_corpus_logits(x, meta, vx, vcor, 0.1, {})
    full = fit_head(x, meta, 0.1, {})
    for name in offsets:
        keep, rows = meta["corpus"] != name, vcor == name
        alone = fit_head(x[keep], {k: v[keep] for k, v in meta.items()}, 0.1, {})
        np.testing.assert_allclose(got[rows], [alone.logit(v) for v in vx[rows]])
        assert not np.allclose(got[rows], [full.logit(v) for v in vx[rows]])
    # one corpus only: nothing is left without it, so the head fit on everything scores it
    only_a = meta["corpus"] == "a"
    sub = {k: v[only_a] for k, v in meta.items()}
    got_a = unseen_corpus_logits(x[only_a], sub, vx[vcor == "a"], vcor[vcor == "a"], 0.1, {})
    head_a = fit_head(x[only_a], sub, 0.1, {})
    np.testing.assert_allclose(got_a, [head_a.logit(v) for v in vx[vcor == "a"]])


def test_emotion_pair_auc_tells_which_confusions_a_score_makes() -> None:
    from model.metrics import emotion_pair_auc

    rng = np.random.default_rng(0)
    # a loudness detector: anger and happiness high, sadness and calm low
    level = {"anger": 0.9, "happiness": 0.8, "sadness": 0.2, "calm": 0.3, "fear": 0.5}
    n = {"anger": 30, "happiness": 30, "sadness": 30, "calm": 30, "fear": 5}
    emotion = np.array([e for e, k in n.items() for _ in range(k)])
    s = np.array([level[e] for e in emotion]) + rng.normal(0, 0.01, len(emotion))
    pairs = emotion_pair_auc(emotion, s)
    assert pairs["anger"]["calm"] == 1.0 and pairs["anger"]["happiness"] == 1.0
    assert pairs["sadness"]["happiness"] == 0.0 and pairs["sadness"]["calm"] == 0.0
    assert "fear" not in pairs  # too few windows to say
    assert "neutral" not in pairs["anger"]


@pytest.mark.parametrize("form", ["gated", "multinomial"])
def test_a_gated_or_multinomial_head_learns_valence_per_arousal_side(form: str) -> None:
    """Where the cue to negative speech points one way at high arousal and the other way at low
    arousal (anger louder than happiness, sadness quieter than calm), one regression cannot tell
    the classes apart; a gated head (a regression per side) and a multinomial one (a regression
    per emotion) can. A side without both classes, or two emotions, gives a linear head."""
    from sklearn.metrics import roc_auc_score

    from model.stats_head import fit_head, head_form

    rng = np.random.default_rng(0)
    n = 2000
    emotion = rng.choice(["anger", "happiness", "sadness", "calm"], n)
    high = np.isin(emotion, ["anger", "happiness"])
    y = np.isin(emotion, ["anger", "sadness"]).astype(int)
    cue = np.where(high, 1.0, -1.0) * np.where(y == 1, 1.0, -1.0)
    x = np.c_[np.where(high, 2.0, -2.0), cue] + rng.normal(0, 0.7, (n, 2))
    meta = {"corpus": np.array(["a", "b"] * (n // 2)), "y": y, "emotion": emotion}
    linear, other = fit_head(x, meta, 1.0, {}), fit_head(x, meta, 1.0, {}, form)
    assert head_form(linear) == "linear" and head_form(other) == form
    auc = {k: roc_auc_score(y, [h.logit(v) for v in x]) for k, h in (("linear", linear), (form, other))}
    assert auc["linear"] < 0.6 and auc[form] > 0.9, auc
    if form == "multinomial":
        assert other.negative == ("anger", "sadness") and set(other.emotions) == set(emotion)
        scores = {e: f((x[0] - other.mean) / other.scale) for e, f in other.emotions.items()}
        p = {e: np.exp(v) / sum(np.exp(list(scores.values()))) for e, v in scores.items()}
        pn = p["anger"] + p["sadness"]
        assert other.logit(x[0]) == pytest.approx(np.log(pn / (1 - pn)), rel=1e-9)
        assert "coef" not in other.to_dict() and other.to_dict()["negative"] == ["anger", "sadness"]
    low_only = ~high
    sub = {k: v[low_only] for k, v in meta.items()}
    assert head_form(fit_head(x[low_only], sub, 1.0, {}, form)) == "linear"


def test_frequency_warp_moves_harmonics_and_formants_together() -> None:
    """warp_frequency(alpha) puts bin k's content at bin alpha * k, and fills bins with no source
    with the window's floor rather than repeating the top bin."""
    from model.augment import warp_frequency

    s = np.full((513, 125), -1.0, np.float32)
    s[100], s[200] = 3.0, 2.0  # a harmonic and its octave
    up = warp_frequency(s, 1.1)
    assert up[110, 0] == 3.0 and up[220, 0] == 2.0 and up.dtype == np.float32
    down = warp_frequency(s, 0.9)
    assert down[90, 0] == 3.0 and down[180, 0] == 2.0
    s[-1] = 5.0
    assert warp_frequency(s, 0.9)[-1, 0] == -1.0


def test_weight_average_follows_the_weights_batch_by_batch() -> None:
    """The moving average starts at the first batch's weights and moves (1 - decay) of the way to
    each later batch's weights."""
    import keras

    from model.fit import weight_average

    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    avg = weight_average(0.75)
    avg.set_model(m)
    m.set_weights([np.ones((2, 1)), np.zeros(1)])
    avg.on_train_batch_end(0)
    m.set_weights([np.full((2, 1), 5.0), np.full(1, 4.0)])
    avg.on_train_batch_end(1)
    assert np.allclose(avg.weights[0], 2.0) and np.allclose(avg.weights[1], 1.0)
    assert np.allclose(m.get_weights()[0], 5.0)  # the model keeps training on its own weights


def test_epoch_mean_is_the_mean_of_the_weights_added() -> None:
    from model.fit import EpochMean

    m = EpochMean()
    for w in ([np.ones((2, 1)), np.zeros(1)], [np.full((2, 1), 5.0), np.full(1, 4.0)],
              [np.full((2, 1), 3.0), np.full(1, -1.0)]):
        m.add(w)
    assert m.n == 3
    assert np.allclose(m.weights[0], 3.0) and np.allclose(m.weights[1], 1.0)


def test_fit_with_average_from_trains_every_epoch_and_keeps_the_mean(speech_dir: Path) -> None:
    """With `average_from`, early stopping is off and the kept network is the mean of the
    epoch-end weights from that epoch on: not the weights of any one epoch."""
    import keras

    from model.fit import Recipe, fit

    clips = subset([c for c in read_manifest(speech_dir / "manifest.csv")
                    if c.speaker in {"emodb-08", "emodb-10", "emodb-11"}], 0, 1)
    audio = load_all(clips)
    train = [c for c in clips if c.speaker != "emodb-11"]
    val = [c for c in clips if c.speaker == "emodb-11"]
    seen = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None) -> None:
            seen.append([w.copy() for w in self.model.get_weights()])

    model, info, _, _ = fit(train, val, audio, Recipe(epochs=3, steps=1, stats_head=False,
                                                      patience=1, average_from=2),
                            callbacks=[Snapshot()])
    assert len(info["history"]) == 3 and info["averaged_epochs"] == [2, 3]
    assert len(seen) == 3
    kept = model.get_weights()[0]
    assert np.allclose(kept, (seen[1][0] + seen[2][0]) / 2, atol=1e-6)
    assert not np.allclose(kept, seen[2][0])


def test_epoch_auc_by_corpus_ignores_a_score_shift_between_corpora() -> None:
    """corpus_mean averages each validation corpus's own AUC (corpora without both classes left
    out), so a corpus whose scores all sit higher neither helps nor hurts; pooled counts it."""
    from model.fit import validation_auc

    y = np.array([0, 1, 0, 1, 0, 0])
    s = np.array([0.1, 0.2, 0.8, 0.9, 0.5, 0.95])  # a ranks right, b ranks right but sits higher
    corpus = np.array(["a", "a", "b", "b", "c", "c"])  # c: one class only
    assert validation_auc(y, s, corpus, "corpus_mean") == 1.0
    assert validation_auc(y, s, corpus, "pooled") == validation_auc(y, s, corpus) == 0.5
    assert validation_auc(y[:1], s[:1], corpus[:1], "corpus_mean") == 0.0


def test_mixup_mixes_each_window_and_its_label_in_one_proportion() -> None:
    """Each mixed window is one proportion of two of the batch's windows, and its label the same
    proportion of their labels; the proportions spread over (0, 1) as Beta(alpha, alpha) does."""
    from model.fit import mixup

    rng = np.random.default_rng(0)
    y = (np.arange(4000) % 2).astype(np.float32)
    x = np.broadcast_to(y[:, None, None], (4000, 3, 2)).copy()  # a window holds its label
    mx, my = mixup(x, y, 0.4, rng)
    assert mx.shape == x.shape and my.dtype == np.float32
    assert np.allclose(mx, my[:, None, None])
    assert ((my > 0) & (my < 1)).mean() > 0.4  # about half the pairs mix a 0 with a 1
    assert my.mean() == pytest.approx(0.5, abs=0.02)  # mixing keeps the classes' balance
    lam = my[(my > 0) & (my < 1)]
    assert (lam < 0.1).mean() > 0.15 and (lam > 0.9).mean() > 0.15  # Beta(0.4, 0.4): U-shaped


def test_fit_trains_on_mixed_windows_with_mixup(speech_dir: Path) -> None:
    """--mixup reaches training: from the same seed and batches, one step with mixup leaves other
    weights than one without it."""
    from model.fit import Recipe, fit

    clips = subset([c for c in read_manifest(speech_dir / "manifest.csv")
                    if c.speaker in {"emodb-08", "emodb-10", "emodb-11"}], 0, 2)
    audio = load_all(clips)
    train = [c for c in clips if c.speaker != "emodb-11"]
    val = [c for c in clips if c.speaker == "emodb-11"]
    weights = [fit(train, val, audio, Recipe(epochs=1, steps=1, stats_head=False, mixup=m))[0]
               .get_weights()[0] for m in (0.0, 0.0, 0.4)]
    assert np.array_equal(weights[0], weights[1])  # training is repeatable: the change is mixup's
    assert not np.allclose(weights[0], weights[2])


def test_emotion_task_names_the_training_emotions_with_its_weight_in_the_loss(
        speech_dir: Path) -> None:
    """With --emotion-task the network trains with a second output, a softmax over the training
    emotions, whose loss counts at the given weight; the history reports the label's loss, and
    the kept network has its one output."""
    import keras

    from model.fit import Recipe, fit

    clips = subset([c for c in read_manifest(speech_dir / "manifest.csv")
                    if c.speaker in {"emodb-08", "emodb-10", "emodb-11"}], 0, 2)
    audio = load_all(clips)
    train = [c for c in clips if c.speaker != "emodb-11"]
    val = [c for c in clips if c.speaker == "emodb-11"]
    logs_seen, outputs = [], []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None) -> None:
            logs_seen.append(dict(logs))
            outputs.append([o.shape[-1] for o in self.model.outputs])

    model, info, _, _ = fit(train, val, audio, Recipe(epochs=2, steps=2, stats_head=False,
                                                      emotion_task=0.5), callbacks=[Watch()])
    trained_emotions = {c.emotion for c in train} - {"boredom"}
    assert outputs[0] == [1, len(trained_emotions)] and len(model.outputs) == 1
    logs = logs_seen[-1]
    assert logs["loss"] == pytest.approx(logs["p_negative_loss"] + 0.5 * logs["emotion_loss"],
                                         rel=1e-3)
    assert info["history"][-1]["loss"] == round(logs["p_negative_loss"], 4)


def test_fit_keeps_an_epoch_from_min_epoch_on_and_lets_go_of_its_audio(speech_dir: Path) -> None:
    """The kept epoch comes from `min_epoch` on. A fit leaves nothing holding its sampler (the
    training streams' audio), so the folds of one LOCO process do not pile up memory: Keras keeps
    the generator it trained on for the life of the process, and an open generator would keep the
    sampler."""
    import gc

    from model.fit import Recipe, fit

    clips = subset([c for c in read_manifest(speech_dir / "manifest.csv")
                    if c.speaker in {"emodb-08", "emodb-10", "emodb-11", "emodb-12"}], 0, 2)
    audio = load_all(clips)
    train = [c for c in clips if c.speaker in {"emodb-08", "emodb-10"}]
    val = [c for c in clips if c.speaker not in {"emodb-08", "emodb-10"}]
    model, info, _, _ = fit(train, val, audio,
                            Recipe(epochs=3, steps=1, stats_head=False, min_epoch=3, patience=1))
    # epochs before min_epoch are neither kept nor counted by early stopping (patience 1)
    assert info["best_epoch"] == 3 and len(info["history"]) == 3
    del model
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, BalancedSampler)]


def test_corpus_adversary_reverses_its_gradient_into_the_network() -> None:
    """The corpus classifier's gradient reaches the network's layers reversed and scaled by the
    strength, which the ramp raises from 0 to its peak over training; the network itself keeps
    its one input and one output."""
    import keras
    import tensorflow as tf

    from model.cnn import with_corpus_adversary
    from model.fit import adversary_ramp

    inp = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation="relu")
    net = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(hidden(inp)))
    trained, strength = with_corpus_adversary(net, corpora=5, hidden=2)
    assert trained.outputs[1].shape[-1] == 5 and len(net.outputs) == 1
    x = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")

    def grad(through) -> np.ndarray:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(through(x))
        return np.asarray(tape.gradient(loss, hidden.kernel))

    strength.assign(1.0)
    reversed_1 = grad(lambda v: trained(v)[1])
    strength.assign(0.25)
    reversed_q = grad(lambda v: trained(v)[1])
    unit = keras.layers.UnitNormalization()
    plain = grad(lambda v: trained.get_layer("corpus")(trained.get_layer("corpus_hidden")(
        unit(hidden(v)))))
    assert np.abs(plain).max() > 0
    np.testing.assert_allclose(reversed_1, -plain, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(reversed_q, -0.25 * plain, rtol=1e-5, atol=1e-7)

    ramp = adversary_ramp(strength, 0.5, total_steps=10)
    seen = []
    for b in range(10):
        ramp.on_train_batch_begin(b)
        seen.append(float(strength.value))
    assert seen[0] == 0.0 and bool(np.all(np.diff(seen) > 0)) and 0.49 < seen[-1] <= 0.5


def test_wide_network_is_the_shipped_layer_list_with_more_channels() -> None:
    """`--arch specmon-wide` takes the same 513 x 125 window through the same layers as the shipped
    network, only wider: a screen of capacity alone."""
    from keras import layers

    from model.cnn import builder, layer_list

    wide, shipped = builder("specmon-wide")(), builder("specmon")()
    assert wide.input_shape == shipped.input_shape == (None, 513, 125, 1)
    assert wide.output_shape == (None, 1)
    assert layer_list(wide) == layer_list(shipped)

    def widths(net):
        return [(type(x).__name__, x.filters if isinstance(x, layers.Conv2D) else x.units)
                for x in net.layers if isinstance(x, (layers.Conv2D, layers.Dense))]

    assert widths(shipped) == [("Conv2D", 16), ("Conv2D", 32), ("Conv2D", 48), ("Dense", 64), ("Dense", 1)]
    assert widths(wide) == [("Conv2D", 24), ("Conv2D", 48), ("Conv2D", 64), ("Dense", 96), ("Dense", 1)]


def test_mel_network_sees_the_stats_heads_mel_bands_and_keeps_them_frozen() -> None:
    """`--arch specmon-mel` takes the same 513 x 125 window; its first layer is the stats head's
    mel filterbank (each band the mean of its bins' log power), and training leaves it as it is."""
    import keras

    from model.cnn import builder
    from monitor.window_stats import _mel_matrix

    net = builder("specmon-mel")()
    assert net.input_shape == (None, 513, 125, 1) and net.output_shape == (None, 1)
    x = np.random.default_rng(1).standard_normal((4, 513, 125, 1)).astype("float32")
    bands = keras.Model(net.input, net.get_layer("mel").output)(x).numpy()  # (4, 125, 64)
    want = np.einsum("mf,bft->btm", _mel_matrix(64), x[..., 0])
    np.testing.assert_allclose(bands, want, rtol=1e-4, atol=1e-5)
    before = net.get_layer("mel").get_weights()[0].copy()
    net.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    net.fit(x, np.array([0, 1, 0, 1], "float32"), epochs=2, verbose=0)
    np.testing.assert_array_equal(net.get_layer("mel").get_weights()[0], before)


@pytest.mark.parametrize("setting, on", [(None, True), ("0", False)])
def test_training_turns_onednn_on_unless_the_user_turned_it_off(setting: str | None, on: bool) -> None:
    """TensorFlow enables its oneDNN kernels by default only on CPUs with AVX-512 VNNI (2.6x slower
    training without them on this machine's Zen 3). Importing the training package turns them on
    before TensorFlow loads; TF_ENABLE_ONEDNN_OPTS=0 from the user still wins."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    probe = ("import model.fit\n"
             "from tensorflow.python.util import _pywrap_util_port as port\n"
             "print(port.IsMklEnabled())")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert out[-1] == str(on)


def test_head_inputs_show_progress_while_they_are_computed(speech_dir: Path, monkeypatch) -> None:
    """Minutes of work (the head's inputs of all of ../shared) print a progress line now and then,
    naming the share done; a run that is quick enough prints none."""
    from model import head_inputs
    from model.dataset import build_streams

    clips = subset([c for c in read_manifest(speech_dir / "manifest.csv")
                    if c.speaker == "emodb-11"], 0, 1)
    streams = build_streams(clips, load_all(clips))
    lines: list[str] = []
    head_inputs.stream_stats(streams, prosody=False, log=lines.append)
    assert lines == []
    monkeypatch.setattr(head_inputs, "PROGRESS_EVERY", 0.0)
    head_inputs.stream_stats(streams, prosody=False, log=lines.append)
    labelled = [s for s in streams if s.label is not None]
    assert len(lines) == len(labelled) and lines[0].startswith("stats head inputs: 0% of ")
    assert all("% of " in m and m.endswith(" s)") for m in lines)


def test_train_and_loco_take_the_same_recipe_flags_and_refuse_a_bad_one_before_decoding(
        tmp_path: Path) -> None:
    """A recipe screened under LOCO is retrained for shipping with the same flags: both tools read
    them through model.recipe_args, the defaults are Recipe's, and a refused combination stops
    either tool in one line before it reads any audio."""
    import argparse

    from model.fit import Recipe
    from model.recipe_args import add_recipe_arguments, recipe_from

    ap = argparse.ArgumentParser()
    add_recipe_arguments(ap)
    assert recipe_from(ap.parse_args([])) == Recipe()
    r = recipe_from(ap.parse_args(["--sadness-weight", "1", "--head-c", "0.1,1", "--mixup", "0.4",
                                   "--encoder", "whisper_block3", "--min-epoch", "3"]))
    assert (r.emotion_weight, r.head_c, r.mixup, r.encoder, r.min_epoch) == (
        {}, (0.1, 1.0), 0.4, "whisper_block3", 3)
    missing = tmp_path / "no-manifest.csv"  # never reached: the recipe is checked first
    for tool, out in (("model.train", ["--out", str(tmp_path / "m.tflite")]),
                      ("model.loco", ["--work", str(tmp_path / "w")])):
        p = subprocess.run([sys.executable, "-m", tool, "--manifest", str(missing), *out,
                            "--average-from", "7", "--ema", "0.99"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, (tool, p.stderr)
        assert _quiet(p.stderr) == [f"{tool.split('.')[1]}: error: --average-from and --ema do not "
                                    "combine (two averages of the weights)"], tool
