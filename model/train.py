"""Train the CNN from a manifest, quantize it to int8, and (optionally) cross-validate the recipe.

    python -m model.train --manifest ../shared/data/speech/manifest.csv --out model/specmon.tflite
    python -m model.train --manifest M --cv 5 --report model/cv_report.json   # leave-speakers-out

Needs the `train` extra (TensorFlow). Progress goes to stderr, one line per epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from model.augment import Augment, degrade
from model.dataset import (
    Clip,
    TrainSampler,
    build_streams,
    eval_windows,
    load_all,
    read_manifest,
    speaker_folds,
    speakers_of,
    split_by_speaker,
)
from monitor.errors import SpecmonError


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_keras(clips: list[Clip], audio: dict, epochs: int, augment: Augment | None, seed: int,
                tag: str = ""):
    """Fit a fresh CNN on class-balanced windows of `clips`; returns (model, representative windows)."""
    import keras

    keras.utils.set_random_seed(seed)
    from model.cnn import build_cnn

    sampler = TrainSampler(build_streams(clips, audio, seed), audio, augment)
    model = build_cnn()
    steps = epochs * int(np.ceil(len(sampler) / 32))
    sched = keras.optimizers.schedules.CosineDecay(1e-3, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss="binary_crossentropy",
                  metrics=["accuracy"])
    t0 = time.time()
    # The next epoch's windows are made on a second thread while Keras trains on the current ones.
    with ThreadPoolExecutor(max_workers=1) as pool:
        rngs = [np.random.default_rng([seed, ep]) for ep in range(epochs)]
        pending = pool.submit(sampler.epoch, rngs[0])
        for ep in range(epochs):
            x, y = pending.result()
            if ep + 1 < epochs:
                pending = pool.submit(sampler.epoch, rngs[ep + 1])
            h = model.fit(x[..., None], y, batch_size=32, epochs=1, verbose=0, shuffle=True)
            done = time.time() - t0
            eta = done / (ep + 1) * (epochs - ep - 1)
            log(f"{tag}epoch {ep + 1:2d}/{epochs}  windows {len(y)}  loss {h.history['loss'][-1]:.3f}"
                f"  acc {h.history['accuracy'][-1]:.3f}  {done:5.0f} s  eta {eta:4.0f} s")
    # Representative windows for int8 calibration: un-augmented crops of the training streams.
    reps, _ = TrainSampler(sampler.streams, audio, None, 2, 2).epoch(np.random.default_rng(seed))
    return model, list(reps[:200])


def export_model(model, reps: list, out: Path, meta: dict) -> tuple[Path, Path]:
    from model.quantize import export

    f32 = export(model, out, reps, meta)
    return out, f32


def cross_validate(clips: list[Clip], audio: dict, k: int, epochs: int, augment: Augment | None,
                   seed: int, work: Path, threshold: float = 0.5, reuse: bool = False) -> dict:
    """Leave-speakers-out k-fold CV of the whole recipe (train, int8 export, score unseen speakers).

    Fold models are kept in `work`; with reuse=True, folds whose models exist are not retrained
    (e.g. to report at another threshold).
    """
    from model.dataset import WindowSet
    from model.evaluate import binary_metrics, plot_roc_hist, report, score_windows

    folds = speaker_folds(clips, k, seed)
    parts = []
    for i, test_spk in enumerate(folds):
        train, test = split_by_speaker(clips, set(test_spk))
        q = work / f"fold{i + 1}.tflite"
        f = q.with_name(q.stem + "-float32.tflite")
        if reuse and q.is_file() and f.is_file():
            log(f"fold {i + 1}/{k}: reusing {q}")
        else:
            log(f"fold {i + 1}/{k}: test speakers {', '.join(sorted(test_spk))}")
            model, reps = train_keras(train, audio, epochs, augment, seed + i, tag=f"[fold {i + 1}] ")
            export_model(model, reps, q, {"fold": i + 1, "test_speakers": sorted(test_spk)})
        streams = build_streams(test, audio, seed)
        ws = eval_windows(streams)
        # The same windows again through a fixed noisy, reverberant, band-limited condition.
        noisy = [dataclasses.replace(st, audio=degrade(st.audio, j)) for j, st in enumerate(streams)]
        ws_noisy = eval_windows(noisy)
        parts.append((ws, score_windows(q, ws.x), score_windows(f, ws.x),
                      score_windows(q, ws_noisy.x)))
        m = (ws.y >= 0)
        acc = np.mean((parts[-1][1][m] >= threshold) == (ws.y[m] == 1))
        log(f"fold {i + 1}/{k}: {m.sum()} windows, int8 accuracy {acc:.3f}")
    ws = WindowSet(
        np.zeros((0, 1, 1), np.float32),
        np.concatenate([p[0].y for p in parts]),
        np.concatenate([p[0].speaker for p in parts]),
        np.concatenate([p[0].corpus for p in parts]),
        np.concatenate([p[0].emotion for p in parts]),
    )
    s = np.concatenate([p[1] for p in parts])
    sf = np.concatenate([p[2] for p in parts])
    rep = report(ws, s, threshold, sf)
    s_noisy = np.concatenate([p[3] for p in parts])
    lab = ws.y >= 0
    rep["degraded"] = {
        "condition": "100 Hz-6 kHz band-pass, RT60 0.35 s reverberation, pink noise at 15 dB SNR",
        **binary_metrics(ws.y[lab], s_noisy[lab], threshold),
    }
    rep["threshold_sweep"] = {
        f"{t:.2f}": {**{key: round(v, 4) for key, v in binary_metrics(ws.y[lab], s[lab], t).items()
                        if key in ("accuracy", "precision", "recall", "f1")},
                     "sadness_recall": round(float(np.mean(s[ws.emotion == "sadness"] >= t)), 4),
                     "neutral_false_alarm": round(float(np.mean(s[ws.y == 0] >= t)), 4)}
        for t in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
    }
    rep["folds"] = [sorted(f) for f in folds]
    rep["epochs"] = epochs
    rep["augment"] = augment.describe() if augment else "none"
    rep["seed"] = seed
    plot_roc_hist(ws, s, threshold, work, f"unseen speakers: {k}-fold leave-speakers-out, int8")
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train, quantize and cross-validate the specmon CNN.")
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None, help="int8 .tflite to write (and -float32)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--augment", default="all", help="'all', 'none' or a list of "
                    "gain,noise,channel,reverb,mask")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cv", type=int, default=0, help="k for leave-speakers-out CV (0: none)")
    ap.add_argument("--report", type=Path, default=None, help="CV report JSON (with --cv)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the CV fold models "
                    "and plots (default: <report folder>/cv)")
    ap.add_argument("--reuse-folds", action="store_true", help="with --cv: do not retrain folds "
                    "whose models are already in --work")
    ap.add_argument("--threshold", type=float, default=0.4, help="decision threshold written into "
                    "the model's sidecar and used for the CV metrics (0.4 balanced precision and "
                    "recall in our CV)")
    ap.add_argument("--speakers", default=None, help="only these speakers (comma list), e.g. "
                    "for a quick run")
    ap.add_argument("--max-clips", type=int, default=0, help="at most this many clips per "
                    "speaker and emotion (0: all), for quick runs")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        augment = Augment.from_names(args.augment)
        clips = read_manifest(args.manifest)
        if args.speakers:
            keep = {s.strip() for s in args.speakers.split(",")}
            clips = [c for c in clips if c.speaker in keep]
        if args.max_clips:
            seen: dict = {}
            kept = []
            for c in clips:
                key = (c.speaker, c.emotion)
                seen[key] = seen.get(key, 0) + 1
                if seen[key] <= args.max_clips:
                    kept.append(c)
            clips = kept
        if not clips:
            raise SpecmonError(f"{args.manifest}: no clips left after --speakers/--max-clips")
        t0 = time.time()
        log(f"decoding {len(clips)} clips from {len(speakers_of(clips))} speakers ...")
        audio = load_all(clips)
        log(f"decoded in {time.time() - t0:.0f} s")
        meta = {
            "trained_on": sorted({c.corpus for c in clips}),
            "speakers": len(speakers_of(clips)),
            "epochs": args.epochs,
            "augment": augment.describe() if augment else "none",
            "seed": args.seed,
            "threshold": args.threshold,
        }
        if args.cv:
            work = args.work or (args.report.parent if args.report else Path("runs")) / "cv"
            work.mkdir(parents=True, exist_ok=True)
            rep = cross_validate(clips, audio, args.cv, args.epochs, augment, args.seed, work,
                                 args.threshold, args.reuse_folds)
            rep["minutes"] = round((time.time() - t0) / 60, 1)
            path = args.report or work / "cv_report.json"
            path.write_text(json.dumps(rep, indent=2) + "\n")
            o = rep["overall"]
            log(f"CV pooled: accuracy {o['accuracy']:.3f} precision {o['precision']:.3f} recall "
                f"{o['recall']:.3f} F1 {o['f1']:.3f} AUC {o['roc_auc']:.3f} -> {path}")
            for c, m in rep["per_corpus"].items():
                log(f"  {c:8s} accuracy {m['accuracy']:.3f} F1 {m['f1']:.3f} AUC {m['roc_auc']}")
            d = rep["degraded"]
            log(f"  degraded: accuracy {d['accuracy']:.3f} F1 {d['f1']:.3f} AUC {d['roc_auc']:.3f}")
            a = rep["int8_vs_float32"]
            log(f"  int8 vs float32: agreement {a['label_agreement']:.4f} AUC drop "
                f"{a['auc_drop']:+.4f}")
        if args.out:
            model, reps = train_keras(clips, audio, args.epochs, augment, args.seed)
            q, f = export_model(model, reps, args.out, meta)
            log(f"wrote {q} ({q.stat().st_size / 1024:.0f} KiB) and {f} in "
                f"{(time.time() - t0) / 60:.1f} min")
    except (SpecmonError, ValueError) as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
