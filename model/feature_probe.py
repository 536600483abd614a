"""Which inputs of the stats head carry to unseen corpora: a leave-one-corpus-out probe.

The shipped head sees only the 513 x 125 window (monitor/window_stats.py), whose 32-ms frames and
15.6-Hz bins blur the pitch contour and the formants. This probe asks what finer prosody measured on
the window's raw samples would add, before anyone builds it into `listen`:

- `window_stats`: the shipped 131 statistics;
- `raw_prosody`: our own from the window's samples (monitor/prosody.py): F0 by normalized
  autocorrelation (40-ms frames, 10-ms hop; eGeMAPS-style functionals in semitones), F1-F3 by LPC
  (order 16, 25-ms frames), the loudness contour and the rhythm of voiced segments, by group;
- `egemaps`: the eGeMAPS v02 functionals of opensmile (optional: `pip install opensmile`), whole or
  only its F0 and formant groups;
- `voice_encoder` (with --voice-encoder): a pretrained speaker encoder's LSTM states
  (monitor/voice_encoder.py), to measure what a representation learned from thousands of voices
  carries that ours do not.
- `whisper` (with --whisper NPZ): Whisper base's encoder states (monitor/whisper_encoder.py), each
  block's output averaged over the window: a multilingual model trained on 680 000 hours of speech.

Every feature set is judged the same way: for each corpus, a logistic regression (standardized,
C 0.01, every corpus and class weighing the same, sadness 2x) is trained on the other corpora's
windows (as recorded and once more through a random recording condition, like the shipped head) and
scored on the held-out corpus's windows (every non-overlapping window of its streams, the LOCO test
windows), alone and fused (monitor.window_stats.fuse) with the network-alone scores of
a LOCO run (`<networks>/<corpus>-scores.npz` of a `python -m model.loco --no-stats-head ...` run,
checked: no head, the same windows). A second view tests the same heads on the held-out windows
through loco's worse recording (loco.conditioned's random microphone, room and noise, seeded as
there; the fold network `<networks>/<corpus>.tflite` scores them anew), since the figure that counts
is phones in real rooms. The training copies get conditions of their own (seeded by corpus and
stream), never the held-out streams'. Each family's extraction time is measured per window, alone.

This is a probe, not the LOCO protocol: no validation speakers, no threshold (fixed C), so it reports
ROC AUC only. Its corpora are the LOCO test corpora, so a feature set it
favours must still be measured by a full LOCO run before it ships.

    python -m model.feature_probe --manifest ../shared/data/speech/manifest.csv \\
        --networks runs/loco-network --report model/reports/feature_probe.json

About 19 minutes on this 2-core machine (eGeMAPS is ~50 ms a window, our raw prosody ~10 ms).
The voice encoder's probe: 37 minutes on a 2-core AMD EPYC (Zen 3), where our raw prosody takes
36 ms a window and the encoder 86 ms:

    python -m model.feature_probe --manifest ../shared/data/speech/manifest.csv --no-egemaps \\
        --voice-encoder --report model/reports/feature_probe_voice_encoder.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from model.dataset import Clip, build_streams, load_all, read_manifest, stream_windows
from model.fit import check_head
from model.loco import provenance, subset
from model.stats_head import fit_head
from monitor import prosody
from monitor.errors import SpecmonError
from monitor.features import HOP, SAMPLE_RATE, WINDOW_FRAMES, WINDOW_SAMPLES, loop_to_window
from monitor.scorer import Scorer, read_model_info, sha256_of
from monitor.threads import limit_threads
from monitor.voice_encoder import VoiceEncoder, WindowVoice
from monitor.whisper_encoder import LAYERS, POOLINGS, WIDTH, WhisperEncoder
from monitor.window_stats import fuse, window_stats

C = 0.01
EMOTION_WEIGHT = {"sadness": 2.0}  # the shipped recipe's
VIEWS = ("", "t_", "c_")  # as recorded; training copy; worse recording (loco.conditioned's)
RAW_NAMES = prosody.NAMES


def _raw_columns(first: str, last: str) -> slice:
    return slice(RAW_NAMES.index(first), RAW_NAMES.index(last) + 1)


# Our own prosody (monitor/prosody.py) by group: columns of its functionals.
RAW_GROUPS = {"raw_f0": _raw_columns("f0_mean", "f0_fall_std"),
              "raw_formants": _raw_columns("F1_freq_mean", "voiced_share"),
              "raw_loudness": _raw_columns("loudness_mean", "loudness_fall_std"),
              "raw_rhythm": _raw_columns("loudness_peaks_per_s", "unvoiced_length_std")}
EGEMAPS_F0_FORMANTS = ("F0semitone", "F1", "F2", "F3")  # column name prefixes
# eGeMAPS v02's parameter groups (column name prefixes), each probed on top of the shipped head's
# inputs: which of them, built natively, would add to what the head already has.
EGEMAPS_GROUPS = {
    "F0": ("F0semitone",),
    "formant frequencies and bandwidths": tuple(f"F{i}{k}" for i in (1, 2, 3)
                                                for k in ("frequency", "bandwidth")),
    "formant amplitudes": ("F1amplitude", "F2amplitude", "F3amplitude"),
    "voice quality": ("jitter", "shimmer", "HNR", "logRelF0"),
    "loudness": ("loudness_sma3", "equivalentSoundLevel"),
    "spectral balance": ("alphaRatio", "hammarberg", "slope"),
    "MFCC and flux": ("mfcc", "spectralFlux"),
    "rhythm": ("loudnessPeaksPerSec", "VoicedSegments", "MeanVoiced", "StddevVoiced", "MeanUnvoiced",
               "StddevUnvoiced"),
}
# Whisper's blocks probed alone; only the first WHISPER_BLOCKS are computed. (A first look at one
# speaker a corpus had the deeper blocks and the final layer norm well below block 4.)
WHISPER_PROBED = ("block2", "block3", "block4")
WHISPER_BLOCKS = 4
SHIPPED = ("window_stats", "raw_f0", "raw_formants", "raw_loudness", "raw_rhythm")  # the head's inputs
FEATURE_SETS = {
    "window_stats": ("window_stats",),
    "window_stats + raw F0": ("window_stats", "raw_f0"),
    "window_stats + raw formants": ("window_stats", "raw_formants"),
    "window_stats + raw F0 and formants": ("window_stats", "raw_f0", "raw_formants"),
    "window_stats + raw F0, formants and loudness": ("window_stats", "raw_f0", "raw_formants",
                                                     "raw_loudness"),
    "window_stats + raw F0, formants and rhythm": ("window_stats", "raw_f0", "raw_formants",
                                                   "raw_rhythm"),
    "window_stats + raw F0, formants, loudness and rhythm": SHIPPED,
    "window_stats + eGeMAPS F0 and formants": ("window_stats", "egemaps_f0_formants"),
    "window_stats + eGeMAPS": ("window_stats", "egemaps"),
    "eGeMAPS alone": ("egemaps",),
    "shipped head inputs + eGeMAPS": (*SHIPPED, "egemaps"),
    **{f"shipped head inputs + eGeMAPS {g}": (*SHIPPED, f"egemaps:{g}") for g in EGEMAPS_GROUPS},
    "voice encoder states alone": ("voice_encoder",),
    "window_stats + voice encoder states": ("window_stats", "voice_encoder"),
    "shipped head inputs + voice encoder states": (*SHIPPED, "voice_encoder"),
    **{f"whisper {layer} alone": (f"whisper:{layer}",) for layer in WHISPER_PROBED},
    "whisper blocks 2, 3 and 4": ("whisper:block2", "whisper:block3", "whisper:block4"),
    "shipped head inputs + whisper block3": (*SHIPPED, "whisper:block3"),
    "shipped head inputs + whisper block4": (*SHIPPED, "whisper:block4"),
    "whisper block3 active mean alone": ("whisper:block3:active",),
    "whisper block3 mean and std alone": ("whisper:block3", "whisper:block3:std"),
    "shipped head inputs + whisper block3 active mean": (*SHIPPED, "whisper:block3:active"),
    "shipped head inputs + whisper block3 mean and std": (*SHIPPED, "whisper:block3",
                                                          "whisper:block3:std"),
    "shipped head inputs + whisper block3 active mean and std": (*SHIPPED, "whisper:block3:active",
                                                                 "whisper:block3:std"),
    "shipped head inputs + whisper blocks 3 and 4": (*SHIPPED, "whisper:block3", "whisper:block4"),
    "shipped head inputs + whisper blocks 3 and 4, mean and std": (
        *SHIPPED, "whisper:block3", "whisper:block3:std", "whisper:block4", "whisper:block4:std"),
}


def raw_prosody(x: np.ndarray) -> np.ndarray:
    """Our own prosody of one window's samples: monitor.prosody's, which began here."""
    return prosody.window_prosody(x)


def windows_and_samples(x: np.ndarray, stride: int = WINDOW_FRAMES) -> tuple[np.ndarray, list]:
    """stream_windows(x, stride) and, for each window, the samples under its frames."""
    windows = stream_windows(x, stride)
    return windows, [x[k * stride * HOP: k * stride * HOP + WINDOW_SAMPLES] for k in range(len(windows))]


def whisper_pooled(whisper: WhisperEncoder, segs: list[np.ndarray]) -> np.ndarray:
    """(n, WHISPER_BLOCKS, len(POOLINGS), WIDTH): each of the first blocks' states of each window,
    pooled over positions in each of POOLINGS' ways."""
    f = whisper.features(np.stack(segs), WHISPER_BLOCKS, POOLINGS)
    return f.reshape(len(f), WHISPER_BLOCKS, len(POOLINGS), WIDTH)


