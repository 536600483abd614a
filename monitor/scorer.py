"""The TFLite scorer: loads a model with its sidecar JSON, checks it fits our features, scores windows.

The sidecar (same stem, .json) records the feature parameters, label map, threshold and the model's
SHA-256. A model whose sidecar is missing, whose hash does not match, or whose feature parameters
differ from monitor.features is refused: its scores would be meaningless.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.errors import SpecmonError
from monitor.features import FEATURES, N_BINS, WINDOW_FRAMES, normalize
from monitor.window_stats import StatsHead, fuse, head_inputs

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "model" / "specmon.tflite"
# The same network with a stats head on the prosody alone, not Whisper's states: for a device too
# slow for Whisper's three blocks a window (model/MODEL_CARD.md has both under LOCO).
FAST_MODEL = DEFAULT_MODEL.with_name("specmon-fast.tflite")


def _interpreter_class():
    """ai-edge-litert when installed (maintained, faster), else tflite_runtime, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError:
        raise SpecmonError(
            "no TFLite interpreter installed: pip install ai-edge-litert (or tflite-runtime)"
        ) from None


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sidecar_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def float_model_path(model_path: Path) -> Path:
    """Where a model's float32 original lives: beside it, as <stem>-float32.tflite."""
    p = Path(model_path)
    return p.with_name(p.stem + "-float32.tflite")


@dataclass
class ModelInfo:
    path: Path
    model_id: str
    threshold: float
    labels: dict
    meta: dict
    head: StatsHead | None = None  # the sidecar's stats head, parsed and checked


def read_model_info(model_path: str | Path, head: bool = True) -> ModelInfo:
    """Read and check the sidecar of model_path; SpecmonError naming the file if anything is off.
    head=False leaves out the sidecar's stats head: the network alone, for a head on other inputs."""
    p = Path(model_path)
    if not p.is_file():
        raise SpecmonError(f"{p}: model file not found")
    side = sidecar_path(p)
    if not side.is_file():
        raise SpecmonError(f"{p}: no sidecar {side.name} with the model's feature parameters")
    try:
        meta = json.loads(side.read_text())
        features = meta["features"]
        threshold = float(meta["threshold"])
        labels = meta["labels"]
    except (ValueError, KeyError, TypeError) as e:
        raise SpecmonError(f"{side}: not a valid model sidecar ({e})") from None
    digest = sha256_of(p)
    if meta.get("sha256") != digest:
        raise SpecmonError(f"{p}: content hash does not match its sidecar {side.name}")
    ours = FEATURES.to_dict()
    diff = sorted(k for k in set(ours) | set(features) if ours.get(k) != features.get(k))
    if diff:
        k = diff[0]
        raise SpecmonError(
            f"{p}: model expects {k}={features.get(k)!r} but specmon computes {ours.get(k)!r}"
        )
    stats_head = None
    if head and "stats_head" in meta:
        try:
            stats_head = StatsHead.from_dict(meta["stats_head"])
        except (ValueError, KeyError, TypeError) as e:
            raise SpecmonError(f"{side}: not a valid stats head ({e})") from None
    return ModelInfo(p, meta.get("model_id", digest[:12]), threshold, labels, meta, stats_head)


class Scorer:
    """One model, one window at a time: score(window) -> probability of 'negative' in [0, 1].

    When the sidecar carries a stats head (monitor/window_stats.py), the score is the CNN's and the
    head's opinions fused; the threshold in the sidecar was chosen for that fused score.
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 1, head: bool = True) -> None:
        self.info = read_model_info(model_path or DEFAULT_MODEL, head=head)
        interp_cls = _interpreter_class()
        from monitor.devices import quiet_stderr

        try:
            with quiet_stderr():  # LiteRT announces its XNNPACK delegate on fd 2 every time
                self._interp = interp_cls(model_path=str(self.info.path), num_threads=threads)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SpecmonError(f"{self.info.path}: not a loadable TFLite model ({msg})") from None
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        shape = tuple(int(v) for v in inp["shape"])
        if len(shape) != 4 or shape[1:3] != (N_BINS, WINDOW_FRAMES):
            raise SpecmonError(
                f"{self.info.path}: model input is {shape}, expected (1, {N_BINS}, {WINDOW_FRAMES}, 1)"
            )
        self.head = self.info.head
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype, self._out_dtype = inp["dtype"], out["dtype"]
        self._in_q = inp["quantization"]
        self._out_q = out["quantization"]
        self._buf = np.zeros(shape, dtype=self._in_dtype)
        self._tmp = np.zeros(shape[1:3], dtype=np.float32)
        if self._in_dtype != np.float32:
            scale, zero = self._in_q
            info = np.iinfo(self._in_dtype)
            self._inv_scale, self._zero = np.float32(1.0 / scale), np.float32(zero)
            self._qmin, self._qmax = np.float32(info.min), np.float32(info.max)

    @property
    def threshold(self) -> float:
        return self.info.threshold

    @property
    def model_id(self) -> str:
        return self.info.model_id

    @property
    def needs_prosody(self) -> bool:
        """Whether score() needs the window's prosody (monitor/prosody.py) beside its spectrogram."""
        return self.head is not None and self.head.uses_prosody

    @property
    def head_encoder(self) -> str | None:
        """The encoder whose states the window's sample features (monitor/sample_features.py) must
        include after its prosody, if any."""
        return None if self.head is None else self.head.encoder

    def score_normalized(self, x: np.ndarray, prosody: np.ndarray | None = None) -> float:
        """Score an already normalized 513 x 125 window; prosody: its sample features
        (monitor/sample_features.py), which a model whose head uses them requires (ignored
        otherwise)."""
        p = self.cnn_score(x)
        if self.head is None:
            return p
        return float(fuse(p, self.head_logit(x, prosody)))

    def head_logit(self, x: np.ndarray, prosody: np.ndarray | None = None) -> float:
        """The stats head's own logit for a normalized window (the model must have a head)."""
        if not self.needs_prosody:
            prosody = None
        elif prosody is None:
            raise ValueError(f"{self.info.path.name}: its stats head needs the window's prosody")
        return self.head.logit(head_inputs(x, prosody))

    def cnn_score(self, x: np.ndarray) -> float:
        """The network's own P(negative) for a normalized window, without the stats head."""
        if self._in_dtype == np.float32:
            self._buf[0, :, :, 0] = x
        else:
            # Quantize into preallocated buffers: no per-window allocations on the live path.
            t = self._tmp
            np.multiply(x, self._inv_scale, out=t)
            t += self._zero
            np.rint(t, out=t)
            np.clip(t, self._qmin, self._qmax, out=t)
            self._buf[0, :, :, 0] = t
        self._interp.set_tensor(self._in_index, self._buf)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out_index).reshape(-1)[0]
        if self._out_dtype != np.float32:
            scale, zero = self._out_q
            y = (float(y) - zero) * scale
        return float(min(1.0, max(0.0, y)))

    def score(self, logspec_window: np.ndarray, prosody: np.ndarray | None = None) -> float:
        """Score a raw 513 x 125 log-power window (normalizes it first)."""
        return self.score_normalized(normalize(logspec_window), prosody)
