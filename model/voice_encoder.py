"""A pretrained voice encoder's states as features of a 4-s window, in numpy (a probe's input).

The encoder is Resemblyzer's GE2E speaker encoder (three LSTM layers of 256 over 40 mel bands,
trained by its authors on LibriSpeech train-other and VoxCeleb 1 and 2; Apache-2.0, see
voice_encoder_LICENSE.txt), converted once by scripts/convert_voice_encoder.py into
`voice_encoder.npz`. It is the only pretrained speech network we found whose weights come in a PyPI
package: a speaker encoder, not an emotion model, but one trained on thousands of voices in real
rooms.

A window's features are its last layer's final state and its mean output, each averaged over three
1.6-s partials (the start, the middle and the end of the window, as Resemblyzer's embed_utterance
covers an utterance): 512 numbers. About 0.65 G multiply-adds a window, 17 times the network's:
for measuring what such a representation carries (model/feature_probe.py); whether `listen` could
afford it on a Pi 4 is not measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).with_name("voice_encoder.npz")
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
PARTIAL = 160  # frames of one partial (1.6 s), the length the encoder was trained on
FEATURES = 512


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warnings for large |z|


class VoiceEncoder:
    """Resemblyzer's voice encoder: mel front end and LSTM, numpy only."""

    def __init__(self, path: Path = WEIGHTS) -> None:
        z = np.load(path)
        # librosa's Slaney mel filterbank, (40, 201), stored as it is applied: (201, 40), float64
        self.mel_basis_t = z["mel_basis"].T.astype(np.float64)
        self.target_dbfs = float(z["target_dbfs"])
        self.layers = [(z[f"kernel{k}"], z[f"recurrent{k}"], z[f"bias{k}"]) for k in range(3)]
        n = np.arange(N_FFT)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)  # periodic Hann

    def mel(self, x: np.ndarray) -> np.ndarray:
        """(frames, 40) mel power spectrogram of one signal, as Resemblyzer's: volume raised (never
        lowered) to -30 dBFS, then librosa's centred, zero-padded STFT; not a log spectrogram."""
        x = np.asarray(x, dtype=np.float64)
        power = float(np.mean(x ** 2))
        if power > 0:
            change = self.target_dbfs - 10 * np.log10(power)
            if change > 0:
                x = x * 10 ** (change / 20)
        xp = np.pad(x, N_FFT // 2)
        frames = np.lib.stride_tricks.sliding_window_view(xp, N_FFT)[::HOP]
        spec = np.abs(np.fft.rfft(frames * self.window, axis=1)) ** 2
        return (spec @ self.mel_basis_t).astype(np.float32)

    def lstm(self, mels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(batch, frames, 40) -> the last layer's outputs (batch, frames, 256) and final state."""
        seq = mels.astype(np.float32)
        for kernel, recurrent, bias in self.layers:
            b, t, _ = seq.shape
            units = recurrent.shape[0]
            xw = seq @ kernel + bias  # every step's input part at once
            h = np.zeros((b, units), np.float32)
            c = np.zeros((b, units), np.float32)
            out = np.empty((b, t, units), np.float32)
            for k in range(t):
                z = xw[:, k] + h @ recurrent
                i, f, g, o = (z[:, j * units:(j + 1) * units] for j in range(4))  # torch's order
                c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                h = _sigmoid(o) * np.tanh(c)
                out[:, k] = h
            seq = out
        return seq, h

    def features(self, segments: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """(n, 512): each segment's final state and mean output, averaged over three partials."""
        if len(segments) == 0:
            return np.zeros((0, FEATURES), np.float32)
        mels = np.stack([self.mel(s) for s in segments])
        t = mels.shape[1]
        if t < PARTIAL:
            raise ValueError(f"segments of {t} frames: the encoder wants at least {PARTIAL} (1.6 s)")
        starts = (0, (t - PARTIAL) // 2, t - PARTIAL)
        seq, h = self.lstm(np.concatenate([mels[:, a:a + PARTIAL] for a in starts]))
        n = len(segments)
        both = np.hstack([h, seq.mean(1)]).reshape(len(starts), n, FEATURES)
        return both.mean(0)
