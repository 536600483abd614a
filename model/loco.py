"""Leave-one-corpus-out (LOCO) evaluation of a training recipe: the card's headline.

Each corpus in turn is wholly unseen: its language, its speakers and its recording chain. Inside the
remaining corpora, validation speakers choose the epoch and the threshold (model/fit.py); the held-out
corpus is scored only once, with the exported int8 model and its float32 original, on its
single-emotion streams and on mixed streams (~20-s blocks of a speaker's emotions in random order).

    python -m model.loco --manifest ../shared/data/speech/manifest.csv --arch specmon \\
        --work runs/loco-specmon --report model/reports/loco_specmon.json
    python -m model.loco ... --folds ased,casia     # only these folds (e.g. two processes at once)
    python -m model.loco ... --report-only          # aggregate the fold files already in --work
    python -m model.loco ... --kfold 5              # speaker-independent k-fold, the second view

Every fold writes <work>/<corpus>.result.json (metrics, hashes) as soon as it ends; a rerun skips
folds whose file exists, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from model import metrics
from model.dataset import (
    Clip,
    WindowSet,
    build_streams,
    load_all,
    loco_splits,
    read_manifest,
    speaker_folds,
    split_by_speaker,
    validation_speakers,
)
from model.eval_features import EvalFeatures
from model.evaluate import score_components, score_windows
from model.fit import (
    EarlierNetwork,
    Recipe,
    best_threshold,
    check_head_cache,
    earlier_network,
    export_with_threshold,
    fit,
    log,
    predict,
    stats_head_for,
)
from model.recipe_args import add_recipe_arguments, recipe_from
from monitor.errors import SpecmonError
from monitor.scorer import float_model_path, sha256_of
from monitor.threads import limit_threads
from monitor.window_stats import cnn_logit

HEADLINE = ("balanced_accuracy", "roc_auc", "f1", "precision", "recall", "specificity")


def code_dirty() -> bool:
    """Whether model/ or monitor/ differ from the commit now."""
    try:
        # From the repository's top: the pathspecs are relative to the working directory.
        return bool(subprocess.run(["git", "status", "--porcelain", "--", "model", "monitor"],
                                   capture_output=True, text=True,
                                   cwd=Path(__file__).resolve().parents[1]).stdout.strip())
    except OSError:
        return False


def provenance(manifest: Path) -> dict:
    """What a report must record to be reproduced: commit (the one this process started from),
    data, machine. git_dirty: the code differed from that commit when the process started (what it
    runs) or differs now (what it may have imported since)."""
    dirty = DIRTY_AT_START or code_dirty()
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"git_commit": COMMIT_AT_START, "git_dirty": dirty,
            "manifest_sha256": sha256_of(manifest),
            "machine": {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()}}


def provenance_commit() -> str:
    """The commit the fold ran from (a LOCO run can span commits when resumed)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


MIXED_STRIDE = 31  # columns (~1 s) between the mixed streams' windows, a monitor's stride
COMMIT_AT_START = provenance_commit()  # the code this process runs, whatever is committed later
DIRTY_AT_START = code_dirty()  # ... unless it was not committed yet


def score_parts(model: Path, parts) -> tuple[WindowSet, np.ndarray]:
    """Score window sets one at a time, dropping each one's windows once scored: their labels and
    provenance joined (without windows) and their scores. For views too large to hold at once."""
    kept, scores = [], []
    for ws in parts:
        scores.append(score_windows(model, ws))
        kept.append(dataclasses.replace(ws, x=ws.x[:0]))
    return WindowSet.join(kept), np.concatenate(scores)


def conditioned(streams: list, seed: int, features: EvalFeatures):
    """The test streams once more, one at a time, each through a random recording condition (a
    microphone response, a room half the time, noise at 10-30 dB SNR): how the fold's model holds
    up when the recording chain is worse than the corpus's."""
    from model.augment import recording_condition

    for i, st in enumerate(streams):
        audio = recording_condition(st.audio, np.random.default_rng([seed, 31, i]))
        yield features.windows([dataclasses.replace(st, audio=audio)])


def component_aucs(y: np.ndarray, net: np.ndarray, head: np.ndarray | None) -> dict:
    """Test ROC AUC of the network alone and of the stats head alone (the ablation of the fusion)."""
    from sklearn.metrics import roc_auc_score

    lab = y >= 0
    if head is None or len(set(y[lab].tolist())) < 2:
        return {}
    return {"network_auc": round(float(roc_auc_score(y[lab], net[lab])), 4),
            "stats_head_auc": round(float(roc_auc_score(y[lab], head[lab])), 4)}