def smile():
    """opensmile's eGeMAPS v02 functionals (the `train` extra installs opensmile)."""
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals)


def corpus_features(clips: list[Clip], seed: int = 0, sm=None, network: Path | None = None,
                    encoder=None, whisper=None) -> dict:
    """Every non-overlapping window of the corpus's streams (the LOCO test windows, in their order):
    label, emotion, speaker and the feature families in three views (VIEWS): as recorded, a training
    copy through a random recording condition, and loco.conditioned's worse recording of the same
    stream, with `network`'s own scores of those last windows. sm: smile() for eGeMAPS, or None;
    encoder: a monitor.voice_encoder.VoiceEncoder, or None; whisper: a
    monitor.whisper_encoder.WhisperEncoder, or None."""
    from model.augment import recording_condition

    scorer = Scorer(network) if network is not None else None
    fams = ("window_stats", "raw", "egemaps", "voice", "whisper")
    out: dict[str, list] = {f"{v}{f}": [] for v in VIEWS for f in fams}
    out.update({k: [] for k in ("c_network", "network_first", "y", "emotion", "speaker")})
    audio = load_all(clips)
    for i, s in enumerate(build_streams(clips, audio, seed)):
        x = loop_to_window(s.audio)
        # Training copies: a condition per corpus and stream (29, as head_inputs.stream_stats). The
        # test view: loco.conditioned's seed and stream order, so the LOCO report's own condition.
        train_rng = np.random.default_rng([seed, 29, zlib.crc32(s.corpus.encode()), i])
        views = {"": x, "t_": recording_condition(x, train_rng),
                 "c_": recording_condition(s.audio, np.random.default_rng([seed, 31, i]))}
        lengths = []
        for v, a in views.items():
            windows, segs = windows_and_samples(a)
            lengths.append(len(windows))
            for w, seg in zip(windows, segs, strict=True):
                out[v + "window_stats"].append(window_stats(w))
                out[v + "raw"].append(raw_prosody(seg))
                if sm is not None:
                    out[v + "egemaps"].append(sm.process_signal(seg, SAMPLE_RATE).values[0])
            if encoder is not None:
                wv = WindowVoice(encoder)
                wv.fill(a)
                out[v + "voice"] += [wv(seg, k * WINDOW_FRAMES * HOP) for k, seg in enumerate(segs)]
            if whisper is not None:
                out[v + "whisper"] += list(whisper_pooled(whisper, segs))
            if scorer is not None and v == "c_":
                out["c_network"] += [scorer.cnn_score(w) for w in windows]
            if scorer is not None and v == "" and i == 0:  # to match the run's scores against
                out["network_first"].append(scorer.cnn_score(windows[0]))
        assert len(set(lengths)) == 1  # the views share the stream's length
        n = lengths[0]
        out["y"] += [-1 if s.label is None else s.label] * n
        out["emotion"] += [s.emotion] * n
        out["speaker"] += [s.speaker] * n
    floats = {v + f for v in VIEWS for f in fams}
    return {k: np.array(v, dtype=np.float32 if k in floats else None) for k, v in out.items()}


