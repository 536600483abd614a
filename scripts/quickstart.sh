#!/usr/bin/env bash
# Set up and run the main job: `specmon listen` with the bundled model, for 30 s.
# With a microphone it listens to it; without one it replays the bundled sample through the very
# same pipeline. Extra arguments go to `specmon listen` (e.g. --duration 0 to run until Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if .venv/bin/specmon devices >/dev/null 2>&1; then
    exec .venv/bin/specmon listen --duration 30 "$@"
fi
echo "quickstart: no microphone found; replaying scripts/sample.flac instead"
exec .venv/bin/specmon listen --input scripts/sample.flac --duration 30 "$@"
