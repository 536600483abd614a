"""The `specmon report` command: options, wording and exit codes; the work is in monitor.report."""

from __future__ import annotations

from pathlib import Path

import typer

from monitor.cli_common import fail
from monitor.errors import SpecmonError


def report(
    logs: list[Path] = typer.Argument(None, help="specmon listen CSV logs, or folders of them."),
    db: str = typer.Option(None, "--db", help="Instead of logs: a `specmon collect` store (SQLite file "
                           "or postgresql://user@host/dbname); with --device."),
    device: str = typer.Option(None, "--device", help="The device (its MQTT device id) to report on "
                               "from --db."),
    out: Path = typer.Option(None, "--out", "-o",
                             help="HTML report to write (default: report.html unless only --png)."),
    png: Path = typer.Option(None, "--png", help="Also (or only) write the summary as one PNG image."),
    tz: str = typer.Option(None, "--tz", help="Time zone for days and hours, e.g. Europe/Berlin "
                           "(default: this machine's)."),
    elevated_share: float = typer.Option(0.5, "--elevated-share", min=0.0, max=0.99,
                                         help="A day is elevated when more than this share of its "
                                         "speech windows were called negative."),
    elevated_days: int = typer.Option(8, "--elevated-days", min=1,
                                      help="Persistently elevated: at least this many elevated days..."),
    window_days: int = typer.Option(14, "--window-days", min=1, max=90,
                                    help="...among the last this many days."),
    min_speech: float = typer.Option(5.0, "--min-speech", min=0.0,
                                     help="Minutes of speech a day needs to count either way."),
) -> None:
    """Report on days or weeks of listen logs: per-day speech, negative share, median score, hour x day
    maps, a 14-day trend with a "persistently elevated" marker, and data quality. One self-contained
    HTML file. Reads listen logs, or one device's windows from a `specmon collect` store (--db,
    --device). A screening aid, not a diagnosis."""
    from monitor.report import ElevatedRule, make_report
    from monitor.report_data import CsvLogs, StoreLogs

    if out is None and png is None:
        out = Path("report.html")
    if db is None and device is not None:
        fail("--device goes with --db (a specmon collect store)")
    if db is not None and logs:
        fail("give either listen logs or --db, not both (the same windows could be counted twice)")
    if db is None and not logs:
        fail("no logs given: name listen CSV logs or folders, or --db DB --device X")
    try:
        rule = ElevatedRule(elevated_share, elevated_days, window_days, min_speech)
        source = CsvLogs(logs) if db is None else StoreLogs(db, device)
        rep = make_report(source, out, png, rule, tz)
    except SpecmonError as e:
        fail(str(e))
        return
    for m, v in zip(rep.data.models, rep.verdicts, strict=True):
        typer.echo(f"model {m.model_id}: {len(m.days)} day(s); {v.headline().lower()} "
                   f"({v.elevated} of the last {v.rule.window} days elevated, {v.counted} counted)")
    for p in rep.written:
        typer.echo(str(p))