def family(d: dict, name: str, view: str = "", egemaps_names: tuple[str, ...] = ()) -> np.ndarray:
    """One feature family's columns in one view."""
    if name == "egemaps_f0_formants" or name.startswith("egemaps:"):
        prefixes = EGEMAPS_F0_FORMANTS if name == "egemaps_f0_formants" else \
            EGEMAPS_GROUPS[name.removeprefix("egemaps:")]
        cols = [i for i, n in enumerate(egemaps_names) if n.startswith(prefixes)]
        return d[view + "egemaps"][:, cols]
    if name.startswith("whisper:"):
        layer, _, pooling = name.removeprefix("whisper:").partition(":")
        return d[view + "whisper"][:, LAYERS.index(layer), POOLINGS.index(pooling or "mean")]
    if name in RAW_GROUPS:
        return d[view + "raw"][:, RAW_GROUPS[name]]
    return d[view + {"window_stats": "window_stats", "egemaps": "egemaps",
                     "voice_encoder": "voice"}[name]]


def loco_aucs(feats: dict[str, dict], networks: dict[str, np.ndarray], families: tuple[str, ...],
              view: str = "", egemaps_names: tuple[str, ...] = (), form: str = "linear"
              ) -> dict[str, dict]:
    """Per held-out corpus: the head's AUC alone and fused with the network (two-class corpora).

    The head is trained, like the shipped one, on the other corpora's windows as recorded and their
    training copies. view "c_": tested on the held-out corpus's worse-recording windows (networks
    then holds the network's scores of those)."""
    from sklearn.metrics import roc_auc_score

    x = {(c, v): np.hstack([family(d, f, v, egemaps_names) for f in families])
         for c, d in feats.items() for v in VIEWS}
    keep = {c: d["y"] >= 0 for c, d in feats.items()}
    rows = {}
    for held in feats:
        train = [(c, v) for c in feats if c != held for v in ("", "t_")]
        meta = {"y": np.concatenate([feats[c]["y"][keep[c]] for c, _ in train]),
                "corpus": np.concatenate([np.full(keep[c].sum(), c) for c, _ in train]),
                "emotion": np.concatenate([feats[c]["emotion"][keep[c]] for c, _ in train])}
        head = fit_head(np.vstack([x[c, v][keep[c]] for c, v in train]), meta, C, EMOTION_WEIGHT,
                        form)
        h = np.array([head.logit(v) for v in x[held, view]])
        y = feats[held]["y"]
        lab = keep[held]
        row = {"called_negative_head": round(float(np.mean(h[lab] > 0)), 4)}
        if len(set(y[lab].tolist())) == 2:
            row["head_auc"] = round(float(roc_auc_score(y[lab], h[lab])), 4)
            if held in networks:
                row["network_auc"] = round(float(roc_auc_score(y[lab], networks[held][lab])), 4)
                row["fused_auc"] = round(float(roc_auc_score(y[lab], fuse(networks[held][lab], h[lab]))), 4)
        rows[held] = row
    return rows


