"""What a stats head takes from a window's own samples (beside its spectrogram statistics): the
prosody functionals (monitor/prosody.py), then, for a head that takes them, the voice encoder's
states (monitor/voice_encoder.py). One class for training, `specmon score` and `listen`."""

from __future__ import annotations

import numpy as np

from monitor.prosody import N_PROSODY, WindowProsody
from monitor.voice_encoder import FEATURES, WindowVoice


def n_features(voice: bool) -> int:
    return N_PROSODY + (FEATURES if voice else 0)


class SampleFeatures:
    """Prosody, and with `voice` the encoder's states, of windows of one signal; what overlapping
    windows share (prosody frames, encoder partials) is computed once."""

    def __init__(self, voice: bool = False) -> None:
        self.prosody = WindowProsody()
        self.voice = WindowVoice() if voice else None

    def reset(self) -> None:
        """A new signal: sample positions count from its first sample again."""
        self.prosody.reset()
        if self.voice is not None:
            self.voice.reset()

    def fill(self, x: np.ndarray) -> None:
        """Ahead of the windows of the whole signal x: its encoder partials at once (no-op without voice)."""
        if self.voice is not None:
            self.voice.fill(x)

    def __call__(self, samples: np.ndarray, start: int) -> np.ndarray:
        """The features of the window whose samples begin at sample `start` of the signal."""
        p = self.prosody(samples, start)
        if self.voice is None:
            return p
        return np.concatenate([p, self.voice(samples, start)]).astype(np.float32)