def run_fold(corpus: str, train: list[Clip], test: list[Clip], audio: dict, recipe: Recipe,
             work: Path, earlier: EarlierNetwork | None = None, head_cache: Path | None = None,
             mixed_stride: int = MIXED_STRIDE) -> dict:
    """Train on `train` (validation speakers inside it), score the unseen `test` clips
    (`head_cache`: a folder for the stats head's training inputs, model.head_inputs.stream_stats,
    and the evaluation windows' features, model.eval_features; `mixed_stride`: columns between
    the mixed streams' windows)."""
    t0 = time.time()
    # The evaluation windows' features are kept beside the head's inputs (model/eval_features.py).
    features = EvalFeatures(head_cache, recipe.head_prosody, recipe.head_encoder, log)
    val_spk = validation_speakers(train, seed=recipe.seed)
    tr = [c for c in train if c.speaker not in val_spk]
    va = [c for c in train if c.speaker in val_spk]
    assert not ({c.speaker for c in train} & {c.speaker for c in test}), "test speaker in training"
    out = work / f"{corpus}.tflite"
    f32 = float_model_path(out)
    if earlier is None:
        model, info, vws, calib = fit(tr, va, audio, recipe, tag=f"[{corpus}] ", features=features)
        p_val = predict(model, vws.x[vws.y >= 0])
    else:
        # The fold's network as trained by an earlier run of the same protocol (checked: same
        # validation speakers); only what comes after the network is fitted again.
        model, calib = None, []
        info = {**earlier.fit, "network_from": str(earlier.int8)}
        vws = features.windows(build_streams(va, audio, recipe.seed))
        p_val = earlier.validation_scores(vws)
    meta = {"fold": corpus, "recipe": recipe.to_dict()}
    head, info["stats_head"], unseen = stats_head_for(tr, audio, vws, p_val, recipe, head_cache)
    if head:
        meta["stats_head"] = head
    if earlier is not None:
        earlier.place(out)
    info.update(export_with_threshold(model, calib, vws, out, meta, unseen))
    thr = info["threshold"]
    streams = build_streams(test, audio, recipe.seed)
    ws = features.windows(streams)
    s, s_net, s_head = score_components(out, ws)
    s_f = score_windows(f32, ws)
    # Mixed streams one speaker at a time: at a 1-s stride they are 4x the windows of the streams.
    mws, s_m = score_parts(out, features.mixed(streams, recipe.seed, mixed_stride))
    cws, s_c = score_parts(out, conditioned(streams, recipe.seed, features))
    rep = {
        "corpus": corpus,
        "corpora": sorted({c.corpus for c in test}),
        "language": sorted({c.language for c in test}),
        "test_speakers": len({c.speaker for c in test}),
        "threshold": thr,
        "int8": metrics.full(ws, s, thr),
        "float32": metrics.window_metrics(ws.y[ws.y >= 0], s_f[ws.y >= 0], thr),
        "int8_float32_label_agreement": round(float(np.mean((s >= thr) == (s_f >= thr))), 4),
        "components_int8": component_aucs(ws.y, s_net, s_head),
        "conditioned": metrics.full(cws, s_c, thr),
        "mixed": {**metrics.full(mws, s_m, thr), "block_s": 20.0, "stride_frames": mixed_stride},
        "fit": info,
        "model_sha256": {out.name: sha256_of(out), f32.name: sha256_of(f32)},
        "minutes": round((time.time() - t0) / 60, 2),
        # --head-cache: evaluation features read back take none of those minutes
        **({"eval_features": features.counts()} if head_cache else {}),
        "git_commit": COMMIT_AT_START,
    }
    parts = {} if s_head is None else {"s_net": s_net, "head_logit": s_head}
    np.savez_compressed(work / f"{corpus}-scores.npz", s=s, s_f=s_f, y=ws.y, emotion=ws.emotion,
                        speaker=ws.speaker, s_mixed=s_m, y_mixed=mws.y, emotion_mixed=mws.emotion,
                        **parts)
    return rep


