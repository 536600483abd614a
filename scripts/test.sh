#!/usr/bin/env bash
# Install the test and training extras, start the virtual audio device, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train,dev
bash scripts/setup_audio.sh
bash scripts/setup_fleet.sh      # Mosquitto, PostgreSQL (MQTT and collector tests)
bash scripts/setup_services.sh   # Chromium (the report test opens the page in it)
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
