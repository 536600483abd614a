#!/usr/bin/env bash
# What the MQTT / fleet tests drive for real (Debian packages), installed when missing:
#   mosquitto, mosquitto-clients   the broker (tests start their own instances on free loopback ports
#                                  from a temporary config: password file, TLS listener)
#   postgresql                     the server binaries (tests start a throwaway cluster with pg_ctl)
#   openssl                        test certificates
# Nothing is started here: no system service is needed. Idempotent; one line per step.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(mosquitto mosquitto-clients postgresql openssl)

missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
        echo "setup_fleet: please install these Debian packages first: ${missing[*]}" >&2; exit 1
    fi
    echo "setup_fleet: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[[ -x $MOSQ ]] || { echo "setup_fleet: mosquitto not found after install" >&2; exit 1; }
initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
[[ -n $initdb ]] || { echo "setup_fleet: PostgreSQL initdb not found after install" >&2; exit 1; }
echo "setup_fleet: ready: $("$MOSQ" -h 2>/dev/null | head -n 1), PostgreSQL $("$initdb" --version | awk '{print $3}')"
