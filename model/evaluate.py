"""Evaluation: per-window and per-speaker metrics, per corpus and emotion, ROC and histogram PNGs.

Runs TFLite models only (the int8 model and its float32 original), so it needs no TensorFlow.
    specmon evaluate --manifest M --model P [--speakers a,b] [--out DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from model.dataset import NEGATIVE, WindowSet, build_streams, eval_windows, load_all
from model.dataset import read_manifest as _read_manifest
from model.metrics import per_stream
from monitor.errors import SpecmonError
from monitor.scorer import DEFAULT_MODEL, Scorer, float_model_path
from monitor.window_stats import fuse


def score_windows(model_path: Path, ws: WindowSet) -> np.ndarray:
    """Scores of a window set (normalized windows and their prosody) through a TFLite model."""
    return scores_of(Scorer(model_path), ws)


def scores_of(scorer: Scorer, ws: WindowSet) -> np.ndarray:
    """scorer's score of every window of ws, in order."""
    return np.array([scorer.score_normalized(w, p) for w, p in ws.inputs()], dtype=np.float64)


def score_components(model: Path, ws: WindowSet) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One pass over the windows: the model's scores, the network's own, the stats head's logits
    (None without a head). The scores are Scorer.score_normalized's, window by window."""
    scorer = Scorer(model)
    net = np.array([scorer.cnn_score(w) for w in ws.x], dtype=np.float64)
    if scorer.head is None:
        return net, net, None
    head = np.array([scorer.head_logit(w, p) for w, p in ws.inputs()])
    return np.array([float(fuse(n, h)) for n, h in zip(net, head, strict=True)]), net, head


def binary_metrics(y: np.ndarray, s: np.ndarray, thr: float) -> dict:
    """accuracy, balanced accuracy, precision, recall, F1 (negative = positive class), ROC AUC,
    confusion matrix."""
    pred = (s >= thr).astype(int)
    out = {
        "n": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if len(set(y.tolist())) == 2
        else None,
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "confusion": confusion_matrix(y, pred, labels=[0, 1]).tolist(),  # rows true neu/neg
    }
    out["roc_auc"] = float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else None
    return out


def speaker_level(ws: WindowSet, s: np.ndarray, thr: float) -> dict:
    """Per-speaker decisions: the mean score of a speaker's windows of each class, thresholded."""
    ys, ss = [], []
    for spk in sorted(set(ws.speaker.tolist())):
        for label in (0, 1):
            m = (ws.speaker == spk) & (ws.y == label)
            if m.any():
                ys.append(label)
                ss.append(float(s[m].mean()))
    return binary_metrics(np.array(ys), np.array(ss), thr)


def report(ws: WindowSet, s: np.ndarray, thr: float, s_float: np.ndarray | None = None) -> dict:
    """The full metrics dictionary for scores s of the windows ws (int8 model)."""
    lab = ws.y >= 0
    rep: dict = {"threshold": thr, "overall": binary_metrics(ws.y[lab], s[lab], thr)}
    rep["speaker_level"] = speaker_level(ws, s, thr)  # it takes the labelled windows only
    rep["per_corpus"] = {
        c: binary_metrics(ws.y[lab & (ws.corpus == c)], s[lab & (ws.corpus == c)], thr)
        for c in sorted(set(ws.corpus[lab].tolist()))
    }
    rep["per_speaker_accuracy"] = {
        spk: float(np.mean((s[m] >= thr) == (ws.y[m] == 1)))
        for spk in sorted(set(ws.speaker[lab].tolist()))
        for m in [lab & (ws.speaker == spk)]
    }
    per_emotion = {}
    for e in sorted(set(ws.emotion.tolist())):
        m = ws.emotion == e
        share_neg = float(np.mean(s[m] >= thr))
        key = "recall" if e in NEGATIVE else "false_alarm_rate"
        per_emotion[e] = {"n": int(m.sum()), key: share_neg, "mean_score": float(s[m].mean())}
    rep["per_emotion"] = per_emotion
    rep["per_stream"] = per_stream(ws, s, thr)
    if s_float is not None:
        rep["float32"] = binary_metrics(ws.y[lab], s_float[lab], thr)
        rep["int8_vs_float32"] = {
            "label_agreement": float(np.mean((s >= thr) == (s_float >= thr))),
            "auc_drop": (rep["float32"]["roc_auc"] or 0) - (rep["overall"]["roc_auc"] or 0),
            "max_abs_score_diff": float(np.max(np.abs(s - s_float))),
        }
    return rep


