"""Live commands: `specmon listen`, `specmon devices`.

pyaudio and rich are imported inside the commands, so `specmon score` never needs them.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TextIO

import typer

from monitor import cli_common, mqtt_cli  # mqtt_cli: MQTT and config-file options
from monitor.cli_common import fail
from monitor.errors import SpecmonError
from monitor.events import (
    AudioDropped,
    ClockStep,
    DeviceBack,
    DeviceLost,
    DeviceRetry,
    DeviceWaiting,
    Event,
    LiveStatus,
    LiveWindow,
    LogDeleted,
    LogOpened,
    LogRepaired,
)


def default_csv_path(now: datetime | None = None) -> Path:
    """specmon-YYYYmmdd-HHMMSS.csv in the current directory (local time)."""
    return Path(f"specmon-{(now or datetime.now()):%Y%m%d-%H%M%S}.csv")


def describe(ev: Event) -> str:
    """One line for a pipeline or log event (the pipeline reports facts; wording lives here)."""
    if isinstance(ev, AudioDropped):
        why = {"ring": "the pipeline fell behind and the buffer overflowed",
               "driver": "the audio driver reported an overrun; size estimated",
               "clock": "the stream fell behind the clock; found late"}.get(ev.cause, ev.cause)
        return f"audio lost: {ev.lost_s:.2f} s at {ev.offset_s:.2f} s ({why})"
    if isinstance(ev, DeviceLost):
        return f"audio input lost at {ev.offset_s:.1f} s ({ev.reason})"
    if isinstance(ev, DeviceRetry):
        return f"audio input lost ({ev.reason}); retrying in {ev.retry_in_s:.0f} s"
    if isinstance(ev, DeviceWaiting):
        return f"waiting for the input device ({ev.reason}); next look in {ev.retry_in_s:.0f} s"
    if isinstance(ev, DeviceBack):
        return f"audio input back after {ev.gap_s:.2f} s (gap at {ev.offset_s:.2f} s)"
    if isinstance(ev, ClockStep):
        return (f"clock: time_utc re-anchored by {ev.step_s:+.2f} s to the system clock "
                f"(at {ev.offset_s:.1f} s, now {ev.time_utc})")
    if isinstance(ev, LogRepaired):
        return (f"warning: {ev.path} ended in a torn row (power cut?): cut back to its last whole "
                f"row ({ev.bytes_cut} bytes removed)")
    if isinstance(ev, LogOpened):
        if ev.reopened:
            return f"log: reopened on SIGHUP: {'appending to' if ev.appending else 'new file'} {ev.path}"
        return f"log: {'appending to' if ev.appending else 'new file'} {ev.path}"
    if isinstance(ev, LogDeleted):
        return f"log: deleted {ev.path} (older than --keep-days)"
    return str(ev)


class EventReporter:
    """Sink that words events: each becomes the status message (the dashboard shows it) and, when
    given a stream (headless runs: stderr, i.e. the journal under systemd), one line there."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.status: LiveStatus | None = None  # known once the session runs
        self._last = ""

    def report(self, ev: Event, status: LiveStatus | None = None) -> None:
        text = describe(ev)
        status = status or self.status
        if status is not None:
            status.message = text
        # Before the session (e.g. a log repaired at start) there is no dashboard yet: stderr.
        stream = self.stream if self.stream is not None or status is not None else sys.stderr
        if stream is not None and text != self._last:
            self._last = text
            stream.write(f"specmon: {text}\n")
            stream.flush()

    def on_event(self, ev: Event, status: LiveStatus) -> None:
        self.status = status
        self.report(ev, status)

    def on_window(self, w: LiveWindow, status: LiveStatus) -> None:
        pass

    def on_tick(self, status: LiveStatus) -> None:
        pass

    def close(self, status: LiveStatus) -> None:
        pass


def _wait_seconds(text: str) -> float:
    """--wait-device SECONDS|forever as seconds (inf for forever); a bad value fails in one line."""
    if text.strip().lower() in ("forever", "inf", "infinity"):
        return float("inf")
    try:
        s = float(text)
    except ValueError:
        s = -1.0
    if not s >= 0 or s == float("inf"):
        fail(f"--wait-device {text!r}: expected a number of seconds or 'forever'")
    return s


class _EarlyInterrupt:
    """SIGINT from the end of start-up until the pipeline's own handler is in place (the log being
    created, the sinks wired): noted rather than raised in the middle of a step, then the session
    ends before it starts (a log this run created is removed whole) or, once the pipeline exists,
    it is told to stop."""

    def __init__(self) -> None:
        self.hit = False
        self.pipe = None

    def __call__(self, signum, frame) -> None:
        self.hit = True
        if self.pipe is not None:
            self.pipe.stop("interrupted")


