"""Convert Resemblyzer's pretrained voice encoder into monitor/voice_encoder.npz (numpy only), once.

The encoder is a GE2E speaker encoder (three LSTM layers of 256 over 40 mel bands; Resemblyzer 0.1.4,
Apache-2.0, trained by its authors on LibriSpeech train-other, VoxCeleb 1 and 2). The npz holds its
weights (torch's gate order i, f, g, o, kernels transposed to (inputs, 4 x 256), the two biases
summed) and librosa's mel filterbank, so monitor/voice_encoder.py runs it with numpy alone. It also
writes tests/data/voice_encoder_reference.npz: Resemblyzer's own mel spectrogram and torch's LSTM
states (one 1.6-s partial) for two 4-s windows of scripts/sample.flac, which the numpy encoder must reproduce.

Needs torch, resemblyzer and librosa, in a venv of their own (none is a specmon dependency):

    python -m venv /tmp/ve && /tmp/ve/bin/pip install torch resemblyzer librosa soundfile
    /tmp/ve/bin/python scripts/convert_voice_encoder.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # its venv need not have specmon installed: monitor/ comes from here
    sys.path.insert(0, str(ROOT))


def main() -> int:
    import librosa
    import soundfile as sf
    import torch
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume, wav_to_mel_spectrogram
    from resemblyzer.hparams import audio_norm_target_dBFS

    from monitor.voice_encoder import N_FFT, PARTIAL

    enc = VoiceEncoder("cpu", verbose=False).eval()
    out = {"mel_basis": librosa.filters.mel(sr=16000, n_fft=N_FFT, n_mels=40).astype(np.float32),
           "target_dbfs": np.float32(audio_norm_target_dBFS)}
    for k in range(3):
        out[f"kernel{k}"] = getattr(enc.lstm, f"weight_ih_l{k}").detach().numpy().T.copy()
        out[f"recurrent{k}"] = getattr(enc.lstm, f"weight_hh_l{k}").detach().numpy().T.copy()
        out[f"bias{k}"] = (getattr(enc.lstm, f"bias_ih_l{k}") + getattr(enc.lstm, f"bias_hh_l{k}")
                           ).detach().numpy()
    np.savez_compressed(ROOT / "monitor" / "voice_encoder.npz", **out)

    x, sr = sf.read(ROOT / "scripts" / "sample.flac", dtype="float32")
    assert sr == 16000
    starts, gains = np.array([0, 32000]), np.array([1.0, 0.01], np.float32)  # the quiet one: raised
    segs = np.stack([g * x[a:a + 64000] for a, g in zip(starts, gains, strict=True)])
    mels = np.stack([wav_to_mel_spectrogram(normalize_volume(s, audio_norm_target_dBFS,
                                                             increase_only=True)) for s in segs])
    with torch.no_grad():
        seq, (h, _) = enc.lstm(torch.from_numpy(mels[:, :PARTIAL]))
    np.savez_compressed(ROOT / "tests" / "data" / "voice_encoder_reference.npz", starts=starts, gains=gains,
                        mels=mels, last_state=h[-1].numpy(), mean_output=seq.mean(1).numpy())
    print("wrote monitor/voice_encoder.npz and tests/data/voice_encoder_reference.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
