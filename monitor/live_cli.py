"""Live commands: listen, devices, plot. (Placeholder: being written.)"""

from __future__ import annotations

import typer


def listen() -> None:
    """Listen to a microphone (or --input FILE) and score each window live."""
    raise typer.Exit(2)


def devices() -> None:
    """List input devices."""
    raise typer.Exit(2)


def plot() -> None:
    """Plot a session's score timeline."""
    raise typer.Exit(2)
