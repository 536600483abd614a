"""What `specmon score` and `specmon listen` share: the options that make them window and judge
alike, and the one-line error exit. One definition, so the two commands cannot drift apart."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

import typer

from monitor.windows import DEFAULT_MIN_VOICED, DEFAULT_VAD_DBFS

MODEL = typer.Option(None, "--model", help="Model .tflite (default: the bundled one).")
STRIDE = typer.Option(1.0, "--stride", min=0.032, help="Seconds between windows.")
THRESHOLD = typer.Option(None, "--threshold", min=0.0, max=1.0,
                         help="Score at or above which a window is 'negative' (default: the model's).")
VAD_DB = typer.Option(DEFAULT_VAD_DBFS, "--vad-db", help="Frame level (dBFS) that counts as voiced.")
MIN_VOICED = typer.Option(DEFAULT_MIN_VOICED, "--min-voiced", min=0.0, max=1.0,
                          help="Share of voiced frames below which a window is 'no-speech' "
                          "(0: score every window).")


def fail(msg: str, code: int = 2) -> None:
    """One line on stderr and a non-zero exit: the only way errors reach the user."""
    typer.echo(f"specmon: error: {msg}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def startup() -> Iterator[None]:
    """Ctrl-C while the model loads and numba compiles or loads its kernels exits 130 at once.

    A KeyboardInterrupt raised inside numba's compiler lands in a ctypes callback, which prints a
    trace and swallows it (numba then fails with an unrelated error). So during start-up, before
    anything is written, SIGINT ends the process directly. Outside the main thread: no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        os._exit(130)

    previous = signal.signal(signal.SIGINT, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