def within_aucs(feats: dict[str, dict], families: tuple[str, ...], egemaps_names: tuple[str, ...] = (),
                form: str = "linear", folds: int = 5) -> dict[str, float]:
    """Per corpus of two classes and several speakers: the head's AUC inside the corpus, trained on
    its other speakers (speaker-grouped, up to `folds` folds; as recorded and their training copies)
    and tested on each speaker's windows as recorded. What the inputs can tell apart where there is
    no shift of language, speakers' population or recording chain: against the LOCO AUC, how much of
    what is lost is the shift."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    out = {}
    for c, d in feats.items():
        keep = d["y"] >= 0
        y, spk = d["y"][keep], d["speaker"][keep]
        x = {v: np.hstack([family(d, f, v, egemaps_names) for f in families])[keep] for v in ("", "t_")}
        speakers = len(set(spk.tolist()))
        if len(set(y.tolist())) < 2 or speakers < 2:
            continue
        s = np.full(len(y), np.nan)
        for tr, te in GroupKFold(min(folds, speakers)).split(y, y, spk):
            if len(set(y[tr].tolist())) < 2:
                continue
            meta = {"y": np.concatenate([y[tr]] * 2), "corpus": np.full(2 * len(tr), c),
                    "emotion": np.concatenate([d["emotion"][keep][tr]] * 2)}
            head = fit_head(np.vstack([x[""][tr], x["t_"][tr]]), meta, C, EMOTION_WEIGHT, form)
            s[te] = [head.logit(v) for v in x[""][te]]
        scored = ~np.isnan(s)
        if len(set(y[scored].tolist())) == 2:
            out[c] = round(float(roc_auc_score(y[scored], s[scored])), 4)
    return out


def summarize(rows: dict[str, dict], base: dict[str, dict] | None) -> dict:
    """Means over the two-class corpora, and on how many the fused AUC beats the `base` set's."""
    two = [c for c, r in rows.items() if "head_auc" in r]
    out = {"head_auc_mean": round(float(np.mean([rows[c]["head_auc"] for c in two])), 4)}
    if two and all("fused_auc" in rows[c] for c in two):
        out["fused_auc_mean"] = round(float(np.mean([rows[c]["fused_auc"] for c in two])), 4)
        if base is not None:
            out["corpora_fused_better_than_window_stats"] = sum(
                rows[c]["fused_auc"] > base[c]["fused_auc"] for c in two)
    within = [c for c in two if "within_auc" in rows[c]]
    if within:
        out["within_auc_mean"] = round(float(np.mean([rows[c]["within_auc"] for c in within])), 4)
        out["head_auc_mean_same_corpora"] = round(float(np.mean([rows[c]["head_auc"] for c in within])), 4)
    out["corpora"] = len(two)
    return out