def mean_defined(values: list) -> float | None:
    """The mean of the values a fold could measure (a tiny run's mixed stream may hold one class
    only); None when no fold could."""
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def aggregate(folds: list[dict]) -> dict:
    """Per-corpus rows, the mean over corpora, and emotion shares (mean over corpora that have it)."""
    rows = {f["corpus"]: f for f in folds}
    two_class = [f for f in folds if f["int8"]["windows"]["balanced_accuracy"] is not None]
    mean = {k: mean_defined([f["int8"]["windows"][k] for f in two_class]) for k in HEADLINE}
    mean["min_balanced_accuracy"] = min(f["int8"]["windows"]["balanced_accuracy"] for f in two_class)
    mean["corpora"] = [f["corpus"] for f in two_class]
    mixed = {k: mean_defined([f["mixed"]["windows"][k] for f in two_class])
             for k in ("balanced_accuracy", "roc_auc", "f1")}
    conditioned = {k: mean_defined([f["conditioned"]["windows"][k] for f in two_class])
                   for k in ("balanced_accuracy", "roc_auc", "f1")
                   if all("conditioned" in f for f in two_class)}
    # Folds whose mixed (worse-recording) streams could not be measured: fewer in those means.
    for view, means in (("mixed", mixed), ("conditioned", conditioned)):
        undefined = [f["corpus"] for f in two_class
                     if view in f and f[view]["windows"]["balanced_accuracy"] is None]
        if undefined and means:
            means["folds_undefined"] = undefined
    emotions = sorted({e for f in folds for e in f["int8"]["per_emotion"]})
    emo = {}
    for e in emotions:
        vals = [f["int8"]["per_emotion"][e]["called_negative"] for f in folds
                if e in f["int8"]["per_emotion"]]
        stream = [f["int8"]["per_stream"]["per_emotion"][e]["called_negative"] for f in folds
                  if e in f["int8"]["per_stream"]["per_emotion"]]
        mix = [f["mixed"]["per_emotion"][e]["called_negative"] for f in folds
               if e in f["mixed"]["per_emotion"]]
        emo[e] = {"corpora": len(vals), "called_negative": round(float(np.mean(vals)), 4),
                  "streams_called_negative": round(float(np.mean(stream)), 4),
                  "mixed_called_negative": round(float(np.mean(mix)), 4) if mix else None}
    stream_bacc = [f["int8"]["per_stream"]["balanced_accuracy"] for f in two_class]
    return {
        "mean_over_corpora": mean,
        "mixed_mean_over_corpora": mixed,
        "conditioned_mean_over_corpora": conditioned,
        "components_mean_auc": {k: mean_defined([f["components_int8"][k] for f in two_class])
                                for k in ("network_auc", "stats_head_auc")
                                if all(k in f.get("components_int8", {}) for f in two_class)},
        "per_stream_balanced_accuracy_mean": mean_defined(stream_bacc),
        "per_emotion_mean_over_corpora": emo,
        "int8_float32_label_agreement_min": min(f["int8_float32_label_agreement"] for f in folds),
        "float32_mean_balanced_accuracy": round(float(np.mean(
            [f["float32"]["balanced_accuracy"] for f in two_class])), 4),
        "per_corpus": rows,
    }


def diagnostics(work: Path, names: list[str]) -> dict:
    """What the fold scores on disk (<work>/<corpus>-scores.npz, int8) say beyond the headline,
    mean over the corpora that have each:
    - emotion_pair_auc: each negative emotion against each non-negative one (metrics);
    - hindsight_threshold: each fold's balanced accuracy at the threshold of the validation rule's
      grid (model.fit.best_threshold) that is best on the fold's own test windows. No rule on that
      grid can do better without the test labels: it splits the headline's shortfall into what the
      threshold costs and what the ranking (AUC) does;
    - hindsight_fusion: the test AUC were the network's logit weighted w and the head's 1 - w
      (shipped: w = 0.5), for folds whose scores keep both parts: whether the fusion, set a priori,
      leaves ranking on the table for unseen corpora.
    Empty when no fold has its scores (a report aggregated elsewhere)."""
    pairs: dict[str, dict[str, list[float]]] = {}
    per_corpus, hind, fusion = {}, {}, {}
    for name in names:
        f = work / f"{name}-scores.npz"
        if not f.is_file():
            continue
        d = np.load(f)
        per_corpus[name] = metrics.emotion_pair_auc(d["emotion"], d["s"])
        for n, row in per_corpus[name].items():
            for o, auc in row.items():
                pairs.setdefault(n, {}).setdefault(o, []).append(auc)
        lab = d["y"] >= 0
        if len(set(d["y"][lab].tolist())) == 2:
            thr, bacc = best_threshold(d["y"][lab], d["s"][lab])
            hind[name] = {"threshold": thr, "balanced_accuracy": round(bacc, 4)}
            if "head_logit" in d.files:
                fusion[name] = fusion_aucs(d["y"][lab], d["s_net"][lab], d["head_logit"][lab])
    if not per_corpus:
        return {}
    mean = {n: {o: {"auc": round(float(np.mean(v)), 4), "corpora": len(v)} for o, v in row.items()}
            for n, row in pairs.items()}
    out = {"emotion_pair_auc": mean, "emotion_pair_auc_per_corpus": per_corpus,
           "hindsight_threshold": {
               "per_corpus": hind,
               "mean_balanced_accuracy": mean_defined([h["balanced_accuracy"] for h in hind.values()])}}
    if fusion:
        out["hindsight_fusion"] = {"per_corpus": fusion, "mean_auc": {
            w: mean_defined([f[w] for f in fusion.values()]) for w in next(iter(fusion.values()))}}
    return out


