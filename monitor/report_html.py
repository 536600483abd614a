"""Charts (matplotlib) and the self-contained HTML page of `specmon report`.

Every chart is inline SVG (text kept as text), the page has its CSS inline and nothing it loads
from anywhere: it can be mailed or opened offline. A short inline script marks the <body> with
how many charts the browser laid out (``data-charts-rendered``), which the tests read back.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import re

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from monitor import __version__
from monitor.report import DayStatus, State, Verdict
from monitor.report_data import HOUR_MIN_SPEECH_S, ModelData, ReportData

DISCLAIMER = ("specmon is a research and screening aid, not a diagnosis. A high score means the voice "
              "sounded negative to this model (it mostly hears arousal: anger, fear and also excited or "
              "happy speech score high, while sad speech often does not). Do not make clinical "
              "decisions from this report; if you are worried about someone, talk to a health "
              "professional.")
RED, BLUE, GREY, SPEECH, LIGHT = "#c0392b", "#5b7ea4", "#c8ccd0", "#3b82b8", "#eceef0"
STATUS_COLOUR = {DayStatus.ELEVATED: RED, DayStatus.BELOW: BLUE, DayStatus.LITTLE_SPEECH: GREY}
HEAT_CMAP = "YlOrRd"

matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "specmon-report",
                            "font.family": "DejaVu Sans", "font.size": 9})


# -- charts ----------------------------------------------------------------------------------------
def _threshold_value(m: ModelData) -> float | None:
    try:
        return float(m.threshold.text())
    except ValueError:
        return None


def _day_status(m: ModelData, v: Verdict) -> list[DayStatus]:
    """Each day of the model coloured like the trend: elevated, below, too little speech, no data."""
    rule, share = v.rule, m.negative_share
    out = []
    for i in range(len(m.days)):
        if m.windows[i] == 0:
            out.append(DayStatus.NO_DATA)
        elif m.speech_s[i] / 60 < rule.min_speech_min or m.scored[i] == 0:
            out.append(DayStatus.LITTLE_SPEECH)
        else:
            out.append(DayStatus.ELEVATED if share[i] > rule.share else DayStatus.BELOW)
    return out


def draw_trend(ax, v: Verdict) -> None:
    """The rule's window: each day's negative share, coloured by how it counts."""
    x = np.arange(len(v.days))
    for i, s in enumerate(v.status):
        if s is DayStatus.NO_DATA:
            ax.text(i, 0.03, "no data", rotation=90, ha="center", va="bottom", fontsize=8, color="0.45")
            continue
        h = 0.0 if math.isnan(v.share[i]) else v.share[i]
        ax.bar(i, h, width=0.75, color=STATUS_COLOUR[s], zorder=2,
               hatch="///" if s is DayStatus.LITTLE_SPEECH else None, edgecolor="white", lw=0)
        ax.text(i, h + 0.02, f"{v.speech_min[i]:.0f} min", ha="center", va="bottom", fontsize=7,
                color="0.3")
    ax.axhline(v.rule.share, color="k", ls="--", lw=1, zorder=3)
    ax.set_xticks(x, [f"{d:%a}\n{d.day} {d:%b}" for d in v.days], fontsize=8)
    ax.set_xlim(-0.6, len(v.days) - 0.4)
    ax.set_ylim(0, 1.08)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_ylabel("speech windows\ncalled negative")
    ax.grid(axis="y", color="0.9", zorder=0)
    ax.legend(handles=[Patch(color=RED, label=f"elevated day ({v.elevated})"),
                       Patch(color=BLUE, label="below the rule"),
                       Patch(facecolor=GREY, hatch="///", edgecolor="white",
                             label=f"< {v.rule.min_speech_min:g} min speech: not counted"),
                       Line2D([], [], color="k", ls="--", lw=1, label=f"rule: above {v.rule.share:.0%}")],
              loc="upper left", fontsize=7.5, frameon=False, ncols=4, bbox_to_anchor=(0, 1.16))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _date_axis(ax, m: ModelData) -> np.ndarray:
    x = matplotlib.dates.date2num(m.days)
    if len(x) <= 45:  # whole days only: an automatic locator would tick hours on a short range
        ax.xaxis.set_major_locator(matplotlib.dates.DayLocator(interval=max(1, math.ceil(len(x) / 12))))
        ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%d %b"))
    else:
        loc = matplotlib.dates.AutoDateLocator(minticks=4, maxticks=12)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(loc))
    ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)
    return x


def _window_span(ax, v: Verdict) -> None:
    lo, hi = ax.get_xlim()
    a = max(matplotlib.dates.date2num(v.days[0]) - 0.5, lo)
    b = min(matplotlib.dates.date2num(v.days[-1]) + 0.5, hi)
    ax.axvspan(a, b, color="#fff4d6", zorder=0, lw=0)
    ax.set_xlim(lo, hi)


def draw_speech(ax, m: ModelData, v: Verdict) -> None:
    x = _date_axis(ax, m)
    _window_span(ax, v)
    ax.bar(x, m.speech_s / 60, width=0.8, color=SPEECH, zorder=2)
    ax.set_ylim(0, max(10.0, 1.08 * float(m.speech_s.max()) / 60))
    ax.set_ylabel("speech heard\n(minutes)")
    ax.grid(axis="y", color="0.9", zorder=1)


def draw_share(ax, m: ModelData, v: Verdict) -> None:
    x = _date_axis(ax, m)
    _window_span(ax, v)
    share = np.nan_to_num(m.negative_share)
    for s, colour in STATUS_COLOUR.items():
        sel = np.array([d is s for d in _day_status(m, v)])
        if sel.any():
            ax.bar(x[sel], share[sel], width=0.8, color=colour, zorder=2,
                   hatch="///" if s is DayStatus.LITTLE_SPEECH else None, edgecolor="white", lw=0)
    ax.axhline(v.rule.share, color="k", ls="--", lw=1, zorder=3)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_ylabel("called\nnegative")
    ax.grid(axis="y", color="0.9", zorder=1)


def draw_median(ax, m: ModelData, v: Verdict) -> None:
    x = _date_axis(ax, m)
    _window_span(ax, v)
    ax.plot(x, m.median, color="0.2", lw=1.2, marker="o", ms=2.5, zorder=3)
    thr = _threshold_value(m)
    if thr is not None:
        ax.axhline(thr, color=RED, ls=":", lw=1, zorder=2)
        ax.text(x[0] - 0.4, thr + 0.02, f"threshold {thr:g}", fontsize=7.5, color=RED, va="bottom")
    ax.set_ylim(0, 1)
    ax.set_ylabel("median score")
    ax.grid(axis="y", color="0.9", zorder=1)


def heat_image(m: ModelData, kind: str) -> tuple[np.ndarray, float]:
    """RGBA hour x day image: white where the monitor was not listening, light grey where it was but
    heard (almost) no speech, else the colour of the value. Returns the image and the value maximum."""
    listen = m.hour_listen_s.T  # 24 x days
    speech = m.hour_speech_s.T
    if kind == "share":
        with np.errstate(invalid="ignore", divide="ignore"):
            val = m.hour_negative.T / np.maximum(m.hour_scored.T, 1)
        vmax, has = 1.0, speech >= HOUR_MIN_SPEECH_S
    else:
        val = speech / 60.0
        vmax, has = 60.0, speech > 0
    cmap = matplotlib.colormaps[HEAT_CMAP if kind == "share" else "Blues"]
    img = cmap(np.clip(val / vmax, 0, 1))
    img[~has] = to_rgba(LIGHT)
    img[listen <= 0] = (1, 1, 1, 1)
    return img, vmax


def draw_heat(ax, m: ModelData, kind: str):
    img, vmax = heat_image(m, kind)
    x = matplotlib.dates.date2num(m.days)
    ax.imshow(img, aspect="auto", interpolation="nearest", origin="upper",
              extent=(x[0] - 0.5, x[-1] + 0.5, 24, 0))
    _date_axis(ax, m)
    ax.set_ylim(24, 0)
    ax.set_yticks([0, 6, 12, 18, 24], ["0:00", "6:00", "12:00", "18:00", "24:00"])
    ax.set_ylabel("hour of day")
    cmap = matplotlib.colormaps[HEAT_CMAP if kind == "share" else "Blues"]
    sm = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, vmax), cmap=cmap)
    return sm


def draw_coverage(ax, m: ModelData) -> None:
    """Each day's 24 hours: speech, listening without speech, not listening; dropped audio marked."""
    x = _date_axis(ax, m)
    sp = m.speech_s / 3600
    quiet = np.maximum(m.listen_s / 3600 - sp, 0)
    ax.bar(x, sp, width=0.8, color=SPEECH, label="speech", zorder=2)
    ax.bar(x, quiet, bottom=sp, width=0.8, color=GREY, label="listening, no speech", zorder=2)
    off = np.maximum(24 - sp - quiet, 0)
    ax.bar(x, off, bottom=sp + quiet, width=0.8, color="white", edgecolor="0.75", lw=0.4,
           label="not listening", zorder=2)
    drop = m.dropped_s > 0
    if drop.any():
        ax.scatter(x[drop], np.full(drop.sum(), 24.8), marker="v", s=14, color="#e67e22", zorder=3,
                   label="dropped audio")
    ax.set_ylim(0, 26)
    ax.set_yticks([0, 6, 12, 18, 24])
    ax.set_ylabel("hours")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7.5, frameon=False)


