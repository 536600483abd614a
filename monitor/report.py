"""`specmon report`: weeks of listen logs as one self-contained HTML page (and optionally one PNG).

The pieces: ``report_data`` loads and summarizes the logs (DuckDB), this module decides the
"persistently elevated" verdict per model, ``report_html`` draws the charts and writes the page.

The rule (``ElevatedRule``): a day *counts* when at least ``min_speech_min`` minutes of speech were
heard; a counted day is *elevated* when more than ``share`` of its scored windows were called
negative. The person is *persistently elevated* when at least ``days`` of the last ``window`` days
(ending on the last day in the logs) were elevated. If too few days counted for the rule to be
decided either way, the verdict says so instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from monitor.errors import SpecmonError
from monitor.report_data import LogSource, ModelData, ReportData, summarize


@dataclass(frozen=True)
class ElevatedRule:
    """When a stretch of days is called "persistently elevated" (see the module docstring)."""

    share: float = 0.5  # a day is elevated when MORE than this share of its windows were negative
    days: int = 8  # ... on at least this many days
    window: int = 14  # ... of the last this many days
    min_speech_min: float = 5.0  # a day with less speech than this does not count either way

    def __post_init__(self) -> None:
        if not 0.0 <= self.share < 1.0:
            raise SpecmonError(f"--elevated-share must be in [0, 1), got {self.share:g}")
        if not 1 <= self.window <= 90:
            raise SpecmonError(f"--window-days must be 1..90, got {self.window}")
        if not 1 <= self.days <= self.window:
            raise SpecmonError(f"--elevated-days must be 1..{self.window} (the window), got {self.days}")
        if self.min_speech_min < 0:
            raise SpecmonError(f"--min-speech must be >= 0 minutes, got {self.min_speech_min:g}")

    def describe(self) -> str:
        return (f"more than {self.share:.0%} of the speech windows called negative on at least "
                f"{self.days} of the last {self.window} days (a day counts with at least "
                f"{self.min_speech_min:g} minutes of speech)")


class State(Enum):
    ELEVATED = "elevated"
    NOT_ELEVATED = "not elevated"
    UNDETERMINED = "not enough speech to tell"


class DayStatus(Enum):
    ELEVATED = "elevated"
    BELOW = "below the rule"
    LITTLE_SPEECH = "too little speech"
    NO_DATA = "no data"


@dataclass
class Verdict:
    state: State
    rule: ElevatedRule
    days: list[dt.date]  # the window's days, oldest first
    status: list[DayStatus]
    share: np.ndarray  # negative share per window day (NaN without speech)
    speech_min: np.ndarray

    @property
    def elevated(self) -> int:
        return sum(s is DayStatus.ELEVATED for s in self.status)

    @property
    def counted(self) -> int:
        return sum(s in (DayStatus.ELEVATED, DayStatus.BELOW) for s in self.status)

    def headline(self) -> str:
        return {State.ELEVATED: "Persistently elevated",
                State.NOT_ELEVATED: "Not persistently elevated",
                State.UNDETERMINED: "Not enough speech to tell"}[self.state]

    def sentence(self) -> str:
        r = self.rule
        span = f"{_day(self.days[0])} – {_day(self.days[-1])}"
        above = f"more than {r.share:.0%} of the speech windows were called negative"
        if self.state is State.ELEVATED:
            return (f"On {self.elevated} of the last {r.window} days ({span}) {above} "
                    f"(the rule needs at least {r.days} days).")
        if self.state is State.NOT_ELEVATED:
            return (f"On {self.elevated} of the last {r.window} days ({span}) {above}; the rule needs "
                    f"at least {r.days} days.")
        return (f"Only {self.counted} of the last {r.window} days ({span}) had at least "
                f"{r.min_speech_min:g} minutes of speech scored by this model; on {self.elevated} of them "
                f"{above}. "
                f"The rule needs {r.days} elevated days, and the missing days could change the answer.")


def _day(d: dt.date) -> str:
    return f"{d.day} {d:%b %Y}"


def assess(model: ModelData, rule: ElevatedRule, end: dt.date) -> Verdict:
    """The verdict for one model over the rule's window of days ending on `end`."""
    days = [end - dt.timedelta(days=rule.window - 1 - i) for i in range(rule.window)]
    index = {d: i for i, d in enumerate(model.days)}
    share = np.full(rule.window, np.nan)
    speech = np.zeros(rule.window)
    status = []
    neg_share = model.negative_share
    for k, d in enumerate(days):
        i = index.get(d)
        if i is None or model.windows[i] == 0:
            status.append(DayStatus.NO_DATA)
            continue
        speech[k] = model.speech_s[i] / 60.0
        share[k] = neg_share[i]
        if speech[k] < rule.min_speech_min or model.scored[i] == 0:
            status.append(DayStatus.LITTLE_SPEECH)
        elif share[k] > rule.share:
            status.append(DayStatus.ELEVATED)
        else:
            status.append(DayStatus.BELOW)
    elevated = sum(s is DayStatus.ELEVATED for s in status)
    uncounted = sum(s in (DayStatus.LITTLE_SPEECH, DayStatus.NO_DATA) for s in status)
    if elevated >= rule.days:
        state = State.ELEVATED
    elif elevated + uncounted < rule.days:
        state = State.NOT_ELEVATED
    else:
        state = State.UNDETERMINED
    return Verdict(state, rule, days, status, share, speech)


@dataclass
class Report:
    """What `specmon report` made: the data, a verdict per model, the files written."""

    data: ReportData
    verdicts: list[Verdict]
    written: list[Path]


def make_report(source: LogSource, out_html: Path | None, out_png: Path | None = None,
                rule: ElevatedRule | None = None, tz: str | None = None) -> Report:
    """Summarize the source, decide the verdicts and write the HTML page and/or the PNG.

    Outputs are written to a temporary file beside the target and renamed into place, so a failed
    run never leaves a half-written report (or destroys the previous one).
    """
    from monitor import report_html

    rule = rule or ElevatedRule()
    for out in (out_html, out_png):
        if out is not None and Path(out).is_dir():
            raise SpecmonError(f"{out}: is a folder; give a file name for the report")
    data = summarize(source, tz)
    end = data.last_day
    verdicts = [assess(m, rule, end) for m in data.models]
    written = []
    if out_html is not None:
        _write_atomic(Path(out_html), report_html.render_html(data, verdicts).encode("utf-8"))
        written.append(Path(out_html))
    if out_png is not None:
        _write_atomic(Path(out_png), report_html.render_png(data, verdicts))
        written.append(Path(out_png))
    return Report(data, verdicts, written)


def _write_atomic(path: Path, content: bytes) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as e:
        raise SpecmonError(f"{path}: cannot write the report ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise SpecmonError(f"{path}: cannot write the report ({e.strerror or e})") from None
