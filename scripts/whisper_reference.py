"""Write tests/data/whisper_reference.npz: CTranslate2's own Whisper base encoder output for two 4-s
windows of scripts/sample.flac (the second at 1 % of the amplitude), which monitor/whisper_encoder.py
must reproduce. Needs ctranslate2 and the model directory (model.bin, config.json) that
scripts/convert_whisper.py reads, in a venv of its own (neither is a specmon dependency):

    python -m venv /tmp/ct && /tmp/ct/bin/pip install ctranslate2 soundfile numpy
    /tmp/ct/bin/python scripts/whisper_reference.py MODEL_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # its venv need not have specmon installed: monitor/ comes from here
    sys.path.insert(0, str(ROOT))


def main() -> int:
    import ctranslate2
    import soundfile as sf

    from monitor.whisper_encoder import WhisperEncoder

    x, sr = sf.read(ROOT / "scripts" / "sample.flac", dtype="float32")
    assert sr == 16000
    starts, gains = np.array([0, 48000]), np.array([1.0, 0.01], np.float32)
    windows = np.stack([g * x[a:a + 64000] for a, g in zip(starts, gains, strict=True)])
    mel = WhisperEncoder().log_mel(windows)  # the front end is checked against librosa's in the test
    model = ctranslate2.models.Whisper(sys.argv[1], device="cpu", compute_type="float32")
    out = np.array(model.encode(ctranslate2.StorageView.from_array(
        np.ascontiguousarray(mel.transpose(0, 2, 1))), to_cpu=True))
    np.savez_compressed(ROOT / "tests" / "data" / "whisper_reference.npz", starts=starts, gains=gains,
                        mel=mel, final_mean=out.mean(1), final_first=out[:, :4])
    print(f"wrote tests/data/whisper_reference.npz (ctranslate2 {ctranslate2.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