def _fig(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def fig_trend(v: Verdict) -> Figure:
    fig = _fig(10, 3.1)
    draw_trend(fig.add_subplot(), v)
    return fig


def fig_daily(m: ModelData, v: Verdict) -> Figure:
    fig = _fig(10, 5.6)
    axes = fig.subplots(3, 1, sharex=True)
    draw_speech(axes[0], m, v)
    draw_share(axes[1], m, v)
    draw_median(axes[2], m, v)
    return fig


def fig_heat(m: ModelData) -> Figure:
    fig = _fig(10, 6.2)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, kind, label in ((axes[0], "share", "speech windows called negative"),
                            (axes[1], "speech", "minutes of speech in the hour")):
        sm = draw_heat(ax, m, kind)
        cb = fig.colorbar(sm, ax=ax, pad=0.01, fraction=0.04)
        cb.set_label(label, fontsize=8)
        if kind == "share":
            cb.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axes[1].legend(handles=[Patch(facecolor="white", edgecolor="0.6", label="not listening"),
                            Patch(color=LIGHT, label="listening, (almost) no speech")],
                   loc="upper left", bbox_to_anchor=(0, -0.16), ncols=2, fontsize=7.5, frameon=False)
    return fig


def fig_coverage(m: ModelData) -> Figure:
    fig = _fig(10, 2.4)
    draw_coverage(fig.add_subplot(), m)
    return fig


def svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], count=1, flags=re.S)


