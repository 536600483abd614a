"""What `specmon score` and `specmon listen` share: the options that make them window and judge
alike, and the one-line error exit. One definition, so the two commands cannot drift apart."""

from __future__ import annotations

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
