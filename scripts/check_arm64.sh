#!/usr/bin/env bash
# Release check on real ARM code: specmon on Debian bookworm arm64 (what Raspberry Pi OS 64-bit is
# built on), run here through qemu-user (binfmt_misc).
#
#   sudo scripts/check_arm64.sh           build (or reuse) the arm64 root, install, score, bench
#   sudo scripts/check_arm64.sh --fresh   start again from the cached debootstrap root (new .venv)
#
# Steps:
#   1. apt: qemu-user-static, binfmt-support, debootstrap (when missing); register qemu-aarch64 with
#      binfmt_misc (mounting it when needed).
#   2. `debootstrap --arch=arm64 --variant=minbase bookworm` from this machine's Debian mirror, cached in
#      $SPECMON_ARM64_CACHE (default /var/tmp/specmon-arm64/base); a working copy (root/) is kept for
#      quick reruns. minbase is less than Raspberry Pi OS Lite has, so the README's apt line must be
#      complete on its own.
#   3. The README's Raspberry Pi install, exactly: its `sudo apt install` line (read from README.md) and
#      `bash scripts/setup.sh` in a copy of this working tree at ~/specmon (pip from PyPI; pyaudio is
#      compiled). librosa is added afterwards only because scripts/bench.py's baseline rows need it.
#   4. `specmon score` and `specmon listen --input --fast --headless` on scripts/sample.flac, on arm64
#      and on this machine: every window's score must agree within 1e-3.
#   5. `python scripts/bench.py --quick --model model/specmon-fast.tflite` on arm64 must complete with
#      no failed row. Its timings are qemu's, not a Raspberry Pi's: they are not figures. The fast model,
#      because step 4 has already run the shipped one's Whisper blocks on arm64 and the bench's whisper
#      row runs them again, while every listening row with them took over 85 min under emulation.
#
# Needs root (debootstrap, chroot, mounts). Runs at the lowest CPU and I/O priority by itself.
# Logs: $CACHE/logs/. Exit 0 only if every step passed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${SPECMON_ARM64_CACHE:-/var/tmp/specmon-arm64}
BASE=$CACHE/base
ROOT=$CACHE/root
LOGS=$CACHE/logs
OUT=$CACHE/out
FRESH=0
[[ ${1:-} == --fresh ]] && FRESH=1

renice -n 19 -p $$ >/dev/null 2>&1 || true
ionice -c3 -p $$ >/dev/null 2>&1 || true
T_START=$SECONDS
T_STEP=$SECONDS
say() { echo "check_arm64: $*"; }
die() { echo "check_arm64: FAIL: $*" >&2; exit 1; }
step() { say "$1 ($((SECONDS - T_STEP)) s)"; T_STEP=$SECONDS; }
run_logged() {  # run_logged NAME cmd...: output to $LOGS/NAME.log, its tail on failure
    local name=$1; shift
    "$@" >"$LOGS/$name.log" 2>&1 || { tail -n 40 "$LOGS/$name.log" >&2; die "$name failed (log: $LOGS/$name.log)"; }
}

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot, mounts): sudo $0"
[[ $(uname -m) == x86_64 || $(uname -m) == aarch64 ]] || die "unsupported host $(uname -m)"
mkdir -p "$CACHE" "$LOGS" "$OUT"

# -- 1. qemu-user and binfmt_misc ------------------------------------------------------------------
installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }
missing=()
for p in qemu-user-static binfmt-support debootstrap; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | head -n 1) ]]; then
        run_logged apt-update apt-get -o DPkg::Lock::Timeout=600 -q update
    fi
    run_logged apt-install apt-get -o DPkg::Lock::Timeout=600 -q install -y --no-install-recommends "${missing[@]}"
fi
if [[ $(uname -m) == x86_64 ]]; then
    BINFMT=/proc/sys/fs/binfmt_misc
    if [[ ! -e $BINFMT/register ]]; then
        mount -t binfmt_misc binfmt_misc "$BINFMT" 2>"$LOGS/binfmt.log" || die "cannot mount binfmt_misc at \
$BINFMT ($(tr '\n' ' ' <"$LOGS/binfmt.log")): this machine does not allow registering qemu for arm64 \
binaries (needs CAP_SYS_ADMIN in the initial user namespace, or a host with binfmt_misc set up)"
    fi
    if [[ ! -e $BINFMT/qemu-aarch64 ]]; then
        update-binfmts --enable qemu-aarch64 >"$LOGS/binfmt.log" 2>&1 \
            || die "update-binfmts --enable qemu-aarch64 failed: $(tr '\n' ' ' <"$LOGS/binfmt.log")"
    fi
    head -n 1 "$BINFMT/qemu-aarch64" | grep -q enabled || die "binfmt qemu-aarch64 is registered but disabled"
    grep -q '^flags:.*F' "$BINFMT/qemu-aarch64" \
        || die "binfmt qemu-aarch64 lacks the F flag: the chroot cannot reach the interpreter"
