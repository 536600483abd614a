"""The `specmon` command line (typer). Each command is thin: it parses options and calls one module.

Never a traceback: main() turns any unexpected exception into one line on stderr and exit 1 (the
trace goes only to the `--debug FILE` log); Ctrl-C at any point, start-up included, exits 130
quietly; a closed stdout (`specmon score ... | head -1`) ends the command quietly.
"""

from __future__ import annotations

import os
import signal
import sys


def _exit_interrupted(signum, frame) -> None:
    os._exit(130)


# Ctrl-C while the heavy modules load (numba: a second or more on a Pi) ends the process at once
# with 130: a KeyboardInterrupt raised inside an import-lock callback would be printed and
# swallowed instead. Nothing has been written yet. Python's handler is back at the end of this file.
try:
    _sigint_before = signal.signal(signal.SIGINT, _exit_interrupted)
except ValueError:  # imported outside the main thread
    _sigint_before = None

import contextlib  # noqa: E402
import traceback  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from monitor import __version__, cli_common  # noqa: E402
from monitor.cli_common import fail  # noqa: E402
from monitor.errors import SpecmonError  # noqa: E402

INTERRUPTED = 130
INTERNAL_ERROR = 1
_debug_log: Path | None = None  # --debug FILE: where unexpected errors' full traces go


def _interrupted(e: BaseException | None) -> bool:
    """Is e a Ctrl-C, or an error it caused? (A KeyboardInterrupt raised while numba's compiled code
    runs comes back as "SystemError: ... returned a result with an exception set".)"""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


class _Group(TyperGroup):
    """Ctrl-C inside any command (model load, numba compile, scoring) is exit 130, not a trace."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as e:
            if _interrupted(e):
                raise typer.Exit(INTERRUPTED) from None
            raise
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED) from None


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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
    debug: Path = typer.Option(None, "--debug", metavar="FILE",
                               help="Append the full trace of an unexpected error to FILE "
                               "(accepted anywhere on the command line)."),
) -> None:
    global _debug_log
    if debug is not None:
        _debug_log = debug


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
    with cli_common.startup():  # imports, model, numba kernels: Ctrl-C here is a quiet 130
        from monitor.scorer import Scorer
        from monitor.scoring import run_score, warm_up
        from monitor.windows import Gate

        try:
            scorer = Scorer(model)
            warm_up()
        except SpecmonError as e:
            fail(str(e))
    gate = Gate(vad_db, min_voiced)
    try:
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
    except BrokenPipeError:
        raise  # the reader of stdout is gone (`| head`): main() ends quietly
    except OSError as e:  # a full disk, an I/O error: the rows of the files before it are kept
        fail(f"{output or 'stdout'}: cannot write ({e.strerror or e})")
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
    with cli_common.startup():  # imports and numba kernels: Ctrl-C here is a quiet 130
        from model.evaluate import run_evaluation
        from monitor.scoring import warm_up

        warm_up(parallel=True)  # the corpus goes through the threaded STFT
    try:
        run_evaluation(manifest, model, float_model, speakers, out_dir)
    except SpecmonError as e:
        fail(str(e))


@app.command()
def plot(
    log: Path = typer.Argument(..., help="A CSV log written by `specmon listen`."),
    output: Path = typer.Option(Path("timeline.png"), "--output", "-o", help="PNG to write."),
    threshold: float = typer.Option(None, "--threshold", min=0.0, max=1.0,
                                    help="Threshold line (default: the bundled model's)."),
) -> None:
    """Plot a session's score timeline (scores, smoothed score, negative and no-speech spans).

    Damaged lines (a row torn by a power cut) are skipped and reported on stderr."""
    with cli_common.startup():  # matplotlib's import: Ctrl-C here is a quiet 130
        from monitor.plot import plot_log

    try:
        if threshold is None:
            from monitor.scorer import DEFAULT_MODEL, read_model_info

            threshold = read_model_info(DEFAULT_MODEL).threshold
        rows = plot_log(log, output, threshold)
    except SpecmonError as e:
        fail(str(e))
        return
    if rows.skipped:
        shown = "; ".join(rows.skipped[:3]) + ("; ..." if len(rows.skipped) > 3 else "")
        typer.echo(f"specmon: warning: {log}: skipped {len(rows.skipped)} damaged line(s) "
                   f"(torn by a power cut or a crash?): {shown}", err=True)
    typer.echo(str(output))


# The live commands live in their own module; pyaudio is imported inside them, not here.
from monitor import live_cli  # noqa: E402

app.command("listen")(live_cli.listen)
app.command("devices")(live_cli.devices)

# The fleet collector (issue 9): MQTT -> SQLite/PostgreSQL; paho is imported inside the command.
from monitor import mqtt_cli  # noqa: E402

app.command("collect")(mqtt_cli.collect)

# `specmon report`: weeks of listen logs as one HTML page (issue 9); duckdb is imported inside it.
from monitor import report_cli  # noqa: E402

app.command("report")(report_cli.report)


def _take_debug(args: list[str]) -> tuple[list[str], Path | None]:
    """Remove `--debug FILE` / `--debug=FILE` from anywhere before `--`; returns (args, FILE)."""
    out, path, i = [], None, 0
    while i < len(args):
        a = args[i]
        if a == "--":
            out += args[i:]
            break
        if a == "--debug" and i + 1 < len(args):
            path, i = Path(args[i + 1]), i + 2
            continue
        if a.startswith("--debug="):
            path, i = Path(a.split("=", 1)[1]), i + 1
            continue
        out.append(a)
        i += 1
    return out, path


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


def _report_unexpected(e: BaseException, argv: list[str]) -> None:
    """One line on stderr; the full trace only into the --debug log."""
    where = "rerun with --debug FILE to save the full trace"
    if _debug_log is not None:
        try:
            with open(_debug_log, "a", encoding="utf-8") as fh:
                stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
                fh.write(f"--- {stamp} specmon {__version__}: {' '.join(argv)}\n")
                fh.write("".join(traceback.format_exception(type(e), e, e.__traceback__)))
            where = f"full trace in {_debug_log}"
        except OSError as err:
            where = f"could not write the trace to {_debug_log}: {err.strerror or err}"
    print(f"specmon: error: unexpected {_one_line(e)} ({where})", file=sys.stderr)


def _quiet_broken_pipe() -> None:
    """stdout's reader is gone: point stdout at /dev/null so the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> None:
    global _debug_log
    args = list(sys.argv[1:] if argv is None else argv)
    args, _debug_log = _take_debug(args)
    try:
        try:
            app(args=args, prog_name="specmon")
        finally:
            sys.stdout.flush()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    except BrokenPipeError:
        _quiet_broken_pipe()
        sys.exit(INTERNAL_ERROR)
    except SpecmonError as e:
        print(f"specmon: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except Exception as e:  # the last line of defence: one line, never a trace
        if _interrupted(e):
            sys.exit(INTERRUPTED)
        _report_unexpected(e, ["specmon", *args])
        sys.exit(INTERNAL_ERROR)


if _sigint_before is not None:  # imports done: Ctrl-C raises KeyboardInterrupt again
    # Even when the parent ignored SIGINT (a background job of a script: the child inherits
    # SIG_IGN). The session's own handler takes SIGINT regardless, so an ignored SIGINT here would
    # only be lost in the gaps between start-up's handlers, and the session would then run on.
    signal.signal(signal.SIGINT, signal.default_int_handler if _sigint_before == signal.SIG_IGN
                  else _sigint_before)

if __name__ == "__main__":
    main()