# -- the page --------------------------------------------------------------------------------------
CSS = """
body { font: 15px/1.45 "DejaVu Sans", system-ui, sans-serif; color: #1d232a; margin: 0; background: #fff; }
main { max-width: 1040px; margin: 0 auto; padding: 18px 24px 40px; }
h1 { font-size: 26px; margin: 4px 0 2px; } h2 { font-size: 21px; margin: 34px 0 6px;
  border-bottom: 2px solid #dde1e5; padding-bottom: 4px; } h3 { font-size: 16px; margin: 22px 0 4px; }
.meta { color: #56606b; font-size: 13px; }
.disclaimer { background: #f3f5f7; border-left: 5px solid #7b8794; padding: 10px 14px; margin: 14px 0;
  font-size: 14px; }
.notice { background: #fff7e6; border-left: 5px solid #e6a23c; padding: 10px 14px; margin: 14px 0; }
.verdict { border-radius: 6px; padding: 12px 16px; margin: 12px 0; border: 2px solid; }
.verdict b.head { font-size: 19px; display: block; margin-bottom: 3px; }
.verdict.elevated { background: #fdecea; border-color: #c0392b; }
.verdict.not-elevated { background: #edf3f9; border-color: #5b7ea4; }
.verdict.undetermined { background: #f4f4f4; border-color: #9aa0a6; }
.verdict .rule { color: #56606b; font-size: 13px; margin-top: 4px; }
figure.chart { margin: 6px 0 4px; } figure.chart svg { width: 100%; height: auto; display: block; }
figcaption { color: #56606b; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
td, th { padding: 3px 9px; border-bottom: 1px solid #e3e6e9; text-align: right; }
th { background: #f3f5f7; } td.l, th.l { text-align: left; }
tr.elevated td { background: #fdecea; }
details { margin: 10px 0; } summary { cursor: pointer; color: #2d5f8a; }
.error { color: #b00; }
"""

