"""A pretrained voice encoder's states as features of a 4-s window, in numpy.

The encoder is Resemblyzer's GE2E speaker encoder (three LSTM layers of 256 over 40 mel bands,
trained by its authors on LibriSpeech train-other and VoxCeleb 1 and 2; Apache-2.0, see
voice_encoder_LICENSE.txt), converted once by scripts/convert_voice_encoder.py into
`voice_encoder.npz`. It is the only pretrained speech network we found whose weights come in a PyPI
package: a speaker encoder, not an emotion model, but one trained on thousands of voices in real
rooms.

The encoder reads 1.6-s partials. Here they sit on a fixed grid of the signal (one every 0.8 s from
its first sample), and a window's features are the last layer's final state and mean output averaged
over the partials wholly inside it (3 or 4 of a 4-s window): 512 numbers. On a grid, each partial is
computed once however many overlapping windows hold it, so a live monitor pays for 1.25 partials a
second whatever its stride, and `specmon score` and `listen` see the same partials. Each partial's
volume is raised (never lowered) to -30 dBFS on its own, as the encoder's own front end does for an
utterance.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).with_name("voice_encoder.npz")
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
PARTIAL = 160  # frames of one partial (1.6 s), the length the encoder was trained on
PARTIAL_SAMPLES = PARTIAL * HOP
GRID = PARTIAL_SAMPLES // 2  # a partial begins every 0.8 s of the signal
FEATURES = 512
BATCH = 64  # partials run through the LSTM at once (matrix products instead of vector ones)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warnings for large |z|


def partial_starts(start: int, n_samples: int) -> np.ndarray:
    """Grid starts of the partials wholly inside samples [start, start + n_samples)."""
    first = -(-start // GRID) * GRID
    return np.arange(first, start + n_samples - PARTIAL_SAMPLES + 1, GRID, dtype=np.int64)


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

    def partials(self, x: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """(len(starts), 512): final state and mean output of the partial of x at each start."""
        out = np.empty((len(starts), FEATURES), np.float32)
        for a in range(0, len(starts), BATCH):
            mels = np.stack([self.mel(x[s:s + PARTIAL_SAMPLES])[:PARTIAL] for s in starts[a:a + BATCH]])
            seq, h = self.lstm(mels)
            out[a:a + len(mels)] = np.hstack([h, seq.mean(1)])
        return out


@cache
def shared_encoder() -> VoiceEncoder:
    """The encoder with the bundled weights, loaded once per process."""
    return VoiceEncoder()


class WindowVoice:
    """Window features with each partial computed once: partials are kept by their grid start for
    as long as a later window may still hold them."""

    def __init__(self, encoder: VoiceEncoder | None = None) -> None:
        self.encoder = encoder or shared_encoder()
        self._kept: dict[int, np.ndarray] = {}

    def reset(self) -> None:
        """A new signal: grid starts count from its first sample again."""
        self._kept.clear()

    def fill(self, x: np.ndarray, windows: list[int] | None = None) -> None:
        """Compute every partial of the signal x at once, in batches: for a whole stream, much
        faster than window by window (the windows' starts do not matter: partials sit on a grid)."""
        starts = partial_starts(0, len(x))
        for s, v in zip(starts, self.encoder.partials(x, starts), strict=True):
            self._kept[int(s)] = v

    def __call__(self, samples: np.ndarray, start: int) -> np.ndarray:
        """The 512 features of the window whose samples begin at sample `start` of the signal."""
        starts = partial_starts(start, len(samples))
        if not len(starts):
            raise ValueError(f"a window of {len(samples)} samples holds no {PARTIAL_SAMPLES}-sample partial")
        todo = np.array([s for s in starts if int(s) not in self._kept], np.int64)
        if len(todo):
            for s, v in zip(todo, self.encoder.partials(samples, todo - start), strict=True):
                self._kept[int(s)] = v
        for s in [s for s in self._kept if s < starts[0]]:  # windows only move on
            del self._kept[s]
        return np.mean([self._kept[int(s)] for s in starts], axis=0)
