"""What a stats head takes from a window's own samples (beside its spectrogram statistics): the
prosody functionals (monitor/prosody.py), then, for a head that takes them, a pretrained encoder's
states (ENCODERS). One class for training, `specmon score` and `listen`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from monitor import voice_encoder, whisper_encoder
from monitor.prosody import WindowProsody


@dataclass(frozen=True)
class Encoder:
    """A pretrained encoder a head may take: how many states a window gets, its weights, and a
    fresh per-signal instance (weights loaded once per process)."""

    features: int
    weights: Path
    window: Callable[[], voice_encoder.WindowVoice | whisper_encoder.WindowWhisper]


# By the name a head's sidecar gives.
ENCODERS = {
    "voice_encoder": Encoder(voice_encoder.FEATURES, voice_encoder.WEIGHTS, voice_encoder.WindowVoice),
    "whisper_block3": Encoder(whisper_encoder.WIDTH, whisper_encoder.WEIGHTS,
                              partial(whisper_encoder.WindowWhisper, 3)),
}


class SampleFeatures:
    """Prosody, and with `encoder` that encoder's states, of windows of one signal; what
    overlapping windows share (prosody frames, encoder partials) is computed once."""

    def __init__(self, encoder: str | None = None) -> None:
        self.prosody = WindowProsody()
        self.encoder = ENCODERS[encoder].window() if encoder else None

    def reset(self) -> None:
        """A new signal: sample positions count from its first sample again."""
        self.prosody.reset()
        if self.encoder is not None:
            self.encoder.reset()

    def fill(self, x: np.ndarray, starts: list[int]) -> None:
        """Ahead of the windows of the whole signal x that begin at `starts`: the encoder's work for
        all of them at once, in batches (no-op without an encoder)."""
        if self.encoder is not None:
            self.encoder.fill(x, starts)

    def __call__(self, samples: np.ndarray, start: int) -> np.ndarray:
        """The features of the window whose samples begin at sample `start` of the signal."""
        p = self.prosody(samples, start)
        if self.encoder is None:
            return p
        return np.concatenate([p, self.encoder(samples, start)]).astype(np.float32)
