"""Judging one window: the voice gate, then the scorer. Shared by `specmon score` and `specmon listen`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monitor.features import voiced_fraction
from monitor.scorer import Scorer

# A frame counts as voiced when its level is at least this many dBFS. -60 dBFS passes quietly
# recorded speech (RAVDESS's softest neutral clips sit near -50 dBFS) and rejects a quiet room;
# raise it in a noisy room, lower it for a distant microphone.
DEFAULT_VAD_DBFS = -60.0
# A window with less than this share of voiced frames is logged as no-speech instead of being scored.
# 0.2 keeps windows with pauses (RAVDESS clips are half silence) and drops near-silent ones;
# 0 scores every window.
DEFAULT_MIN_VOICED = 0.2

NEGATIVE, NEUTRAL, NO_SPEECH = "negative", "neutral", "no-speech"


@dataclass(frozen=True)
class Gate:
    """Voice-activity gate settings."""

    floor_dbfs: float = DEFAULT_VAD_DBFS
    min_voiced: float = DEFAULT_MIN_VOICED


@dataclass
class WindowResult:
    start_s: float
    end_s: float
    score: float | None  # None when the gate found no speech
    label: str
    rms_dbfs: float
    voiced: float
    latency_ms: float


def rms_dbfs(levels_dbfs: np.ndarray) -> float:
    """Window RMS level from its frame levels (power average), in dBFS."""
    p = np.mean(10.0 ** (levels_dbfs.astype(np.float64) / 10.0))
    return float(10.0 * np.log10(max(p, 1e-12)))


def assess(
    window: np.ndarray,
    levels: np.ndarray,
    scorer: Scorer,
    gate: Gate,
    threshold: float,
    start_s: float,
    end_s: float,
    prosody: Callable[[], np.ndarray] | None = None,
) -> WindowResult:
    """Gate, then score, one 513 x 125 log-power window with its frame levels.

    prosody: computes the window's prosody (monitor/prosody.py) when the scorer needs it; called
    only for a window that passes the gate."""
    voiced = voiced_fraction(levels, gate.floor_dbfs)
    level = rms_dbfs(levels)
    if voiced < gate.min_voiced:
        return WindowResult(start_s, end_s, None, NO_SPEECH, level, voiced, 0.0)
    t0 = time.perf_counter()
    p = prosody() if prosody is not None and scorer.needs_prosody else None
    score = scorer.score(window, p)
    ms = (time.perf_counter() - t0) * 1000.0
    label = NEGATIVE if score >= threshold else NEUTRAL
    return WindowResult(start_s, end_s, score, label, level, voiced, ms)
