"""The `specmon` command line (typer). Each command is thin: it parses options and calls one module."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import typer

from monitor import __version__, cli_common
from monitor.cli_common import fail
from monitor.errors import SpecmonError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="specmon: how negative does the speaker sound, 4-second window by window. "
    "A research and screening aid, not a diagnosis.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"specmon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


@contextlib.contextmanager
def _file_progress(total: int):
    """A progress bar on stderr for long batches (only on a terminal); yields a per-file callback."""
    if total < 2 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("scoring", total=total)
        yield lambda _path: bar.advance(task)


@app.command()
def score(
    files: list[Path] = typer.Argument(..., help="Audio files (WAV/FLAC/OGG, any rate/channels)."),
    output: Path = typer.Option(None, "--output", "-o", help="CSV path (default: stdout)."),
    model: Path = cli_common.MODEL,
    stride: float = cli_common.STRIDE,
    threshold: float = cli_common.THRESHOLD,
    vad_db: float = cli_common.VAD_DB,
    min_voiced: float = cli_common.MIN_VOICED,
) -> None:
    """Score audio files offline: one CSV row per window (file,start_s,end_s,score,label,...)."""
    from monitor.scorer import Scorer
    from monitor.scoring import run_score
    from monitor.windows import Gate

    try:
        scorer = Scorer(model)
        gate = Gate(vad_db, min_voiced)
        if output is None:
            bad = run_score(files, scorer, sys.stdout, stride, gate, threshold)
        else:
            try:
                fh = open(output, "w", newline="")
            except OSError as e:
                fail(f"{output}: cannot write ({e.strerror})")
            with fh, _file_progress(len(files)) as step:
                bad = run_score(files, scorer, fh, stride, gate, threshold, progress=step)
    except SpecmonError as e:
        fail(str(e))
    if bad:
        fail(f"{bad} of {len(files)} file(s) could not be scored", 1)


@app.command()
def evaluate(
    manifest: Path = typer.Option(..., "--manifest", help="Manifest CSV (path,corpus,speaker,...)."),
    model: Path = typer.Option(None, "--model", help="int8 model (default: the bundled one)."),
    float_model: Path = typer.Option(None, "--float-model",
                                     help="float32 model to compare (default: <model>-float32)."),
    speakers: str = typer.Option(None, "--speakers", help="Comma-separated speakers to evaluate "
                                 "(default: all in the manifest)."),
    out_dir: Path = typer.Option(Path("eval"), "--out", help="Folder for report.json and PNGs."),
) -> None:
    """Evaluate a model on a manifest: metrics per window and speaker, ROC and histogram PNGs."""
    from model.evaluate import run_evaluation

    try:
        run_evaluation(manifest, model, float_model, speakers, out_dir)
    except SpecmonError as e:
        fail(str(e))


# The live commands live in their own module; pyaudio is imported inside them, not here.
from monitor import live_cli  # noqa: E402

app.command("listen")(live_cli.listen)
app.command("devices")(live_cli.devices)
app.command("plot")(live_cli.plot)

# The fleet collector (issue 9): MQTT -> SQLite/PostgreSQL; paho is imported inside the command.
from monitor import mqtt_cli  # noqa: E402

app.command("collect")(mqtt_cli.collect)

# `specmon report`: weeks of listen logs as one HTML page (issue 9); duckdb is imported inside it.
from monitor import report_cli  # noqa: E402

app.command("report")(report_cli.report)


def main() -> None:
    try:
        app()
    except SpecmonError as e:
        typer.echo(f"specmon: error: {e}", err=True)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