def check_networks(folder: Path, corpora: list[str]) -> int:
    """Before any decoding: every corpus's fold network (int8, no stats head) and its scores are in
    `folder`. Returns the seed the networks' run built its streams with."""
    if not folder.is_dir():
        raise SpecmonError(f"{folder}: not a folder")
    seeds = set()
    for c in corpora:
        for f in (folder / f"{c}.tflite", folder / f"{c}-scores.npz"):
            if not f.is_file():
                raise SpecmonError(f"{f}: not found (--networks wants a LOCO --work folder)")
        info = read_model_info(folder / f"{c}.tflite")
        if info.head is not None:
            raise SpecmonError(f"{folder / c}.tflite has a stats head: --networks wants the folder of a "
                               "--no-stats-head LOCO run")
        seeds.add(int(info.meta.get("recipe", {}).get("seed", 0)))
    if len(seeds) != 1:
        raise SpecmonError(f"{folder}: fold networks of different seeds ({sorted(seeds)})")
    return seeds.pop()


def network_scores(folder: Path, corpus: str, d: dict) -> np.ndarray:
    """The fold network's scores of the corpus's windows, checked to be these windows."""
    f = folder / f"{corpus}-scores.npz"
    try:
        z = np.load(f)
        s, y, spk, emo = z["s"], z["y"], z["speaker"], z["emotion"]
    except (OSError, ValueError, KeyError) as e:
        raise SpecmonError(f"{f}: not a LOCO scores file ({e})") from None
    same = (len(s) == len(d["y"]) and np.array_equal(y, d["y"]) and np.array_equal(spk, d["speaker"])
            and np.array_equal(emo, d["emotion"]) and abs(s[0] - d["network_first"][0]) < 1e-6)
    if not same:
        raise SpecmonError(f"{f}: {len(s)} scores that are not of these {len(d['y'])} windows (a run "
                           "on another manifest, subset or seed?)")
    return s


