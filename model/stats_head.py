"""Fit the stats head (monitor/window_stats.py) beside a trained network.

The head is a logistic regression on window statistics of the training speakers' windows (every
2 s, each stream as recorded and once through a random microphone, room and noise), weighted so
every corpus counts equally for each class and sadness counts `emotion_weight` times, like the
network's sampler. A gated head (`fit_head`) is three regressions: a gate on arousal and one per
side of it; a multinomial one is a softmax regression over the emotions, P(negative) the negative
ones' sum. Its regularization is the one whose fused score (network and head) has the best ROC
AUC on the validation speakers; the test fold is never seen. For the unseen_corpus threshold
rule, each validation corpus is also scored by a head fit without it (`unseen_corpus_logits`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from model.dataset import Stream, WindowSet
from model.head_inputs import stream_stats
from model.metrics import two_class_corpora
from monitor.window_stats import Linear, StatsHead, fuse, head_inputs

C_GRID = (0.01, 0.1, 1.0)  # the regularizations a head is chosen from (Recipe.head_c)
# The gated head's high-arousal side (boredom is not trained on). Disgust sits between the two in
# circumplex studies; it goes with anger, whose loud, tense delivery it shares in these corpora.
HIGH_AROUSAL = frozenset({"anger", "disgust", "fear", "happiness", "surprise"})


def balance_weights(corpus: np.ndarray, y: np.ndarray, emotion: np.ndarray,
                    emotion_weight: dict) -> np.ndarray:
    """Every (corpus, class) cell weighs the same in total; chosen emotions weigh more."""
    w = np.ones(len(y))
    for c in set(corpus.tolist()):
        for lab in (0, 1):
            cell = (corpus == c) & (y == lab)
            if cell.any():
                w[cell] = 1.0 / cell.sum()
    for e, k in emotion_weight.items():
        w[emotion == e] *= k
    return w / w.mean()


def _regression(z: np.ndarray, y: np.ndarray, w: np.ndarray, c: float) -> Linear:
    clf = LogisticRegression(C=c, max_iter=3000)
    clf.fit(z, y, sample_weight=w)
    return Linear(clf.coef_[0].astype(np.float64), float(clf.intercept_[0]))


def fit_head(x: np.ndarray, meta: dict, c: float, emotion_weight: dict,
             form: str = "linear", encoder: str | None = None) -> StatsHead:
    """A head on the windows x (standardized here), every corpus and class weighing the same.

    form "gated": also a gate (high against low arousal, HIGH_AROUSAL) and one regression per side,
    each fitted on its side's windows. "multinomial": one softmax regression over the emotions
    (each window's weight as for the linear head), P(negative) the sum over the emotions labelled
    negative, so the head learns what tells each emotion apart, not one line through all of them.
    Either is a linear head when the data cannot support it (an arousal side of one class; two emotions).
    encoder: the name (monitor.sample_features.ENCODERS) of the encoder whose states x ends with."""
    head = _fit(x, meta, c, emotion_weight, form)
    head.encoder = encoder
    return head


def _fit(x: np.ndarray, meta: dict, c: float, emotion_weight: dict, form: str) -> StatsHead:
    mean = x.mean(0).astype(np.float64)
    scale = x.std(0).astype(np.float64)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    y, emotion = meta["y"], meta["emotion"]
    w = balance_weights(meta["corpus"], y, emotion, emotion_weight)
    if form == "multinomial" and len(set(y.tolist())) == 2 and len(set(emotion.tolist())) > 2:
        clf = LogisticRegression(C=c, max_iter=3000)
        clf.fit(z, emotion, sample_weight=w)
        emotions = {str(e): Linear(clf.coef_[k].astype(np.float64), float(clf.intercept_[k]))
                    for k, e in enumerate(clf.classes_)}
        negative = tuple(sorted(set(emotion[y == 1].tolist())))
        return StatsHead(mean, scale, None, 0.0, c, emotions=emotions, negative=negative)
    high = np.isin(emotion, list(HIGH_AROUSAL))
    sides = (high, ~high)
    if form != "gated" or any(len(set(y[side].tolist())) < 2 for side in sides):
        one = _regression(z, y, w, c)
        return StatsHead(mean, scale, one.coef, one.intercept, c)
    gate = _regression(z, high.astype(int), w, c)
    hi, lo = (_regression(z[side], y[side], w[side], c) for side in sides)
    return StatsHead(mean, scale, hi.coef, hi.intercept, c, gate, lo)


def head_form(head: StatsHead) -> str:
    """What fit_head made: linear, gated or multinomial."""
    return "multinomial" if head.emotions is not None else "gated" if head.gate else "linear"


def corpus_mean_auc(y: np.ndarray, s: np.ndarray, corpus: np.ndarray) -> float | None:
    """ROC AUC averaged over the corpora that have both classes (None when none has)."""
    aucs = [roc_auc_score(y[g], s[g]) for g in two_class_corpora(y, corpus)]
    return float(np.mean(aucs)) if aucs else None


def unseen_corpus_logits(x: np.ndarray, meta: dict, vx: np.ndarray, vcorpus: np.ndarray,
                         c: float, emotion_weight: dict, form: str = "linear") -> np.ndarray:
    """Each validation window's logit from a head fit on the training windows of the *other*
    corpora: how the head scores a corpus it has never heard, as it will score the test fold. A
    corpus whose removal leaves one class (tiny runs) gets the head fit on all of them."""
    out = np.empty(len(vx))
    for name in sorted(set(vcorpus.tolist())):
        keep = meta["corpus"] != name
        if len(set(meta["y"][keep].tolist())) < 2:
            keep = np.ones(len(x), bool)
        head = fit_head(x[keep], {k: v[keep] for k, v in meta.items()}, c, emotion_weight, form)
        rows = vcorpus == name
        out[rows] = [head.logit(v) for v in vx[rows]]
    return out


@dataclass
class HeadChoice:
    """The chosen head, how it was chosen, and (when asked) the validation windows' logits from
    heads fit without their corpus (`unseen_corpus_logits`), in the order of the labelled
    validation windows."""

    head: StatsHead
    info: dict
    unseen_logits: np.ndarray | None = None


def choose_head(train_streams: list[Stream], vws: WindowSet, p_val: np.ndarray,
                emotion_weight: dict, seed: int = 0, prosody: bool = True,
                unseen_corpus: bool = False, form: str = "linear", cache: Path | None = None,
                log=None, c_grid: tuple[float, ...] = C_GRID,
                encoder: str | None = None) -> HeadChoice:
    """Fit one head per regularization in `c_grid`; keep the best fused validation AUC.

    p_val: the network's scores of the labelled validation windows (vws.y >= 0), in order.
    unseen_corpus: also score the validation windows by heads fit without their corpus (with the
    chosen C), and record each C's fused AUC on those scores (mean over validation corpora).
    form: the head's form (fit_head). cache: a folder for the training windows' inputs
    (model.head_inputs.stream_stats); log: where to say what the cache could not do. encoder: the
    head also takes this encoder's states (vws.prosody must hold them too).
    """
    t0 = time.time()
    x, meta, cached = stream_stats(train_streams, seed=seed, prosody=prosody, cache=cache, log=log,
                                   encoder=encoder)
    took = {"inputs_seconds": round(time.time() - t0, 1), "inputs_cached": cached}
    lab = vws.y >= 0
    yv, cv = vws.y[lab], vws.corpus[lab]
    vx = np.stack([head_inputs(vws.x[i], vws.prosody[i] if prosody else None)
                   for i in np.flatnonzero(lab)]) if lab.any() else np.zeros((0, x.shape[1]))
    if len(set(yv.tolist())) < 2:  # no validation speakers of both classes: the middle of the grid
        head = fit_head(x, meta, c_grid[len(c_grid) // 2], emotion_weight, form, encoder)
        unseen = unseen_corpus_logits(x, meta, vx, cv, head.c, emotion_weight, form) \
            if unseen_corpus else None
        return HeadChoice(head, {"train_windows": len(x), **took, "C": head.c,
                                 "form": head_form(head), "val_auc_fused": None},
                          unseen)
    best, rows, unseen = None, [], None
    for c in c_grid:
        head = fit_head(x, meta, c, emotion_weight, form, encoder)
        hl = np.array([head.logit(v) for v in vx])
        auc = float(roc_auc_score(yv, fuse(p_val, hl)))
        row = {"C": c, "val_auc_fused": round(auc, 4),
               "val_auc_head": round(float(roc_auc_score(yv, hl)), 4)}
        ul = None
        if unseen_corpus:
            ul = unseen_corpus_logits(x, meta, vx, cv, c, emotion_weight, form)
            m = corpus_mean_auc(yv, fuse(p_val, ul), cv)
            row["val_auc_fused_unseen_corpus"] = None if m is None else round(m, 4)
        rows.append(row)
        if best is None or auc > best[1]:
            best, unseen = (head, auc), ul
    info = {"train_windows": len(x), **took, "grid": rows, "C": best[0].c, "form": head_form(best[0]),
            "val_auc_network": round(float(roc_auc_score(yv, p_val)), 4),
            "val_auc_fused": round(best[1], 4)}
    return HeadChoice(best[0], info, unseen)
