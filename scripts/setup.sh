#!/usr/bin/env bash
# Install specmon into ./.venv: system packages first (apt, when root or sudo is available), then pip.
#   scripts/setup.sh            runtime only
#   scripts/setup.sh train,dev  with the training (TensorFlow) and test extras
# Idempotent and quiet; prints one line per step.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PKGS=(portaudio19-dev libsndfile1 python3-venv)

missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
        echo "setup: please install these Debian packages first: ${missing[*]}" >&2; exit 1
    fi
    echo "setup: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
spec="."
[[ -n "$extras" ]] && spec=".[$extras]"
echo "setup: pip install -e '$spec' (first time: a few minutes)"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v WARNING || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec" 2>&1 | grep -v WARNING || true
.venv/bin/specmon --version >/dev/null
echo "setup: ready: $(.venv/bin/specmon --version) in .venv (activate: . .venv/bin/activate)"