def plot_roc_hist(ws: WindowSet, s: np.ndarray, thr: float, out_dir: Path, title: str) -> None:
    """roc.png (pooled and per corpus) and hist.png (scores by neutral / negative / other)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lab = ws.y >= 0
    fig, ax = plt.subplots(figsize=(5, 5))
    fpr, tpr, _ = roc_curve(ws.y[lab], s[lab])
    ax.plot(fpr, tpr, lw=2, label=f"pooled (AUC {roc_auc_score(ws.y[lab], s[lab]):.3f})")
    for c in sorted(set(ws.corpus[lab].tolist())):
        m = lab & (ws.corpus == c)
        if len(set(ws.y[m].tolist())) == 2:
            f, t, _ = roc_curve(ws.y[m], s[m])
            ax.plot(f, t, lw=1, alpha=0.7, label=f"{c} ({roc_auc_score(ws.y[m], s[m]):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate (non-negative called negative)", ylabel="true positive rate",
           title=f"ROC\n{title}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "roc.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 26)
    for name, m, col in (("not negative", ws.y == 0, "tab:blue"), ("negative", ws.y == 1, "tab:red"),
                         ("boredom (not trained on)", ws.y == -1, "tab:gray")):
        if m.any():
            ax.hist(s[m], bins=bins, alpha=0.55, color=col, label=f"{name} ({m.sum()})",
                    density=True)
    ax.axvline(thr, color="k", ls="--", lw=1, label=f"threshold {thr:.2f}")
    ax.set(xlabel="score (0 neutral - 1 negative)", ylabel="density", title="score histogram")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "hist.png", dpi=120)
    plt.close(fig)


def run_evaluation(manifest: Path, model: Path | None, float_model: Path | None,
                   speakers: str | None, out_dir: Path) -> dict:
    """The `specmon evaluate` command: writes report.json, roc.png and hist.png into out_dir."""
    model = Path(model or DEFAULT_MODEL)
    scorer = Scorer(model)  # fail early on a bad model, before decoding any audio
    if float_model is None:
        cand = float_model_path(model)
        float_model = cand if cand.is_file() else None
    clips = _read_manifest(manifest)
    if speakers:
        wanted = {s.strip() for s in speakers.split(",") if s.strip()}
        unknown = wanted - {c.speaker for c in clips}
        if unknown:
            raise SpecmonError(f"{manifest}: no clips for speaker(s) {', '.join(sorted(unknown))}")
        clips = [c for c in clips if c.speaker in wanted]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpecmonError(f"{out_dir}: cannot create ({e.strerror})") from None
    print(f"decoding {len(clips)} clips ...", file=sys.stderr)
    audio = load_all(clips)
    ws = eval_windows(build_streams(clips, audio), prosody=scorer.needs_prosody,
                      encoder=scorer.head_encoder)
    print(f"scoring {len(ws.y)} windows ...", file=sys.stderr)
    s = scores_of(scorer, ws)
    s_f = score_windows(float_model, ws) if float_model else None
    rep = report(ws, s, scorer.threshold, s_f)
    rep["model"] = str(model)
    rep["model_id"] = scorer.model_id
    (out_dir / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
    plot_roc_hist(ws, s, scorer.threshold, out_dir, scorer.model_id)
    o = rep["overall"]
    print(f"windows {o['n']}  balanced accuracy {o['balanced_accuracy'] or 0:.3f}  accuracy "
          f"{o['accuracy']:.3f}  precision {o['precision']:.3f}  recall {o['recall']:.3f}  "
          f"F1 {o['f1']:.3f}  AUC {o['roc_auc'] or 0:.3f}")
    for c, m in rep["per_corpus"].items():
        print(f"  {c:10s} n={m['n']:5d}  accuracy {m['accuracy']:.3f}  F1 {m['f1']:.3f}")
    if "int8_vs_float32" in rep:
        a = rep["int8_vs_float32"]
        print(f"int8 vs float32: label agreement {a['label_agreement']:.4f}, "
              f"AUC drop {a['auc_drop']:+.4f}")
    print(f"report: {out_dir / 'report.json'}, {out_dir / 'roc.png'}, {out_dir / 'hist.png'}")
    return rep
