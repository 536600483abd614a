"""What a stats head takes from a window's own samples (beside its spectrogram statistics): the
prosody functionals (monitor/prosody.py), then, for a head that takes them, a pretrained encoder's
states (monitor.window_stats.ENCODERS). One class for training, `specmon score` and `listen`."""

from __future__ import annotations

import numpy as np

from monitor.prosody import WindowProsody


def window_encoder(name: str):
    """The per-window encoder of that name (a WindowVoice or a WindowWhisper), weights loaded once."""
    if name == "voice_encoder":
        from monitor.voice_encoder import WindowVoice

        return WindowVoice()
    if name == "whisper_block3":
        from monitor.whisper_encoder import WindowWhisper

        return WindowWhisper(3)
    raise ValueError(f"no encoder {name!r}")


class SampleFeatures:
    """Prosody, and with `encoder` that encoder's states, of windows of one signal; what
    overlapping windows share (prosody frames, encoder partials) is computed once."""

    def __init__(self, encoder: str | None = None) -> None:
        self.prosody = WindowProsody()
        self.encoder = window_encoder(encoder) if encoder else None

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
