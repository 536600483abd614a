"""PortAudio (pyaudio) access: quiet initialisation, device listing and resolution, rate choice."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from monitor.errors import SpecmonError

PROBE_RATES = (8000, 16000, 22050, 32000, 44100, 48000)
NO_DEVICE_HINT = (
    "list devices with `specmon devices`, pick one with --device INDEX|NAME, "
    "or replay a file with --input FILE"
)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence fd 2 while ALSA/JACK probe devices: they print dozens of harmless lines there."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# Lines ALSA, JACK and PortAudio's ALSA host print on fd 2 while probing or when a stream fails.
_NOISE = ("ALSA lib ", "Expression '", "Cannot connect to server", "jack server",
          "JackShm", "Cannot lock down", "PaAlsaStream")


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Route fd 2 through a thread that drops the audio libraries' C-level noise (it would tear the
    dashboard); everything else, including our own messages, passes through unchanged."""
    import threading

    try:
        saved = os.dup(2)
        r, w = os.pipe()
    except OSError:
        yield
        return

    def pump() -> None:
        with os.fdopen(r, "rb") as src:
            for line in src:
                if not line.decode("utf-8", "replace").startswith(_NOISE):
                    os.write(saved, line)

    t = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    t.start()
    os.dup2(w, 2)
    os.close(w)
    try:
        yield
    finally:
        import sys

        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer is gone: the pump sees EOF and ends
        t.join(timeout=2.0)
        os.close(saved)


def open_pyaudio():
    """A fresh pyaudio.PyAudio (PortAudio enumerates devices at this point, so re-create it to see
    a device that came back)."""
    try:
        import pyaudio
    except ImportError as e:  # pragma: no cover - pyaudio is a dependency
        raise SpecmonError(f"pyaudio is not installed ({e})") from None
    with quiet_stderr():
        return pyaudio.PyAudio()


@dataclass
class InputDevice:
    index: int
    name: str
    max_input_channels: int
    default_rate: int
    rates: tuple[int, ...]  # of PROBE_RATES, those the device accepts (mono float32)


def supported(pa, index: int, rate: int, channels: int = 1) -> bool:
    """Whether the device accepts float32 input at this rate and channel count."""
    import pyaudio

    try:
        with quiet_stderr():
            return bool(
                pa.is_format_supported(
                    rate, input_device=index, input_channels=channels,
                    input_format=pyaudio.paFloat32,
                )
            )
    except ValueError:
        return False


def input_devices(pa, probe: bool = True) -> list[InputDevice]:
    """Every device with at least one input channel."""
    out = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        ch = int(d.get("maxInputChannels", 0))
        if ch <= 0:
            continue
        rates = tuple(r for r in PROBE_RATES if supported(pa, i, r)) if probe else ()
        out.append(InputDevice(i, str(d["name"]), ch, int(d["defaultSampleRate"]), rates))
    return out


def default_input_index(pa) -> int | None:
    try:
        return int(pa.get_default_input_device_info()["index"])
    except OSError:
        return None


def resolve_device(pa, device: str | int | None) -> InputDevice:
    """--device INDEX|NAME (exact name, else a unique case-insensitive substring) or the default."""
    devs = input_devices(pa, probe=False)
    if not devs:
        raise SpecmonError(f"no microphone (input device) found; {NO_DEVICE_HINT}")
    if device is None or device == "":
        idx = default_input_index(pa)
        for d in devs:
            if d.index == idx:
                return d
        return devs[0]
    text = str(device).strip()
    if text.isdigit():
        for d in devs:
            if d.index == int(text):
                return d
        raise SpecmonError(f"no input device with index {text}; {NO_DEVICE_HINT}")
    exact = [d for d in devs if d.name == text]
    if exact:
        return exact[0]
    sub = [d for d in devs if text.lower() in d.name.lower()]
    if len(sub) == 1:
        return sub[0]
    if not sub:
        raise SpecmonError(f"no input device named {text!r}; {NO_DEVICE_HINT}")
    names = ", ".join(f"{d.index}: {d.name}" for d in sub[:5])
    raise SpecmonError(f"--device {text!r} matches several devices ({names}); use its index")


def choose_rate(supported: Callable[[int], bool], default_rate: int, wanted: int | None) -> int:
    """Capture rate: the wanted one (if any), else 16 kHz if supported, else the device's default,
    else the first probe rate it accepts. Anything but 16 kHz is resampled in the pipeline."""
    if wanted is not None:
        if supported(wanted):
            return wanted
        raise SpecmonError(f"the device does not accept {wanted} Hz")
    for r in (16000, default_rate, *PROBE_RATES[::-1]):
        if r and supported(r):
            return int(r)
    raise SpecmonError("the device accepts none of the usual sample rates (8-48 kHz)")


def list_devices() -> list[InputDevice]:
    """Input devices with the probe rates they accept (for `specmon devices`)."""
    pa = open_pyaudio()
    try:
        return input_devices(pa, probe=True)
    finally:
        pa.terminate()


def wait_for_device(device: str | int | None, seconds: float, notify: Callable | None = None,
                    heartbeat: Callable[[], None] | None = None) -> bool:
    """--wait-device: until the device can be resolved (PortAudio re-enumerated each try, backoff
    1 s doubling to 30 s) or `seconds` (inf: forever) pass. True once it is there; False if SIGTERM
    arrived meanwhile, KeyboardInterrupt if SIGINT did (Ctrl-C); the resolve error once time is up."""
    import math
    import signal
    import threading
    import time

    from monitor.events import DeviceWaiting

    stop = threading.Event()
    got: list[int] = []  # the signal that stopped the wait
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, lambda n, _f: (got.append(n), stop.set()))
    end = time.monotonic() + seconds if math.isfinite(seconds) else math.inf
    delay = 1.0
    try:
        while True:
            pa = open_pyaudio()
            try:
                resolve_device(pa, device)
                return True
            except SpecmonError as e:
                left = end - time.monotonic()
                if left <= 0:
                    raise
                wait = min(delay, left)
                if notify is not None:
                    notify(DeviceWaiting(str(e).split(";")[0], wait))
            finally:
                with quiet_stderr():
                    pa.terminate()
            t_end = time.monotonic() + wait
            while not stop.is_set() and time.monotonic() < t_end:
                if heartbeat is not None:
                    heartbeat()
                stop.wait(min(1.0, max(0.0, t_end - time.monotonic())))
            if stop.is_set():
                if got and got[0] == signal.SIGINT:
                    raise KeyboardInterrupt
                return False
            delay = min(delay * 2, 30.0)
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
