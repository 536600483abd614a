"""Metrics of scored windows: what a user of the monitor would see on unseen speech.

- window level: balanced accuracy, ROC AUC, F1, precision, recall (negative is the positive class);
- per emotion: the share of windows called negative (recall for negative emotions, false alarms for
  the rest);
- per stream: one decision per (speaker, emotion) stream, negative when at least half its windows are;
- per emotion pair: the AUC of each negative emotion against each non-negative one (which confusions
  the score makes).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from model.dataset import NEGATIVE, NON_NEGATIVE, WindowSet


def _r(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 4)


def two_class_corpora(y: np.ndarray, corpus: np.ndarray) -> list[np.ndarray]:
    """A mask per corpus (sorted by name) whose windows hold both classes: the corpora that have a
    balanced accuracy and an AUC of their own."""
    masks = (corpus == c for c in sorted(set(corpus.tolist())))
    return [g for g in masks if len(set(y[g].tolist())) == 2]


def window_metrics(y: np.ndarray, s: np.ndarray, thr: float) -> dict:
    """Binary metrics of labelled windows (y in {0, 1}); class-dependent ones are None if one class."""
    pred = s >= thr
    both = len(set(y.tolist())) == 2
    out = {"n": int(len(y)), "n_negative": int((y == 1).sum()),
           "specificity": _r(np.mean(~pred[y == 0])) if (y == 0).any() else None,
           "recall": _r(recall_score(y, pred, zero_division=0)) if (y == 1).any() else None}
    out["balanced_accuracy"] = _r(balanced_accuracy_score(y, pred)) if both else None
    out["roc_auc"] = _r(roc_auc_score(y, s)) if both else None
    out["f1"] = _r(f1_score(y, pred, zero_division=0)) if both else None
    out["precision"] = _r(precision_score(y, pred, zero_division=0)) if both else None
    out["accuracy"] = _r(np.mean(pred == (y == 1)))
    return out


def per_emotion(ws: WindowSet, s: np.ndarray, thr: float) -> dict:
    """Share of each emotion's windows called negative, and its mean score."""
    return {e: {"n": int(m.sum()), "called_negative": _r(np.mean(s[m] >= thr)),
                "mean_score": _r(s[m].mean())}
            for e in sorted(set(ws.emotion.tolist())) for m in [ws.emotion == e]}


def per_stream(ws: WindowSet, s: np.ndarray, thr: float) -> dict:
    """One decision per (speaker, emotion) stream: negative when >= half of its windows are.

    Returns, per emotion, the number of streams and the share called negative, and the balanced
    accuracy of the stream decisions over labelled streams.
    """
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, key in enumerate(zip(ws.speaker.tolist(), ws.emotion.tolist(), strict=True)):
        groups[key].append(i)
    calls: dict[str, list[bool]] = defaultdict(list)
    ys, ps = [], []
    for (_spk, emo), idx in groups.items():
        neg = bool(np.mean(s[idx] >= thr) >= 0.5)
        calls[emo].append(neg)
        if ws.y[idx[0]] >= 0:
            ys.append(int(ws.y[idx[0]]))
            ps.append(neg)
    out = {"per_emotion": {e: {"streams": len(v), "called_negative": _r(np.mean(v))}
                           for e, v in sorted(calls.items())}}
    out["balanced_accuracy"] = (_r(balanced_accuracy_score(ys, ps)) if len(set(ys)) == 2 else None)
    return out


def full(ws: WindowSet, s: np.ndarray, thr: float) -> dict:
    """Window, per-emotion and per-stream metrics of a window set."""
    lab = ws.y >= 0
    return {"windows": window_metrics(ws.y[lab], s[lab], thr), "per_emotion": per_emotion(ws, s, thr),
            "per_stream": per_stream(ws, s, thr)}


def emotion_pair_auc(emotion: np.ndarray, s: np.ndarray, min_windows: int = 10) -> dict:
    """ROC AUC of each negative emotion's windows against each non-negative emotion's, for pairs
    with at least `min_windows` of each: {negative: {other: auc}}. Anger against happiness is
    valence at high arousal, sadness against calm valence at low arousal, anger against neutral
    mostly arousal: one AUC over all windows hides which of these a score gets wrong."""
    out: dict[str, dict[str, float]] = {}
    for n in NEGATIVE:
        a = s[emotion == n]
        for o in NON_NEGATIVE:
            b = s[emotion == o]
            if len(a) >= min_windows and len(b) >= min_windows:
                y = np.r_[np.ones(len(a)), np.zeros(len(b))]
                out.setdefault(n, {})[o] = _r(roc_auc_score(y, np.r_[a, b]))
    return out