def extraction_ms(clips: list[Clip], sm=None, n: int = 40, encoder=None,
                  whisper=None) -> dict[str, float]:
    """Each family's extraction time, ms per window (median over up to `n` windows of `clips`),
    measured in this process alone: the parallel extraction would time the workers' contention."""
    windows, segs = windows_and_samples(loop_to_window(build_streams(clips, load_all(clips))[0].audio),
                                        stride=31)
    windows, segs = windows[:n], segs[:n]
    fns = {"window_stats": lambda i: window_stats(windows[i]),
           "raw_prosody": lambda i: raw_prosody(segs[i])}
    if sm is not None:
        fns["egemaps"] = lambda i: sm.process_signal(segs[i], SAMPLE_RATE)
    if encoder is not None:
        fns["voice_encoder"] = lambda i: WindowVoice(encoder)(segs[i], 0)  # all its partials
    if whisper is not None:
        fns["whisper"] = lambda i: whisper.features(segs[i][None], WHISPER_BLOCKS)
    out = {}
    for name, fn in fns.items():
        fn(0)  # warm-up
        times = []
        for i in range(len(windows)):
            t = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t)
        out[name] = round(1000 * float(np.median(times)), 2)
    return out


def keep_features(folder: Path, feats: dict[str, dict], source: dict) -> None:
    """Each corpus's extracted windows as `<folder>/<corpus>.npz`, for later probes of other heads
    and feature sets on the same windows (--features-from) without an hour of extraction; `source`
    (manifest hash, subset, seed) in `<folder>/kept.json`, checked when they are read."""
    folder.mkdir(parents=True, exist_ok=True)
    for corpus, d in feats.items():
        part = folder / f"{corpus}.part.npz"
        np.savez(part, **d)
        part.replace(folder / f"{corpus}.npz")
    (folder / "kept.json").write_text(json.dumps(source, indent=2) + "\n")


def features_from(folder: Path, corpora: list[str], source: dict) -> dict[str, dict]:
    """What keep_features kept, for these corpora, if it was kept from the same `source`."""
    try:
        kept = json.loads((folder / "kept.json").read_text())
    except (OSError, ValueError) as e:
        raise SpecmonError(f"--features-from {folder}: not a --keep-features folder ({e})") from None
    if kept != source:
        differ = ", ".join(k for k in source if kept.get(k) != source[k])
        raise SpecmonError(f"--features-from {folder}: kept from another {differ}")
    feats = {}
    for c in corpora:
        try:
            with np.load(folder / f"{c}.npz") as z:
                feats[c] = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise SpecmonError(f"--features-from {folder}: {c}.npz unreadable ({e})") from None
    return feats


def _one_thread() -> None:
    # Two workers on two cores: BLAS threads in each would only contend.
    limit_threads(1)


