"""Export a trained Keras CNN to TFLite: a float32 file and a full-integer int8 file, each with a sidecar.

Usage (an untrained but real model, for tests of the runtime):
    python -m model.quantize --untrained OUT.tflite
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from monitor.features import FEATURES
from monitor.scorer import float_model_path, sha256_of, sidecar_path

LABELS = {"0": "neutral", "1": "negative"}


def write_sidecar(model_path: Path, meta: dict) -> dict:
    """Write <model>.json with the feature parameters, labels, threshold and the file's SHA-256."""
    digest = sha256_of(model_path)
    # The id names what scores: the network file and, when there is one, the stats head with it
    # (the same network with a new head gives other scores, and logs must not pool them).
    ident = digest
    if meta.get("stats_head"):
        ident = hashlib.sha256((digest + json.dumps(meta["stats_head"], sort_keys=True)).encode()
                               ).hexdigest()
    full = {
        "model_id": f"{model_path.stem}-{ident[:8]}",
        "features": FEATURES.to_dict(),
        "labels": LABELS,
        "threshold": 0.5,
        **meta,
        "sha256": digest,
    }
    sidecar_path(model_path).write_text(json.dumps(full, indent=2) + "\n")
    return full


def to_tflite(keras_model, representative: Iterable[np.ndarray] | None) -> bytes:
    """float32 TFLite when representative is None, else full-integer int8 (int8 input and output)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if representative is not None:
        reps = list(representative)

        def gen():
            for w in reps:
                yield [w.reshape(1, *w.shape, 1).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    # The converter prints "Saved artifact at ..." for every call; keep progress output readable.
    with contextlib.redirect_stdout(io.StringIO()):
        return conv.convert()


def export(keras_model, out_int8: Path, representative: list[np.ndarray], meta: dict) -> Path:
    """Write OUT (int8) and OUT-float32 (float32) .tflite files with sidecars; returns the float path."""
    out_int8 = Path(out_int8)
    out_int8.parent.mkdir(parents=True, exist_ok=True)
    out_f32 = float_model_path(out_int8)
    out_f32.write_bytes(to_tflite(keras_model, None))
    write_sidecar(out_f32, {**meta, "quantization": "float32"})
    out_int8.write_bytes(to_tflite(keras_model, representative))
    write_sidecar(out_int8, {**meta, "quantization": "int8", "float_model": out_f32.name})
    return out_f32


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--untrained", type=Path, required=True, help="write an untrained int8 model")
    args = ap.parse_args(argv)
    from model.cnn import build_cnn
    from monitor.features import normalize

    rng = np.random.default_rng(0)
    model = build_cnn()
    reps = [normalize(rng.normal(-40, 15, (513, 125)).astype(np.float32)) for _ in range(8)]
    export(model, args.untrained, reps, {"note": "untrained, for tests only"})
    print(args.untrained)


if __name__ == "__main__":
    main()