fi
step "qemu-user-static $(dpkg-query -W -f='${Version}' qemu-user-static), binfmt qemu-aarch64 enabled"

# -- 2. the arm64 root ------------------------------------------------------------------------------
# This machine's Debian mirror (apt's own sources), else Debian's default.
MIRROR=$(grep -hsE '^[[:space:]]*(URIs:|deb[[:space:]])' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
             /etc/apt/sources.list.d/*.sources | grep -oE 'https?://[^[:space:]]+' \
         | grep -vE 'security|updates|backports' | grep -E '/debian/?$' | head -n 1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if [[ ! -e $BASE/.specmon-debootstrap-ok ]]; then
    say "debootstrap --arch=arm64 --variant=minbase bookworm from $MIRROR (first run: several minutes)"
    rm -rf "$BASE.tmp"
    run_logged debootstrap debootstrap --arch=arm64 --variant=minbase bookworm "$BASE.tmp" "$MIRROR"
    rm -rf "$BASE" && mv "$BASE.tmp" "$BASE" && touch "$BASE/.specmon-debootstrap-ok"
fi
if ((FRESH)) || [[ ! -e $ROOT/.specmon-debootstrap-ok ]]; then
    rm -rf "$ROOT" && cp -a "$BASE" "$ROOT"
fi
[[ $(chroot "$ROOT" /usr/bin/dpkg --print-architecture) == arm64 ]] || die "the root does not run arm64 code"
step "arm64 root ready: $ROOT ($(chroot "$ROOT" /usr/bin/uname -m), Debian $(cat "$ROOT/etc/debian_version"))"

MOUNTS=()
cleanup() {
    local m
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        m=${MOUNTS[i]}
        umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}
trap cleanup EXIT
mount -t proc proc "$ROOT/proc" && MOUNTS+=("$ROOT/proc")
# qemu-user (7.2) shows arm64 programs this machine's own /proc/cpuinfo, an x86 one: LiteRT's CPU probe
# (the cpuinfo library) finds no ARM core in it and crashes. A Raspberry Pi 4's (Cortex-A72), one entry
# per CPU here, goes over it; with QEMU_CPU=cortex-a72 the emulated CPU is that one too, so code that
# needs more than a Pi 4 has (ARMv8.2 and later) fails here as it would on the Pi.
if [[ $(uname -m) == x86_64 ]]; then
    for ((c = 0; c < $(nproc --all); c++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$c"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n'
        printf 'CPU revision\t: 3\n\n'
    done >"$CACHE/cpuinfo-cortex-a72"
    printf 'Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B (emulated by qemu-user)\n' >>"$CACHE/cpuinfo-cortex-a72"
    mount --bind "$CACHE/cpuinfo-cortex-a72" "$ROOT/proc/cpuinfo"
    QEMU_ENV=(QEMU_CPU=cortex-a72)
else
    QEMU_ENV=()
fi
mount --rbind /sys "$ROOT/sys" && mount --make-rslave "$ROOT/sys" && MOUNTS+=("$ROOT/sys")
mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev" && MOUNTS+=("$ROOT/dev")
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# A network that intercepts TLS has its CA bundle named in PIP_CERT / SSL_CERT_FILE here: pip in the
# root needs it too (a Pi on an ordinary network does not).
CA_ENV=()
HOST_CA=${PIP_CERT:-${SSL_CERT_FILE:-}}
if [[ -n $HOST_CA && -f $HOST_CA ]]; then
    cp -L "$HOST_CA" "$ROOT/etc/specmon-check-ca.pem"
    CA_ENV=(PIP_CERT=/etc/specmon-check-ca.pem SSL_CERT_FILE=/etc/specmon-check-ca.pem)
fi
# A clean login-like environment: nothing of this machine's Python, venv or config leaks in. Only
# pip's retries are raised (PIP_RETRIES): here PyPI reset pip's connections often enough that two
# installs failed on pip's default five retries, which span about 8 s (12 back off to ~8 min).
in_root() {
    chroot "$ROOT" /usr/bin/env -i HOME=/root USER=root LANG=C.UTF-8 TERM=dumb "${CA_ENV[@]}" "${QEMU_ENV[@]}" \
        PIP_RETRIES=12 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin XDG_CONFIG_HOME=/root/.nonexistent \
        /bin/bash -c "$1"
}

# -- 3. the README's Raspberry Pi install ---------------------------------------------------------
APT_LINE=$(awk '/^## Raspberry Pi/{pi=1; next} /^## /{pi=0} pi && /^sudo apt install/{print; exit}' README.md)
[[ -n $APT_LINE ]] || die "README.md: no 'sudo apt install' line in the Raspberry Pi section"
APT_LINE=${APT_LINE%%#*}
say "README: $APT_LINE"
run_logged root-apt in_root "export DEBIAN_FRONTEND=noninteractive; apt-get -q update && ${APT_LINE#sudo }"
# ~/specmon: a copy of this working tree (tracked and new files, as they are now), the .venv kept
mkdir -p "$ROOT/root/specmon"
find "$ROOT/root/specmon" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$ROOT/root/specmon"
step "apt packages installed in the root; working tree copied to ~/specmon"
say "bash scripts/setup.sh in the root (first run: pip downloads aarch64 wheels, pyaudio compiles)"
run_logged root-setup in_root "cd ~/specmon && bash scripts/setup.sh"
in_root "~/specmon/.venv/bin/python -c 'import platform, pyaudio, soundfile, monitor; print(platform.machine())'" \
    | grep -qx aarch64 || die "the installed specmon does not import on aarch64"
run_logged root-librosa in_root "~/specmon/.venv/bin/python -m pip install -q --disable-pip-version-check 'librosa>=0.10'"
step "README install done: $(in_root '~/specmon/.venv/bin/specmon --version')"

# -- 4. scores: arm64 against this machine -------------------------------------------------------------
HOSTPY=$REPO/.venv/bin/python
[[ -x $HOSTPY ]] || die "no $HOSTPY for the reference scores: bash scripts/setup.sh first"
rm -rf "${OUT:?}"/* "$ROOT/tmp/check" && mkdir -p "$ROOT/tmp/check"
ref_env=(env -u SPECMON_MQTT_USER -u SPECMON_MQTT_PASSWORD XDG_CONFIG_HOME="$OUT/.nonexistent")
"${ref_env[@]}" "$HOSTPY" -m monitor.cli score scripts/sample.flac -o "$OUT/host-score.csv" 2>"$LOGS/host.log" \
    || die "specmon score failed on this machine (log: $LOGS/host.log)"
(cd "$OUT" && "${ref_env[@]}" "$HOSTPY" -m monitor.cli listen --input "$REPO/scripts/sample.flac" --fast \
    --headless --csv "$OUT/host-listen.csv" >>"$LOGS/host.log" 2>&1) \
    || die "specmon listen failed on this machine (log: $LOGS/host.log)"
run_logged root-score in_root "cd ~/specmon && .venv/bin/specmon score scripts/sample.flac -o /tmp/check/score.csv"
run_logged root-listen in_root "cd /tmp/check && ~/specmon/.venv/bin/specmon listen --input ~/specmon/scripts/sample.flac \
    --fast --headless --csv /tmp/check/listen.csv"
cp "$ROOT/tmp/check/score.csv" "$OUT/arm64-score.csv"
cp "$ROOT/tmp/check/listen.csv" "$OUT/arm64-listen.csv"
"$HOSTPY" - "$OUT" <<'EOF' || die "arm64 scores differ from this machine's (files in $OUT)"
import csv, sys
out = sys.argv[1]
ok = True
for what, key in (("score", ("start_s", "end_s")), ("listen", ("offset_s", "start_s", "end_s"))):
    rows = {}
    for arch in ("host", "arm64"):
        with open(f"{out}/{arch}-{what}.csv", newline="") as f:
            rows[arch] = list(csv.DictReader(f))
    a, b = rows["host"], rows["arm64"]
    if len(a) != len(b) or not a:
        print(f"{what}: {len(a)} windows here, {len(b)} on arm64"); ok = False; continue
    worst, scored, flips = 0.0, 0, 0
    for ra, rb in zip(a, b):
        if tuple(ra[k] for k in key) != tuple(rb[k] for k in key) or (ra["score"] == "") != (rb["score"] == ""):
            print(f"{what}: window {tuple(ra[k] for k in key)} differs: {ra} / {rb}"); ok = False; break
        if ra["score"]:
            scored += 1
            worst = max(worst, abs(float(ra["score"]) - float(rb["score"])))
            flips += ra["label"] != rb["label"]
    print(f"{what}: {len(a)} windows ({scored} scored), largest score difference {worst:.4g} "
          f"(limit 1e-3), labels that differ: {flips}")
    ok &= worst <= 1e-3
sys.exit(0 if ok else 1)
EOF
step "scores agree"

# -- 5. the benchmark completes on arm64 --------------------------------------------------------------
say "python scripts/bench.py --quick in the root (emulated: slow)"
run_logged root-bench in_root "cd ~/specmon && .venv/bin/python scripts/bench.py --quick --model model/specmon-fast.tflite --json /tmp/check/bench.json"
cp "$ROOT/tmp/check/bench.json" "$OUT/arm64-bench.json"
"$HOSTPY" - "$OUT/arm64-bench.json" <<'EOF' || die "bench.py --quick: a row failed (log: $LOGS/root-bench.log)"
import json, sys
r = json.load(open(sys.argv[1]))
failed = {k: v for k, v in r.items() if isinstance(v, str) and v.startswith("failed")}
for k, v in failed.items():
    print(f"bench row {k}: {v}")
print(f"bench.py --quick: {len(r['table'])} rows on {r['meta']['machine']}, {len(failed)} failed")
sys.exit(1 if failed else 0)
EOF
step "bench.py --quick completed (its timings are qemu's emulation of arm64, not figures for a Pi)"
say "PASS in $((SECONDS - T_START)) s (outputs: $OUT, logs: $LOGS)"