FUSION_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the network's share of the fused logit


def fusion_aucs(y: np.ndarray, p_net: np.ndarray, head_logit: np.ndarray) -> dict[str, float]:
    """Test AUC of w * logit(network) + (1 - w) * head logit for each w in FUSION_WEIGHTS."""
    from sklearn.metrics import roc_auc_score

    net = cnn_logit(p_net)
    return {f"{w:.2f}": round(float(roc_auc_score(y, w * net + (1.0 - w) * head_logit)), 4)
            for w in FUSION_WEIGHTS}


def plot_roc(work: Path, names: list[str], out: Path, title: str) -> None:
    """ROC of every held-out corpus (int8, negative against everything else) from the fold scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for name in names:
        f = work / f"{name}-scores.npz"
        if not f.is_file():
            continue
        d = np.load(f)
        lab = d["y"] >= 0
        y, s = d["y"][lab], d["s"][lab]
        if len(set(y.tolist())) == 2:
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, lw=1.2, label=f"{name} ({roc_auc_score(y, s):.2f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate (non-negative called negative)", ylabel="true positive rate",
           title=title)
    ax.legend(loc="lower right", fontsize=8, title="held-out corpus (AUC)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Leave-one-corpus-out evaluation of a training recipe.")
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True, help="folder for fold models and results")
    ap.add_argument("--report", type=Path, default=None, help="aggregate report JSON to write")
    add_recipe_arguments(ap)
    ap.add_argument("--folds", default=None, help="only these held-out corpora (comma list)")
    ap.add_argument("--speakers-per-corpus", type=int, default=0, help="at most this many speakers "
                    "of each corpus (0: all), for quick runs")
    ap.add_argument("--max-clips", type=int, default=0, help="at most this many clips per speaker "
                    "and emotion (0: all), for quick runs")
    ap.add_argument("--networks-from", type=Path, default=None, help="reuse each fold's network "
                    "from this earlier --work folder (same protocol); fit only the stats head and "
                    "threshold again")
    ap.add_argument("--mixed-stride", type=int, default=MIXED_STRIDE, help="columns between the "
                    "mixed streams' windows (default %(default)s, ~1 s; 62 halves the windows an "
                    "encoder's states must be computed for)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--kfold", type=int, default=0, help="speaker-independent k-fold instead of "
                    "leave-one-corpus-out (the second view)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.time()
    try:
        limit_threads(args.threads)
        if args.mixed_stride < 1:
            raise SpecmonError(f"--mixed-stride {args.mixed_stride}: at least one column")
        recipe = recipe_from(args)
        from model.augment import Augment
        from model.cnn import builder

        builder(args.arch)  # fail before any decoding
        Augment.from_names(args.augment)
        if args.head_cache:
            check_head_cache(args.head_cache, recipe)
        clips = subset(read_manifest(args.manifest), args.speakers_per_corpus, args.max_clips)
        splits = kfold_splits(clips, args.kfold, args.seed) if args.kfold else loco_splits(clips)
        names = [name for name, _, _ in splits]
        if args.folds:
            want = {f.strip() for f in args.folds.split(",") if f.strip()}
            unknown = want - {c for c, _, _ in splits}
            if unknown:
                raise SpecmonError(f"no corpus named {', '.join(sorted(unknown))} in the manifest")
            splits = [s for s in splits if s[0] in want]
        args.work.mkdir(parents=True, exist_ok=True)
        # A fold's result is <name>.result.json (<name>.json is its model's sidecar).
        todo = [s for s in splits if not (args.work / f"{s[0]}.result.json").is_file()]
        earlier = {}
        if todo and args.networks_from and not args.report_only:
            for corpus, train, _ in todo:  # every reused network is checked before any decoding
                earlier[corpus] = earlier_network(
                    args.networks_from / f"{corpus}.tflite",
                    args.networks_from / f"{corpus}.result.json",
                    validation_speakers(train, seed=recipe.seed), recipe)
        if todo and not args.report_only:
            log(f"decoding {len(clips)} clips ...")
            audio = load_all(clips)
            for i, (corpus, train, test) in enumerate(todo):
                log(f"fold {i + 1}/{len(todo)}: held out {corpus} ({len(test)} clips)")
                rep = run_fold(corpus, train, test, audio, recipe, args.work, earlier.get(corpus),
                               args.head_cache, args.mixed_stride)
                rep["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                (args.work / f"{corpus}.result.json").write_text(json.dumps(rep, indent=2) + "\n")
                w = rep["int8"]["windows"]
                log(f"fold {corpus}: balanced accuracy {w['balanced_accuracy']}  AUC {w['roc_auc']}  "
                    f"threshold {rep['threshold']}  ({rep['minutes']} min)")
        folds = [json.loads((args.work / f"{c}.result.json").read_text()) for c in names
                 if (args.work / f"{c}.result.json").is_file()]
        if not folds:
            raise SpecmonError(f"{args.work}: no fold results to report")
        protocol = (f"speaker-independent {args.kfold}-fold" if args.kfold else "leave-one-corpus-out")
        rep = {"protocol": f"{protocol}; epoch and threshold chosen on validation speakers inside "
                           "the training folds",
               "recipe": recipe.to_dict(), **provenance(args.manifest), **aggregate(folds),
               "diagnostics": diagnostics(args.work, [f["corpus"] for f in folds]),
               "fold_minutes_total": round(sum(f["minutes"] for f in folds), 1),
               # --head-cache: folds whose head inputs an earlier run computed (not in their minutes)
               "head_inputs_cached_folds": sorted(f["corpus"] for f in folds if f.get("fit", {}).get(
                   "stats_head", {}).get("inputs_cached")),
               "peak_rss_mb": max(f.get("peak_rss_mb", 0) for f in folds),
               "report_minutes": round((time.time() - t0) / 60, 1)}
        path = args.report or args.work / "loco_report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rep, indent=2) + "\n")
        plot_roc(args.work, names, path.with_suffix(".png"),
                 f"{protocol}, {args.arch}, int8")
        m = rep["mean_over_corpora"]
        log(f"{protocol}: mean over {len(m['corpora'])} folds: balanced accuracy {m['balanced_accuracy']} "
            f"(min {m['min_balanced_accuracy']})  AUC {m['roc_auc']}  F1 {m['f1']}  -> {path}")
    except (SpecmonError, ValueError) as e:
        print(f"loco: error: {e}", file=sys.stderr)
        return 2
    return 0


def kfold_splits(clips: list[Clip], k: int, seed: int) -> list[tuple[str, list[Clip], list[Clip]]]:
    """Speaker-independent k-fold: (fold name, training clips, test clips)."""
    return [(f"fold{i + 1}", *split_by_speaker(clips, set(f)))
            for i, f in enumerate(speaker_folds(clips, k, seed))]


def subset(clips: list[Clip], speakers_per_corpus: int, max_clips: int) -> list[Clip]:
    """A smaller, deterministic manifest for quick runs."""
    if speakers_per_corpus:
        keep: set[str] = set()
        for corpus in sorted({c.corpus for c in clips}):
            keep.update(sorted({c.speaker for c in clips if c.corpus == corpus})[:speakers_per_corpus])
        clips = [c for c in clips if c.speaker in keep]
    if max_clips:
        seen: dict = {}
        kept = []
        for c in clips:
            seen[(c.speaker, c.emotion)] = seen.get((c.speaker, c.emotion), 0) + 1
            if seen[(c.speaker, c.emotion)] <= max_clips:
                kept.append(c)
        clips = kept
    if not clips:
        raise SpecmonError("no clips left after the subset options")
    return clips


if __name__ == "__main__":
    sys.exit(main())
