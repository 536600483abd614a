"""Statistics of one normalized window, and the head that turns them into a second opinion.

The CNN learns what it finds in the training corpora, much of it their recording chains. A linear
model on coarse statistics of the same window carries to unseen corpora better, and the two
disagree enough that their mean logit beats both (figures in model/MODEL_CARD.md). The
statistics, all from the same normalized 513 x 125 window:

- 40 mel bands (60 Hz-8 kHz, averaged in the log domain): mean and spread over the window's active
  frames (the louder 60 %), and the mean frame-to-frame change (how fast the spectrum moves);
- pitch from the cepstrum of each frame's 0-4 kHz (periods of 80-500 Hz): median, range (10-90 %), spread and
  slope over voiced frames, the voiced share and the strength of voicing;
- energy dynamics: spread, range, mean change and the active share.

One function computes them for training, `specmon score` and `listen`, so live and offline agree.
A head may also take the window's prosody (monitor/prosody.py: F0 contour and formants measured on
the window's samples), the sidecar's count of statistics says which; and after it a pretrained
encoder's states (monitor/sample_features.py ENCODERS), which the sidecar names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from monitor.features import HOP, N_BINS, N_FFT, SAMPLE_RATE
from monitor.prosody import N_PROSODY
from monitor.sample_features import ENCODERS

N_MELS = 40
PERIODS = np.arange(32, 201, 2)  # samples: F0 from 500 Hz down to 80 Hz, within 1-3 %
CEPSTRUM_BINS = N_BINS // 2 + 1  # 0-4 kHz: where the harmonics that give pitch are strong
N_STATS = 3 * N_MELS + 7 + 4
HEAD_SIZES = (N_STATS, N_STATS + N_PROSODY)  # window statistics; and the window's prosody after them
# Heads of earlier specmon versions, which this one cannot feed: what they took.
OLDER_HEADS = {N_STATS + 23: "the 23 prosody functionals of specmon before loudness and rhythm"}


def _mel_matrix(n_mels: int = N_MELS, fmin: float = 60.0, fmax: float = 8000.0) -> np.ndarray:
    hz = np.linspace(0, SAMPLE_RATE / 2, N_BINS)

    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    pts = 700.0 * (10 ** (np.linspace(mel(fmin), mel(fmax), n_mels + 2) / 2595.0) - 1.0)
    m = np.zeros((n_mels, N_BINS))
    for i in range(n_mels):
        lo, c, hi = pts[i:i + 3]
        m[i] = np.maximum(0.0, np.minimum((hz - lo) / (c - lo), (hi - hz) / (hi - c)))
    return (m / m.sum(1, keepdims=True)).astype(np.float32)


def _cepstrum_matrix() -> np.ndarray:
    # Real cepstrum at the candidate periods: a cosine transform of the half spectrum (the other
    # half mirrors it), less its mean so the overall level does not count as voicing.
    k = np.arange(CEPSTRUM_BINS)
    wk = np.full(CEPSTRUM_BINS, 2.0)
    wk[0] = 1.0
    c = np.cos(2 * np.pi * np.outer(PERIODS, k) / N_FFT) * wk / N_FFT
    return (c - c.mean(1, keepdims=True)).astype(np.float32)


MEL = _mel_matrix()
CEPSTRUM = _cepstrum_matrix()
LOG_F0 = np.log(SAMPLE_RATE / PERIODS).astype(np.float32)
assert HOP == N_FFT // 2  # the frame rate the slope and change statistics assume


def _quantile(sorted_x: np.ndarray, q: float) -> float:
    """numpy's default (linear) percentile of an already sorted vector, without its overhead."""
    pos = q * (len(sorted_x) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_x) - 1)
    return float(sorted_x[lo] + (sorted_x[hi] - sorted_x[lo]) * (pos - lo))


def _slope(y: np.ndarray) -> float:
    """Least-squares slope of y against 0, 1, 2, ..."""
    t = np.arange(len(y), dtype=np.float64) - (len(y) - 1) / 2.0
    return float(t @ (y - y.mean()) / (t @ t))


