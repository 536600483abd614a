#!/usr/bin/env bash
# Install the test and training extras, start the virtual audio device, install the services the tests
# drive (Mosquitto, PostgreSQL, Chromium), run ruff and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train,dev
bash scripts/setup_audio.sh
bash scripts/setup_services.sh   # Mosquitto, PostgreSQL (MQTT and collector tests), Chromium (report test)
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