CHECK_SCRIPT = """
(function () {
  var n = 0;
  document.querySelectorAll('figure.chart svg').forEach(function (s) {
    var r = s.getBoundingClientRect();
    if (r.width > 100 && r.height > 50 && s.querySelector('path, use, image')) { n++; }
  });
  document.body.setAttribute('data-charts-rendered', String(n));
})();
"""


def _e(s: object) -> str:
    return html.escape(str(s))


def _hm(seconds: float) -> str:
    h, m = divmod(int(round(seconds / 60)), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.0%}"


def _when(t: dt.datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M}"


def _verdict_box(v: Verdict) -> str:
    cls = {State.ELEVATED: "elevated", State.NOT_ELEVATED: "not-elevated",
           State.UNDETERMINED: "undetermined"}[v.state]
    extra = ""
    if v.state is State.ELEVATED:
        extra = (" This is a screening signal, not a diagnosis: if it matches how the person is doing, "
                 "it may be worth talking with a health professional.")
    return (f'<div class="verdict {cls}" data-state="{_e(v.state.value)}"><b class="head">'
            f"{_e(v.headline())}</b>{_e(v.sentence())}{_e(extra)}"
            f'<div class="rule">Rule: {_e(v.rule.describe())}.</div></div>')


def _chart(fig: Figure, name: str, caption: str) -> str:
    return (f'<figure class="chart" id="{name}">{svg(fig)}<figcaption>{_e(caption)}</figcaption>'
            "</figure>")