def _features_of(args: tuple) -> tuple[str, dict, float]:
    corpus, clips, seed, egemaps, network, voice, whisper = args
    t0 = time.time()
    return corpus, corpus_features(clips, seed, smile() if egemaps else None, network,
                                   VoiceEncoder() if voice else None,
                                   WhisperEncoder(whisper) if whisper else None), time.time() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Leave-one-corpus-out probe of the stats head's inputs.")
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--networks", type=Path, default=None, help="the --work folder of a LOCO "
                    "--no-stats-head run on the same manifest and subset: its fold networks and "
                    "scores give the fused rows")
    ap.add_argument("--report", type=Path, required=True)
    ap.add_argument("--no-egemaps", action="store_true", help="without opensmile's eGeMAPS rows")
    ap.add_argument("--voice-encoder", action="store_true", help="also the rows of a pretrained "
                    "voice encoder's states (monitor/voice_encoder.py; ~90 ms a window)")
    ap.add_argument("--whisper", type=Path, default=None, help="also the rows of Whisper base's "
                    "encoder states, from this npz (scripts/convert_whisper.py writes it)")
    ap.add_argument("--speakers-per-corpus", type=int, default=0, help="quick runs: at most this "
                    "many speakers of each corpus (0: all)")
    ap.add_argument("--max-clips", type=int, default=0, help="quick runs: at most this many clips "
                    "per speaker and emotion (0: all)")
    ap.add_argument("--workers", type=int, default=2, help="corpora processed at once")
    ap.add_argument("--head", default="linear", help="the head's form, as loco --head: linear, "
                    "gated (by arousal) or multinomial (over the emotions)")
    ap.add_argument("--keep-features", type=Path, default=None, help="keep the extracted windows "
                    "in this folder (an npz per corpus) for --features-from")
    ap.add_argument("--features-from", type=Path, default=None, help="the windows a --keep-features "
                    "run extracted (same manifest and subset), instead of extracting them again")
    ap.add_argument("--sets", default="", help="only the feature sets whose name holds this text "
                    "(the window_stats row, the base of the comparison, always)")
    ap.add_argument("--within", action="store_true", help="also each corpus's AUC inside the "
                    "corpus (trained on its other speakers): how much of the LOCO loss is the shift")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        check_head(args.head)
        egemaps = not args.no_egemaps
        if egemaps:
            try:
                import opensmile  # noqa: F401
            except ImportError:
                raise SpecmonError("opensmile is not installed (pip install opensmile), or pass "
                                   "--no-egemaps") from None
        clips = subset(read_manifest(args.manifest), args.speakers_per_corpus, args.max_clips)
        corpora = sorted({c.corpus for c in clips})
        if len(corpora) < 3:
            raise SpecmonError("the probe needs at least 3 corpora (one held out, two to train on)")
        seed = check_networks(args.networks, corpora) if args.networks else 0
        nets = {c: args.networks / f"{c}.tflite" for c in corpora} if args.networks else {}
        if args.whisper is not None and not args.whisper.is_file():
            raise SpecmonError(f"--whisper {args.whisper}: not found (scripts/convert_whisper.py "
                               "writes it)")
        # What kept windows must have been extracted from to stand in for an extraction now.
        source = {"manifest_sha256": sha256_of(args.manifest),
                  "speakers_per_corpus": args.speakers_per_corpus, "max_clips": args.max_clips,
                  "seed": seed, "egemaps": egemaps, "voice_encoder": args.voice_encoder,
                  "whisper": args.whisper is not None}
        jobs = [(c, [k for k in clips if k.corpus == c], seed, egemaps, nets.get(c), args.voice_encoder,
                 args.whisper) for c in corpora]
        if args.features_from is not None:
            feats = features_from(args.features_from, corpora, source)
        else:
            feats = {}
            with ProcessPoolExecutor(max_workers=max(1, args.workers), initializer=_one_thread) as pool:
                for corpus, d, sec in pool.map(_features_of, jobs):
                    feats[corpus] = d
                    print(f"{corpus}: {len(d['y'])} windows ({sec:.0f} s)", file=sys.stderr, flush=True)
            if args.keep_features is not None:
                keep_features(args.keep_features, feats, source)
        networks = {c: network_scores(args.networks, c, feats[c]) for c in nets}
        c_networks = {c: feats[c]["c_network"] for c in nets}
        longest = max(corpora, key=lambda c: sum(k.seconds for k in clips if k.corpus == c))
        sm = smile() if egemaps else None
        ms_per_window = None  # the extraction was timed by the run that kept the features
        if args.features_from is None:
            ms_per_window = extraction_ms(
                [k for k in clips if k.corpus == longest][:20], sm,
                encoder=VoiceEncoder() if args.voice_encoder else None,
                whisper=WhisperEncoder(args.whisper) if args.whisper else None)
        names = tuple(sm.feature_names) if sm is not None else ()
        sets = {k: v for k, v in FEATURE_SETS.items()
                if (egemaps or not any(f.startswith("egemaps") for f in v))
                and (args.voice_encoder or "voice_encoder" not in v)
                and (args.whisper or not any(f.startswith("whisper") for f in v))
                and (args.sets in k or k == "window_stats")}
        results, base, c_base = {}, None, None
        for name, fams in sets.items():
            rows = loco_aucs(feats, networks, fams, "", names, args.head)
            if args.within:
                for c, auc in within_aucs(feats, fams, names, args.head).items():
                    rows[c]["within_auc"] = auc
            c_rows = loco_aucs(feats, c_networks, fams, "c_", names, args.head)
            base, c_base = base or rows, c_base or c_rows
            results[name] = {"families": list(fams), "mean": summarize(rows, base), "per_corpus": rows,
                             "conditioned_mean": summarize(c_rows, c_base),
                             "conditioned_per_corpus": c_rows}
            m, cm = results[name]["mean"], results[name]["conditioned_mean"]
            if "within_auc_mean" in m:
                print(f"{name:64s} inside each corpus: head AUC {m['within_auc_mean']:.3f} against "
                      f"{m['head_auc_mean_same_corpora']:.3f} held out", file=sys.stderr, flush=True)
            print(f"{name:64s} head AUC {m['head_auc_mean']:.3f}  fused AUC "
                  f"{m.get('fused_auc_mean', float('nan')):.3f}   worse recording: head "
                  f"{cm['head_auc_mean']:.3f} fused {cm.get('fused_auc_mean', float('nan')):.3f}",
                  file=sys.stderr, flush=True)
        form = {"linear": "a logistic regression",
                "gated": "an arousal-gated head (three logistic regressions, "
                         "model.stats_head.fit_head)",
                "multinomial": "a softmax regression over the emotions (model.stats_head.fit_head)"
                }[args.head]
        rep = {"protocol": f"leave-one-corpus-out probe: {form} (C 0.01) on the other "
                           "corpora's windows, as recorded and through a random recording condition; "
                           "no validation speakers, no threshold (AUC only)",
               **provenance(args.manifest), "networks": str(args.networks) if args.networks else None,
               "head": args.head, "seed": seed, "windows": {c: len(d["y"]) for c, d in feats.items()},
               "raw_prosody_features": RAW_NAMES, "ms_per_window": ms_per_window,
               "features_from": str(args.features_from) if args.features_from else None,
               "feature_sets": results, "minutes": round((time.time() - t0) / 60, 1)}
        args.report.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.report.with_name(args.report.name + ".tmp")
        tmp.write_text(json.dumps(rep, indent=2) + "\n")
        tmp.replace(args.report)  # a whole report or the old one, never half of one
    except (SpecmonError, ValueError, OSError) as e:
        print(f"feature_probe: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