@nb.njit(cache=True, nogil=True)
def _project(matrix: np.ndarray, w: np.ndarray) -> np.ndarray:
    """matrix @ w, each column summed in the same order wherever it sits and however many threads
    BLAS has (the loop over columns is innermost: it vectorizes, and no fastmath keeps every lane's
    rounding alike). A BLAS product rounds identical columns apart by their place in its tiles and
    its thread split, and a window of digital silence has many: which of them reached the energy
    quantile that picks `active` frames then hung on the thread count, so `specmon score` in a
    process with two BLAS threads and `listen` (one) scored such a window up to 0.02 apart."""
    rows, inner = matrix.shape
    out = np.zeros((rows, w.shape[1]), np.float32)
    for i in range(rows):
        for j in range(inner):
            a = matrix[i, j]
            for k in range(w.shape[1]):
                out[i, k] += a * w[j, k]
    return out


def warm_up() -> None:
    """Compile, or load from numba's cache, the statistics' kernel (start-up, not the first window)."""
    window_stats(np.zeros((N_BINS, 8), np.float32))


def window_stats(w: np.ndarray) -> np.ndarray:
    """N_STATS statistics of one normalized 513 x frames window (float32)."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    m = _project(MEL, w)
    e = m.mean(0)
    es = np.sort(e)
    active = e >= _quantile(es, 0.40)
    ma = m[:, active]
    change = np.abs(np.diff(m, axis=1)).mean(1)
    cep = _project(CEPSTRUM, np.ascontiguousarray(w[:CEPSTRUM_BINS]))
    strength = cep.max(0)
    f0 = LOG_F0[cep.argmax(0)]
    voiced = (strength > _quantile(np.sort(strength), 0.5)) & active
    fv = f0[voiced] if voiced.sum() > 3 else f0[active]
    fs = np.sort(fv)
    slope = _slope(fv) if len(fv) > 3 else 0.0
    pitch = [_quantile(fs, 0.5), _quantile(fs, 0.9) - _quantile(fs, 0.1), fv.std(), slope,
             voiced.mean(), strength[active].mean(), strength[active].std()]
    energy = [e.std(), _quantile(es, 0.95) - _quantile(es, 0.2), np.abs(np.diff(e)).mean(),
              active.mean()]
    return np.concatenate([ma.mean(1), ma.std(1), change, pitch, energy]).astype(np.float32)


def head_inputs(w: np.ndarray, prosody: np.ndarray | None = None) -> np.ndarray:
    """A head's inputs: the window statistics of normalized window w, then its prosody if given."""
    stats = window_stats(w)
    return stats if prosody is None else np.concatenate([stats, np.asarray(prosody, np.float32)])


@dataclass
class Linear:
    """One logistic regression on the standardized statistics: z @ coef + intercept."""

    coef: np.ndarray
    intercept: float

    def __call__(self, z: np.ndarray) -> float:
        return float(z @ self.coef + self.intercept)

    def to_dict(self) -> dict:
        return {"coef": [float(v) for v in self.coef], "intercept": float(self.intercept)}

    @classmethod
    def from_dict(cls, d: dict) -> Linear:
        coef = np.asarray(d["coef"], np.float64)
        if coef.ndim != 1:
            raise ValueError("stats head has coefficients that are not one flat list")
        return cls(coef, float(d["intercept"]))