def _quality_table(m: ModelData) -> str:
    total_span = (m.last - m.first).total_seconds()
    listen = float(m.listen_s.sum())
    windows = int(m.windows.sum())
    nospeech = 1 - m.scored.sum() / windows if windows else math.nan
    thr = m.threshold
    thr_text = thr.text() + ("" if thr.consistent else
                             " — the labels were made with different thresholds, so the shares mix them")
    rows = [
        ("model", m.model_id),
        ("threshold (inferred from the labels)", thr_text),
        ("window stride", f"{m.stride_s:.3f} s"),
        ("first and last row", f"{_when(m.first)} → {_when(m.last)}"),
        ("logs, sessions, windows", f"{len(m.files)} log(s), {m.sessions} session(s), {windows:,} windows"),
        ("listening", f"{_hm(listen)} of {_hm(total_span)} ({listen / max(total_span, 1):.0%})"),
        ("speech heard", f"{_hm(float(m.speech_s.sum()))}"),
        ("no-speech share", _pct(nospeech)),
        ("dropped audio (holes inside a session)",
         f"{m.dropped_s.sum():.1f} s in {int(m.holes.sum())} hole(s)"),
        ("gaps (not listening for ≥ 5 min)", f"{m.gap_count}, {_hm(m.gap_s)} in total"),
    ]
    body = "".join(f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>' for k, v in rows)
    out = f'<table class="quality">{body}</table>'
    if m.gaps:
        items = "".join(f"<li>{_when(a)} → {_when(b)} ({_hm((b - a).total_seconds())})</li>"
                        for a, b in m.gaps)
        more = f" (the {len(m.gaps)} longest)" if m.gap_count > len(m.gaps) else ""
        out += f"<details><summary>Gaps{more}</summary><ul>{items}</ul></details>"
    files = "".join(
        f'<tr><td class="l">{_e(f.name)}</td><td>{f.rows:,}</td><td class="l">{_when(f.first)}</td>'
        f'<td class="l">{_when(f.last)}</td><td>{f.stride_s:.3f}</td><td class="l">{_e(f.threshold.text())}'
        "</td></tr>" for f in m.files)
    out += (f"<details><summary>Logs ({len(m.files)})</summary><table><tr><th class=l>log</th><th>rows"
            "</th><th class=l>first row</th><th class=l>last row</th><th>stride (s)</th><th class=l>"
            f"threshold</th></tr>{files}</table></details>")
    return out


def _day_table(m: ModelData, v: Verdict) -> str:
    status = _day_status(m, v)
    share, ns = m.negative_share, m.nospeech_share
    rows = []
    for i, d in reversed(list(enumerate(m.days))):
        med = "–" if math.isnan(m.median[i]) else f"{m.median[i]:.3f}"
        cls = ' class="elevated"' if status[i] is DayStatus.ELEVATED else ""
        rows.append(
            f'<tr{cls}><td class="l">{d:%a %Y-%m-%d}</td><td>{m.listen_s[i] / 3600:.1f}</td>'
            f"<td>{m.speech_s[i] / 60:.0f}</td><td>{_pct(share[i])}</td><td>{med}</td>"
            f'<td>{_pct(ns[i])}</td><td>{m.dropped_s[i]:.0f}</td>'
            f'<td class="l">{_e(status[i].value)}</td></tr>')
    return ("<details><summary>Numbers per day</summary><table><tr><th class=l>day</th><th>listening (h)"
            "</th><th>speech (min)</th><th>called negative</th><th>median score</th><th>no-speech</th>"
            f"<th>dropped (s)</th><th class=l>day counts as</th></tr>{''.join(rows)}</table></details>")


def _model_section(k: int, m: ModelData, v: Verdict, several: bool) -> str:
    title = f"Model {m.model_id}" if several else "Summary"
    parts = [f'<section class="model" id="model-{k}"><h2>{_e(title)}</h2>',
             f'<p class="meta">{_when(m.first)} → {_when(m.last)} · {len(m.days)} day(s) · model '
             f"{_e(m.model_id)} · threshold {_e(m.threshold.text())}</p>",
             _verdict_box(v),
             f"<h3>The last {v.rule.window} days</h3>",
             _chart(fig_trend(v), f"trend-{k}",
                    "Each bar: the share of the day's speech windows the model called negative; the "
                    "number above it is how much speech was heard. Days with too little speech are "
                    "not counted either way."),
             "<h3>Every day</h3>",
             _chart(fig_daily(m, v), f"daily-{k}",
                    f"Minutes of speech heard, share of speech windows called negative, and the median "
                    f"score per day. The shaded band is the last {v.rule.window} days."),
             "<h3>Hour of day × day</h3>",
             _chart(fig_heat(m), f"heatmap-{k}",
                    "Top: share called negative in each hour (only hours with at least one minute of "
                    "speech). Bottom: minutes of speech in each hour."),
             "<h3>Data quality</h3>",
             _chart(fig_coverage(m), f"coverage-{k}",
                    "How each day's 24 hours were covered. Orange marks: days with dropped audio."),
             _quality_table(m),
             _day_table(m, v),
             "</section>"]
    return "\n".join(parts)


def render_html(data: ReportData, verdicts: list[Verdict]) -> str:
    several = len(data.models) > 1
    now = dt.datetime.now().astimezone()
    head = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>specmon report</title>", f"<style>{CSS}</style></head>", "<body><main>",
        "<h1>specmon report</h1>",
        f'<p class="meta">{_e(data.source)} · {data.rows:,} windows · days and hours in {_e(data.tz)} · '
        f"made {now:%Y-%m-%d %H:%M} by specmon {_e(__version__)}</p>",
        f'<div class="disclaimer" id="disclaimer"><b>A screening aid, not a diagnosis.</b> '
        f"{_e(DISCLAIMER)}</div>",
    ]
    if several:
        items = "".join(
            f'<li><a href="#model-{k}">{_e(m.model_id)}</a>: {_when(m.first)} → {_when(m.last)} — '
            f"<b>{_e(v.headline())}</b></li>" for k, (m, v) in enumerate(zip(data.models, verdicts,
                                                                                strict=True)))
        head.append(
            f'<div class="notice" id="models-notice"><b>These logs come from {len(data.models)} different '
            "models.</b> Scores and labels of different models are not comparable, so nothing is pooled: "
            f"each model has its own section below, newest first.<ul>{items}</ul></div>")
    if data.empty:
        head.append(f'<p class="meta">Skipped {len(data.empty)} empty log(s): '
                    f"{_e(', '.join(data.empty[:5]))}{' …' if len(data.empty) > 5 else ''}</p>")
    body = [_model_section(k, m, v, several) for k, (m, v) in enumerate(zip(data.models, verdicts,
                                                                            strict=True))]
    foot = [
        "<h2>How to read this</h2><ul>"
        "<li><b>Speech window</b>: every stride (about a second) specmon judges the last 4 seconds. "
        "Windows with too little voice are <i>no-speech</i> and are not scored.</li>"
        "<li><b>Called negative</b>: the window's score was at or above the model's threshold. The share "
        "is taken over the scored (speech) windows only.</li>"
        "<li><b>Persistently elevated</b> follows the rule shown with the verdict; change it with "
        "<code>--elevated-share</code>, <code>--elevated-days</code>, <code>--window-days</code> and "
        "<code>--min-speech</code>.</li></ul>",
        f'<div class="disclaimer"><b>A screening aid, not a diagnosis.</b> {_e(DISCLAIMER)}</div>',
        f"</main><script>{CHECK_SCRIPT}</script></body></html>",
    ]
    return "\n".join(head + body + foot)


def render_png(data: ReportData, verdicts: list[Verdict]) -> bytes:
    """One image: per model the verdict, the last days, every day's share and the hour x day map."""
    n = len(data.models)
    fig = _fig(12, 9.5 * n)
    sub = fig.subfigures(n, 1) if n > 1 else [fig]
    for sf, m, v in zip(sub, data.models, verdicts, strict=True):
        axes = sf.subplots(4, 1, height_ratios=[1.3, 1, 1, 1.6])
        draw_trend(axes[0], v)
        draw_speech(axes[1], m, v)
        draw_share(axes[2], m, v)
        sm = draw_heat(axes[3], m, "share")
        cb = sf.colorbar(sm, ax=axes[3], pad=0.01, fraction=0.03)
        cb.set_label("called negative", fontsize=8)
        colour = {State.ELEVATED: RED, State.NOT_ELEVATED: BLUE, State.UNDETERMINED: "0.35"}[v.state]
        sf.suptitle(f"{v.headline()} — model {m.model_id}, {_when(m.first)} → {_when(m.last)}\n"
                    f"{v.sentence()}", fontsize=10.5, color=colour, wrap=True)
    fig.supxlabel("specmon: a research and screening aid, not a diagnosis", fontsize=8.5, color="0.35")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
