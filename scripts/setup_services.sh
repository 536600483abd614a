#!/usr/bin/env bash
# Services and tools the tests drive for real (Debian packages), installed when missing:
#   mosquitto, mosquitto-clients   the MQTT broker (tests start their own instances on free loopback
#                                  ports from a temporary config: password file, TLS listener)
#   postgresql                     the server binaries (tests start a throwaway cluster with pg_ctl)
#   openssl                        test certificates
#   chromium, fonts-dejavu-core    headless browser that opens `specmon report` output, screenshots it
#                                  and dumps its DOM
# Nothing is started here: no system service is needed.
#
#   scripts/setup_services.sh      install what is missing (apt; root or sudo), check each tool runs
#
# Fresh machine: `apt-get update` first (skipped when the package lists are less than an hour old).
# Idempotent and quiet: one line per step; apt's output only when it fails. scripts/test.sh calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(mosquitto mosquitto-clients postgresql openssl chromium fonts-dejavu-core)
say() { echo "setup_services: $*"; }
die() { echo "setup_services: $*" >&2; exit 1; }

installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }
missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo -n); else
        die "please install these Debian packages first (or run as root): ${missing[*]}"
    fi
    export DEBIAN_FRONTEND=noninteractive
    APT=("${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 -q)
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | head -n 1) ]]; then
        say "apt-get update"
        "${APT[@]}" update >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
    fi
    say "apt-get install ${missing[*]}"
    "${APT[@]}" install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1 \
        || { tail -n 40 "$log" >&2; die "apt-get install ${missing[*]} failed"; }
    for p in "${missing[@]}"; do installed "$p" || die "$p is still not installed after apt-get install"; done
fi

MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[[ -x $MOSQ ]] || die "mosquitto not found"
command -v mosquitto_passwd >/dev/null || die "mosquitto_passwd not found"
initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
[[ -n $initdb ]] || die "PostgreSQL initdb not found in /usr/lib/postgresql/*/bin"
command -v chromium >/dev/null || die "chromium not found"
chrome=$(chromium --version 2>/dev/null | head -n 1) || die "chromium does not run"
say "ready: $("$MOSQ" -h 2>/dev/null | head -n 1), PostgreSQL $("$initdb" --version | awk '{print $3}'), $chrome"