@dataclass
class StatsHead:
    """Standardize, then logistic regression: window statistics -> logit of P(negative).

    Gated (`gate` and `low` set): valence sounds different at high and at low arousal (an angry
    voice against a happy one, a sad voice against a calm one), so a gate gives P(high arousal)
    and the logit is the gate's mix of two regressions, `coef`/`intercept` for high arousal and
    `low` for low arousal. Multinomial (`emotions` set, `coef` None): one regression per emotion,
    a softmax over them, and P(negative) the sum over the `negative` emotions. All read the same
    standardized statistics.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray | None
    intercept: float
    c: float  # the regularization it was fitted with (recorded, not used here)
    gate: Linear | None = None
    low: Linear | None = None
    emotions: dict[str, Linear] | None = None
    negative: tuple[str, ...] = ()
    encoder: str | None = None  # ENCODERS: whose states follow the prosody, if any

    @property
    def uses_prosody(self) -> bool:
        return len(self.mean) >= N_STATS + N_PROSODY

    def logit(self, stats: np.ndarray) -> float:
        z = (stats - self.mean) / self.scale
        if self.emotions is not None:
            # log P(negative) - log P(the rest), each a log-sum-exp of the emotions' scores
            s = {e: f(z) for e, f in self.emotions.items()}
            neg = np.array([v for e, v in s.items() if e in self.negative])
            rest = np.array([v for e, v in s.items() if e not in self.negative])
            return float(np.logaddexp.reduce(neg) - np.logaddexp.reduce(rest))
        high = float(z @ self.coef + self.intercept)
        if self.gate is None:
            return high
        g = 1.0 / (1.0 + np.exp(-self.gate(z)))
        return float(g * high + (1.0 - g) * self.low(z))

    def to_dict(self) -> dict:
        d = {"statistics": len(self.mean), "mean": [float(v) for v in self.mean],
             "scale": [float(v) for v in self.scale], "C": self.c}
        if self.encoder is not None:
            d["encoder"] = self.encoder
        if self.emotions is not None:
            d.update(emotions={e: f.to_dict() for e, f in self.emotions.items()},
                     negative=list(self.negative))
            return d
        d.update(coef=[float(v) for v in self.coef], intercept=float(self.intercept))
        if self.gate is not None:
            d.update(gate=self.gate.to_dict(), low=self.low.to_dict())
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StatsHead:
        if ("gate" in d) != ("low" in d):
            raise ValueError("stats head has a gate without its low-arousal regression, or the "
                             "other way round")
        mean, scale = np.asarray(d["mean"], np.float64), np.asarray(d["scale"], np.float64)
        encoder = d.get("encoder")
        if encoder is not None and encoder not in ENCODERS:
            raise ValueError(f"stats head takes the states of an encoder specmon does not have: "
                             f"{encoder!r} (it has {', '.join(ENCODERS)})")
        if "emotions" in d:
            if any(k in d for k in ("coef", "intercept", "gate", "low")):
                raise ValueError("stats head has both regressions per emotion and a single one")
            if not isinstance(d["emotions"], dict) or not isinstance(d.get("negative"), list):
                raise ValueError("stats head's emotions must be an object of regressions and its "
                                 "negative emotions a list")
            emotions = {str(e): Linear.from_dict(f) for e, f in d["emotions"].items()}
            negative = tuple(str(e) for e in d["negative"])
            if not set(negative) < set(emotions) or not negative:
                raise ValueError("stats head's negative emotions must be some, not all, of its "
                                 f"emotions ({', '.join(emotions)})")
            head = cls(mean, scale, None, 0.0, float(d.get("C", 0)), emotions=emotions,
                       negative=negative)
            parts = list(emotions.values())
        else:
            if "negative" in d:
                raise ValueError("stats head names negative emotions but has no regression per "
                                 "emotion")
            gated = "gate" in d
            one = Linear.from_dict(d)
            head = cls(mean, scale, one.coef, one.intercept,
                       float(d.get("C", 0)), Linear.from_dict(d["gate"]) if gated else None,
                       Linear.from_dict(d["low"]) if gated else None)
            parts = [one] + ([head.gate, head.low] if gated else [])
        head.encoder = encoder
        n = int(d["statistics"])
        sizes = [len(head.mean), len(head.scale)] + [len(f.coef) for f in parts]
        if encoder is not None:
            want = N_STATS + N_PROSODY + ENCODERS[encoder].features
            if set(sizes + [n]) != {want}:
                raise ValueError(f"stats head on the {encoder}'s states has {d['statistics']} "
                                 f"statistics, specmon computes {want}")
        elif n not in HEAD_SIZES or set(sizes) != {n}:
            older = (f" (it takes {OLDER_HEADS[n]}: retrain it with `python -m model.train`)"
                     if n in OLDER_HEADS else "")
            raise ValueError(f"stats head has {d['statistics']} statistics, specmon computes "
                             f"{' or '.join(map(str, HEAD_SIZES))}{older}")
        values = [head.mean, head.scale] + [np.append(f.coef, f.intercept) for f in parts]
        if not np.all(np.isfinite(np.concatenate(values))) or np.any(head.scale <= 0):
            raise ValueError("stats head has non-finite weights or a non-positive scale")
        return head


EPS = 1e-3  # the network may say exactly 0 or 1 (int8 output): keep its logit finite


def cnn_logit(p_cnn):
    """The CNN's P(negative) as a logit, kept finite (floats or arrays)."""
    p = np.clip(p_cnn, EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


def fuse(p_cnn, head_logit):
    """The shipped score: the mean of the CNN's and the head's logits, as a probability (floats or
    arrays)."""
    # A head on an encoder's states can be sure enough for exp to overflow (LOCO folds met head
    # logits past 1400): clipped, the score is the same 0 or 1, without the warning.
    return 1.0 / (1.0 + np.exp(-np.clip((cnn_logit(p_cnn) + head_logit) / 2.0, -80.0, 80.0)))