def _filtered_stderr(active: bool):
    import contextlib

    from monitor.devices import filtered_stderr

    return filtered_stderr() if active else contextlib.nullcontext()


def listen(
    device: str = typer.Option(None, "--device", "-d",
                               help="Input device index or name (see `specmon devices`; "
                               "default: the system's default input)."),
    input_file: Path = typer.Option(None, "--input", "-i",
                                    help="Replay an audio file through the live pipeline "
                                    "instead of a microphone."),
    realtime: bool = typer.Option(True, "--realtime/--fast",
                                  help="With --input: replay at real-time pace, or as fast as "
                                  "possible."),
    csv_path: Path = typer.Option(None, "--csv",
                                  help="CSV log (default: specmon-YYYYmmdd-HHMMSS.csv in the "
                                  "current directory). An existing specmon log is appended to."),
    csv_dir: Path = typer.Option(None, "--csv-dir",
                                 help="Instead of --csv: one log per UTC day in this folder "
                                 "(specmon-YYYY-MM-DD.csv; created if missing)."),
    keep_days: int = typer.Option(None, "--keep-days", min=1,
                                  help="With --csv-dir: delete day logs older than this many days "
                                  "(the current day counts as one and is never deleted)."),
    fsync_every: float = typer.Option(10.0, "--fsync-every", min=0.0,
                                      help="Seconds between flushes of the log to disk (0: every "
                                      "row). A power cut loses at most the rows of this interval; "
                                      "longer spares an SD card."),
    wait_device: str = typer.Option(None, "--wait-device", metavar="SECONDS|forever",
                                    help="If the input device is missing at start, wait for it "
                                    "(retrying with backoff) this long, or forever, instead of "
                                    "exiting with status 2."),
    stride: float = cli_common.STRIDE,
    threshold: float = cli_common.THRESHOLD,
    duration: float = typer.Option(None, "--duration", min=0.1,
                                   help="Stop after this many seconds (default: until Ctrl-C)."),
    model: Path = cli_common.MODEL,
    headless: bool = typer.Option(False, "--headless",
                                  help="One plain line per window instead of the dashboard "
                                  "(automatic when stdout is not a terminal)."),
    record: Path = typer.Option(None, "--record",
                                help="Also save the audio as analysed (16 kHz; 32-bit float in a .wav) here. "
                                "Without it, audio is never written to disk."),
    rate: int = typer.Option(None, "--rate",
                             help="Capture rate in Hz (default: 16000 if the device accepts "
                             "it, else its default rate; resampled to 16 kHz)."),
    vad_db: float = cli_common.VAD_DB,
    min_voiced: float = cli_common.MIN_VOICED,
    config: Path = mqtt_cli.CONFIG,
    mqtt: str = mqtt_cli.MQTT,
    mqtt_ca: Path = mqtt_cli.MQTT_CA,
    device_id: str = mqtt_cli.DEVICE_ID,
    ha_discovery: bool = mqtt_cli.HA_DISCOVERY,
    mqtt_queue: Path = mqtt_cli.MQTT_QUEUE,
    mqtt_queue_days: float = mqtt_cli.MQTT_QUEUE_DAYS,
) -> None:
    """Listen to a microphone (or --input FILE) and score each 4-s window live.

    One CSV row per window. Ctrl-C, SIGTERM, --duration or the end of --input stops it and
    prints a summary.

    A research and screening aid, not a diagnosis.
    """
    if input_file is not None and (device is not None or rate is not None):
        fail("--input replays a file; it cannot be combined with --device or --rate")
    if csv_dir is not None and csv_path is not None:
        fail("--csv and --csv-dir cannot be combined (one file, or one file per day)")
    if keep_days is not None and csv_dir is None:
        fail("--keep-days needs --csv-dir (it deletes old day logs there)")
    wait_s = _wait_seconds(wait_device) if wait_device is not None else None
    if wait_s is not None and input_file is not None:
        fail("--wait-device waits for a microphone; it cannot be combined with --input")
    if threading.current_thread() is threading.main_thread():
        # SIGHUP (logrotate) before the session's handler is in place: ignored, not fatal. The log
        # is opened after this, at its path, so a rotation this early loses nothing.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Imports, model load, numba kernels: Ctrl-C here is a quiet 130. Nothing is written before
    # this ends (the log is opened after it), so nothing can be lost or left half-made.
    with cli_common.startup():
        from monitor.csvlog import CsvLog, DailyCsvLog
        from monitor.pipeline import ListenConfig, Pipeline, warm_up
        from monitor.scorer import Scorer
        from monitor.source import FileSource, MicSource
        from monitor.threads import limit_threads
        from monitor.windows import Gate

        # One thread for numpy's matrix products (Whisper's blocks) and numba: a window a second
        # needs no more, and idle BLAS threads spin. Measured: a window's Whisper states took
        # 0.10 s of CPU on one thread against 0.25 s on two (which were 0.03 s sooner).
        limit_threads(1)
        try:
            scorer = Scorer(model)
            warm_up()
        except SpecmonError as e:
            fail(str(e))
    from monitor.sdnotify import Notifier

    notifier = Notifier()  # systemd's watchdog, when run by a unit with WatchdogSec
    plain = headless or not sys.stdout.isatty()
    # First, so the dashboard and printers see an event's message on the same tick.
    reporter = EventReporter(sys.stderr if plain else None)
    sinks: list = [reporter]
    early = _EarlyInterrupt()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, early)
    try:
        if input_file is not None:
            source = FileSource(input_file, realtime)
            for w in source.warnings:  # e.g. telephone-band audio: scored, with a word of caution
                typer.echo(f"specmon: warning: {w}", err=True)
        else:
            source = MicSource(device, rate)
        if record is not None and record.is_dir():
            raise SpecmonError(f"{record}: is a directory, not a WAV file")
        # The log refuses a bad path before any capture starts.
        if csv_dir is not None:
            log = DailyCsvLog(csv_dir, keep_days, fsync_every, reporter.report)
        else:
            log = CsvLog(csv_path or default_csv_path(), fsync_every, reporter.report)
        path = log.path
        sinks.append(log)
        if wait_s is not None:
            from monitor.devices import wait_for_device

            try:
                found = wait_for_device(device, wait_s, reporter.report, notifier.heartbeat)
            except KeyboardInterrupt:
                found = None
            if not found:
                log.abandon()  # stopped while waiting: no session, no empty log
                raise typer.Exit(0 if found is False else 130)  # SIGTERM: 0; Ctrl-C: 130
        thr = scorer.threshold if threshold is None else threshold
        status = LiveStatus(device=source.name, sample_rate=source.rate, csv_path=str(path),
                            threshold=thr)
        if plain:
            from monitor.dashboard import PlainPrinter

            sinks.append(PlainPrinter(sys.stdout))
        else:
            from monitor.dashboard import Dashboard

            sinks.append(Dashboard())
        mq = mqtt_cli.listen_sink(mqtt, ca=mqtt_ca, device_id=device_id, ha_discovery=ha_discovery,
                                  queue=mqtt_queue, queue_days=mqtt_queue_days, threshold=thr,
                                  plain=plain)
        if mq is not None:
            sinks.append(mq)
        cfg = ListenConfig(stride_s=stride, threshold=threshold, gate=Gate(vad_db, min_voiced),
                           duration_s=duration, record_path=record,
                           tick_s=1.0 if plain else 0.2, live_view=not plain,
                           heartbeat=notifier.heartbeat if notifier.enabled else None)
        pipe = Pipeline(source, scorer, sinks, status, cfg)
        early.pipe = pipe
        if early.hit:
            raise KeyboardInterrupt
        error: SpecmonError | None = None
        try:
            with _filtered_stderr(input_file is None):
                pipe.run()
        except SpecmonError as e:
            if not pipe.started:  # e.g. no microphone: no session, no summary, no empty log
                raise
            error = e
            pipe.summary.stopped_by = pipe.summary.stopped_by or "stopped by an error"
    except (SpecmonError, KeyboardInterrupt) as e:
        # A failed start, or Ctrl-C before the session's own handler: a log this run created and
        # wrote nothing to is removed; an existing one is closed untouched.
        for s in sinks:
            if isinstance(s, CsvLog | DailyCsvLog):
                s.abandon()
        if isinstance(e, KeyboardInterrupt):
            raise typer.Exit(130) from None
        fail(str(e))
        return
    for line in pipe.summary.lines():
        typer.echo(line)
    typer.echo(f"log: {log.path}")
    if error is not None:
        fail(str(error))
    if pipe.summary.stopped_by == "interrupted":
        raise typer.Exit(130)


def devices() -> None:
    """List input devices: index, name, input channels and the sample rates they accept."""
    from monitor.devices import PROBE_RATES, default_input_index, list_devices, open_pyaudio

    try:
        devs = list_devices()
        pa = open_pyaudio()
        try:
            default = default_input_index(pa)
        finally:
            pa.terminate()
    except SpecmonError as e:
        fail(str(e))
        return
    if not devs:
        fail("no input devices found (is a microphone connected and the sound server running?)")
    probe = "/".join(f"{r / 1000:g}" for r in PROBE_RATES)
    typer.echo(f"{'index':>5}  {'ch':>3}  {'rates (kHz; probed ' + probe + ')':<34}  name")
    for d in devs:
        rates = "/".join(f"{r / 1000:g}" for r in d.rates) or "none"
        mark = "  (default)" if d.index == default else ""
        typer.echo(f"{d.index:>5}  {d.max_input_channels:>3}  {rates:<34}  {d.name}{mark}")
