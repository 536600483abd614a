#!/usr/bin/env python
"""specmon benchmark suite: our code side by side with the obvious alternatives, as ratios.

    python scripts/bench.py                 # full run (~5 min), writes bench.json
    python scripts/bench.py --quick         # smoke run (~1.5 min)
    python scripts/bench.py --only stft,model --json /tmp/b.json

Rows (scripts/bench/, one module each): batch STFT, rolling update (and the leanest way to the same
windows), one window through the model, live CPU per audio second, the dashboard's CPU in a
terminal, `specmon score` throughput, start-up, memory over a long stream, window -> CSV latency,
`specmon report`. Every row reports absolute numbers and, where there is something to compare with,
a ratio; ratios are what to compare between machines and between loaded/quiet runs (the load is
recorded).

Test audio: clips from the shared speech corpus (SPECMON_DATA or ../shared/data/speech, read in
place, never copied) concatenated, else a synthetic speech-like signal. Temporary files go to a
temp directory under /tmp and are deleted at the end. Runs unchanged on a Raspberry Pi.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/: the bench package

from bench.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(doc=__doc__))
