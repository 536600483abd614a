#!/usr/bin/env bash
# Services and tools the tests drive for real (Debian packages), installed when missing:
#   chromium    headless browser that opens `specmon report` output, screenshots it and dumps its DOM
#
#   scripts/setup_services.sh           install what is missing (apt; root or sudo), check it runs
#
# Idempotent and quiet; prints one line per step. scripts/test.sh calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(chromium fonts-dejavu-core)

missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
        echo "setup_services: please install these Debian packages first: ${missing[*]}" >&2; exit 1
    fi
    echo "setup_services: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v chromium >/dev/null || { echo "setup_services: chromium not found after install" >&2; exit 1; }
echo "setup_services: ready: $(chromium --version 2>/dev/null | head -n 1)"
