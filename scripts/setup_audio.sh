#!/usr/bin/env bash
# Audio stack for specmon's live tests and CI: PortAudio + PulseAudio with a null sink whose monitor
# is the default source, so `paplay clip.flac` is "heard" by `specmon listen --device pulse`.
#
#   scripts/setup_audio.sh              install missing packages (apt, needs root), start the daemon
#   scripts/setup_audio.sh --no-install only (re)start the daemon; the live tests call this
#
# Idempotent: a running daemon is reused (the sink is added if missing). Exits non-zero with the
# reason if the stack cannot be brought up.
set -euo pipefail

SINK=specmon_sink
PKGS=(portaudio19-dev pulseaudio pulseaudio-utils libasound2-plugins alsa-utils sox tmux)

if [[ "${1:-}" != "--no-install" ]]; then
    missing=()
    for p in "${PKGS[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if ((${#missing[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            echo "setup_audio: need root to install: ${missing[*]}" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

for tool in pulseaudio pactl paplay; do
    command -v "$tool" >/dev/null || { echo "setup_audio: $tool not installed" >&2; exit 1; }
done

if ! pactl info >/dev/null 2>&1; then
    # -n: no default.pa (no hardware probing, nothing suspends on idle); --system=no plus
    # --disallow-exit/--exit-idle-time=-1 keeps a per-user daemon alive for the whole CI job, also as
    # root (pulseaudio warns about root but runs).
    # soxr-vhq: the sound server's own 16k->48k->16k resampling should not be what the tests measure.
    pulseaudio -n --daemonize=yes --system=no --exit-idle-time=-1 --disallow-exit \
        --log-target=stderr --resample-method=soxr-vhq \
        --load="module-null-sink sink_name=$SINK rate=48000" \
        --load=module-native-protocol-unix \
        >/dev/null 2>&1 || true
    for _ in $(seq 100); do
        pactl info >/dev/null 2>&1 && break
        sleep 0.1
    done
    pactl info >/dev/null 2>&1 || { echo "setup_audio: pulseaudio did not start" >&2; exit 1; }
fi

# The live tests kill and restart this daemon and make the null sink the default: refuse to do that
# to a desktop's sound server (one with real sinks) unless asked to.
others=$(pactl list short sinks | awk '{print $2}' | grep -v "^$SINK\$" || true)
if [[ -n "$others" && "${SPECMON_AUDIO_FORCE:-0}" != 1 ]]; then
    echo "setup_audio: a sound server with real outputs is running ($(echo $others | tr '\n' ' '));" \
         "the live tests would kill and rewire it. Run them in CI/a container, or set" \
         "SPECMON_AUDIO_FORCE=1" >&2
    exit 1
fi

if ! pactl list short sinks | grep -q "^[0-9]*[[:space:]]$SINK[[:space:]]"; then
    pactl load-module module-null-sink sink_name=$SINK rate=48000 >/dev/null
fi
pactl set-default-sink "$SINK"
pactl set-default-source "$SINK.monitor"

# PortAudio reaches PulseAudio through ALSA's "pulse" device (libasound2-plugins).
if [[ ! -e /usr/share/alsa/alsa.conf.d/50-pulseaudio.conf && ! -e /etc/alsa/conf.d/50-pulseaudio.conf ]]; then
    echo "setup_audio: ALSA pulse plugin config missing (libasound2-plugins)" >&2
    exit 1
fi
echo "setup_audio: pulseaudio up; default source $SINK.monitor"
