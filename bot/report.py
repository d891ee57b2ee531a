"""Organizer reports on disk: CSV tables and PNG charts of a `FairReport`.

Charts are drawn on matplotlib's object-oriented `Figure` (no pyplot: no global state, safe in
a thread), imported on first use since it takes about a second to load. Their words are catalog
messages rendered in French: matplotlib cannot shape Arabic.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import tempfile
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal

from bot.csvfiles import write_csv
from bot.i18n import BABEL_LOCALES, Renderer
from handlers.figures import CHANNEL_NAMES, fill_percent
from handlers.messages import Msg, _, _n
from storage.questions import redact
from storage.reports import (
    RATINGS,
    DailyCounts,
    FairReport,
    RatingCounts,
    StandRating,
    SurveyAnswer,
    WorkshopFill,
    WorkshopRatings,
    rank_stands,
)

if TYPE_CHECKING:
    from babel.support import Translations
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CHART_LANGUAGE = "fr"
DPI = 100
TOP = 10
"""Stands in each of the best and the worst rankings."""
LABEL_WIDTH = 56
"""Characters of a workshop title or an exhibitor name beside a bar."""
PHONE_WIDTH, PHONE_DPI = 6.5, 160
"""The `/stats` chart: inches wide, and dots per inch (1,040 pixels: a phone's screen)."""
PHONE_LABEL_WIDTH = 36
"""Characters of a workshop's label in the `/stats` chart."""
TITLE_WIDTH = 90
"""Characters of a chart title on one line across a whole figure; half as many on half."""

STAR_COLOURS = ("#d7191c", "#fdae61", "#fee08b", "#a6d96a", "#1a9641")  # 1 to 5 stars
GOOD, FAIR, POOR = "#1a9641", "#fdae61", "#d7191c"
CHANNEL_COLOURS = {"telegram": "#229ed9", "whatsapp": "#25d366", "web": "#7f7f7f"}
OTHER_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
LANGUAGE_NAMES = {"ar": _("Arabic"), "fr": _("French"), "en": _("English"),
                  "unknown": _("Not chosen yet")}
NO_DATA = _("No data yet")
RATINGS_AXIS = _("Number of ratings")

Text = Callable[[Msg], str]
"""A catalog message in the charts' language."""

Progress = Callable[[int, int], None]
Table = tuple[str, list[str], list[list[Any]]]


# ---- what the chat shows -----------------------------------------------------------------

def summary_chart(ratings: RatingCounts, workshops: Sequence[WorkshopFill],
                  renderer: Renderer) -> bytes:
    """One PNG for `/stats`: the fair's rating distribution above each workshop's seats
    taken."""
    buffer = io.BytesIO()
    summary_figure(ratings, workshops, renderer).savefig(buffer, format="png", dpi=PHONE_DPI)
    return buffer.getvalue()


def summary_figure(ratings: RatingCounts, workshops: Sequence[WorkshopFill],
                   renderer: Renderer) -> Figure:
    """The chart of `summary_chart`, not drawn yet."""
    text = _french(renderer)
    # One column, as a phone shows it: the ratings above the workshops, a phone's width
    # (PHONE_WIDTH inches) drawn at PHONE_DPI, so that its words read at the screen's width.
    rows = max(len(workshops), 2)
    figure = _figure(PHONE_WIDTH, 4.4 + 0.34 * rows)
    top, bottom = figure.subfigures(2, 1, squeeze=False,
                                    height_ratios=(2.6, 0.34 * rows + 0.6))[:, 0]
    ratings_axes, fill_axes = top.subplots(), bottom.subplots()  # each its own margins
    _draw_fair_ratings(ratings_axes, ratings, text)
    _draw_fill_rates(fill_axes, workshops, text, renderer.zone, labelled=True,
                     label_width=PHONE_LABEL_WIDTH)
    return figure


# ---- the report folder --------------------------------------------------------------------

def write_report(report: FairReport, directory: Path, renderer: Renderer,
                 progress: Progress | None = None) -> list[Path]:
    """Write every CSV table and PNG chart of `report` into `directory` (an existing folder);
    returns the files written, tables first."""
    text = _french(renderer)
    zone = renderer.zone
    tables = _tables(report, zone)
    charts: list[tuple[str, Callable[[], Figure]]] = [
        ("fair_ratings.png", lambda: fair_ratings_chart(report.fair_ratings, text)),
        ("workshop_ratings.png",
         lambda: workshop_ratings_chart(report.workshop_ratings, text, zone)),
        ("stand_ratings.png", lambda: stands_chart(report.stands, text)),
        ("workshop_registrations.png",
         lambda: registrations_chart(report.workshops, text, zone)),
        ("contacts_per_day.png",
         lambda: contacts_chart(report.contacts_by_channel, report.contacts_by_language,
                                text)),
    ]
    total = len(tables) + len(charts)
    written: list[Path] = []
    for name, columns, rows in tables:
        path = directory / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            write_csv(handle, columns, rows)
        written.append(path)
        if progress:
            progress(len(written), total)
    for name, draw in charts:
        path = directory / name
        draw().savefig(path, format="png", dpi=DPI)
        written.append(path)
        if progress:
            progress(len(written), total)
    return written


def report_renderer(report: FairReport, translations: Mapping[str, Translations]) -> Renderer:
    """The words and times of `report`'s files: the catalogs, in its fair's time zone."""
    return Renderer(dict(translations), ZoneInfo(report.timezone))


def report_files(report: FairReport, translations: Mapping[str, Translations]
                 ) -> dict[str, bytes]:
    """What `tadamon report --out DIR` writes (`write_report`), by file name, tables first:
    written in a temporary folder and read back. CPU work: run it in a thread."""
    with tempfile.TemporaryDirectory(prefix="tadamon-report-") as folder:
        written = write_report(report, Path(folder), report_renderer(report, translations))
        return {path.name: path.read_bytes() for path in written}


def _tables(report: FairReport, zone: dt.tzinfo) -> list[Table]:
    """Each dataset as (file name, columns, rows). They name no person: counts, catalogue
    names, and free texts without numbers, addresses or names (the survey's comments through
    `redact`; the questions were stored cleaned)."""
    figures = report.figures
    return [
        ("key_figures.csv", ["figure", "value"], [
            ["contacts", figures.contacts],
            *([f"contacts_{channel}", count]
              for channel, count in figures.contacts_by_channel.items()),
            ["fair_ratings", figures.fair_ratings],
            ["fair_average", _ratio(figures.fair_average)],
            ["confirmed_registrations", figures.confirmed_registrations],
            ["comments", figures.comments],
            *_survey_figures(report.survey),
        ]),
        ("fair_ratings.csv", ["rating", "count"],
         [[stars, count]
          for stars, count in zip(RATINGS, report.fair_ratings.counts, strict=True)]),
        ("workshop_ratings.csv",
         ["workshop_id", "title_fr", "title_ar", "starts_at", "ratings", "average",
          *(f"rating_{stars}" for stars in RATINGS)],
         [[item.key, item.title.get("fr", ""), item.title.get("ar", ""),
           _local_time(item.starts_at, zone), item.ratings.total,
           _ratio(item.ratings.average), *item.ratings.counts]
          for item in report.workshop_ratings]),
        ("stand_ratings.csv", ["rank", "stand", "name_fr", "name_ar", "ratings", "average"],
         [[rank, stand.number, stand.name.get("fr", ""), stand.name.get("ar", ""),
           stand.count, _ratio(stand.average)]
          for rank, stand in enumerate(report.stands, 1)]),
        ("workshop_registrations.csv",
         ["workshop_id", "title_fr", "title_ar", "starts_at", "capacity", "confirmed",
          "offered", "waitlisted", "cancelled", "fill_rate"],
         [[item.key, item.title.get("fr", ""), item.title.get("ar", ""),
           _local_time(item.starts_at, zone), item.capacity, item.confirmed, item.offered,
           item.waitlisted, item.cancelled, _ratio(item.fill_rate)]
          for item in report.workshops]),
        ("contacts_by_channel.csv", ["day", "channel", "contacts"],
         [[day.isoformat(), group, count]
          for day, group, count in report.contacts_by_channel.rows()]),
        ("contacts_by_language.csv", ["day", "language", "contacts"],
         [[day.isoformat(), group, count]
          for day, group, count in report.contacts_by_language.rows()]),
        ("exhibitor_survey.csv",
         ["exhibitor_id", "name_fr", "name_ar", "stand", "satisfaction", "come_again",
          "sales_band", "comment", "language", "answered_at"],
         [[answer.exhibitor, answer.name.get("fr", ""), answer.name.get("ar", ""),
           answer.stand or "", "" if answer.satisfaction is None else answer.satisfaction,
           "" if answer.come_again is None else ("yes" if answer.come_again else "no"),
           answer.sales_band or "", redact(answer.comment or ""), answer.language,
           _local_time(answer.answered_at, zone)]
          for answer in report.survey]),
        ("intents.csv", ["day", "channel", "language", "intent", "messages"],
         [[item.day.isoformat(), item.channel, item.language, item.intent, item.messages]
          for item in report.intents]),
        ("questions.csv", ["question", "count", "first_seen", "last_seen"],
         [[item.question, item.count, _local_time(item.first_seen, zone),
           _local_time(item.last_seen, zone)]
          for item in report.questions]),
    ]


def _survey_figures(answers: Sequence[SurveyAnswer]) -> list[list[Any]]:
    """How many exhibitor members answered, their average satisfaction, and how many would
    come again."""
    rated = [answer.satisfaction for answer in answers if answer.satisfaction is not None]
    return [["survey_answers", len(answers)],
            ["survey_satisfaction_average",
             _ratio(sum(rated) / len(rated) if rated else None)],
            ["survey_come_again", sum(answer.come_again is True for answer in answers)],
            ["survey_not_again", sum(answer.come_again is False for answer in answers)]]


def _ratio(value: float | None) -> float | str:
    """An average or a rate for a CSV cell: four decimals, empty when there is none."""
    return "" if value is None else round(value, 4)


def _local_time(moment: dt.datetime | None, zone: dt.tzinfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="minutes") if moment else ""


# ---- charts -------------------------------------------------------------------------------

def fair_ratings_chart(ratings: RatingCounts, text: Text) -> Figure:
    """Bars of how many people gave the fair 1 to 5 stars."""
    figure = _figure(7, 4.5)
    _draw_fair_ratings(figure.subplots(), ratings, text)
    return figure


def workshop_ratings_chart(items: Sequence[WorkshopRatings], text: Text,
                           zone: dt.tzinfo) -> Figure:
    """One bar per workshop: its length the number of ratings, its parts the stars given."""
    figure = _figure(12, max(3.5, 1.6 + 0.36 * len(items)))
    axes = figure.subplots()
    _title(axes, text(_("Ratings of each workshop")), TITLE_WIDTH)
    if not any(item.ratings.total for item in items):
        _no_data(axes, text)
        return figure
    rows = range(len(items))
    left = [0] * len(items)
    for index, (stars, colour) in enumerate(zip(RATINGS, STAR_COLOURS, strict=True)):
        counts = [item.ratings.counts[index] for item in items]
        axes.barh(rows, counts, left=left, color=colour, edgecolor="white", linewidth=0.5,
                  label=f"{stars} ★")
        left = [start + count for start, count in zip(left, counts, strict=True)]
    for row, item in zip(rows, items, strict=True):
        average = item.ratings.average
        label = text(_("no rating yet")) if average is None else text(_n(
            "{n} rating, average {average}", "{n} ratings, average {average}",
            item.ratings.total, average=_decimal(average)))
        axes.annotate(label, (item.ratings.total, row), xytext=(4, 0), va="center", fontsize=8,
                      textcoords="offset points", color="#777777" if average is None else None)
    axes.set_yticks(rows, [_workshop_label(item.title, item.starts_at, zone) for item in items],
                    fontsize=9)
    axes.invert_yaxis()
    axes.set_xlim(0, max(left) * 1.4)
    axes.set_xlabel(text(RATINGS_AXIS))
    _whole_numbers(axes.xaxis)
    axes.legend(ncols=len(RATINGS), loc="lower right", bbox_to_anchor=(1.0, 1.0),
                frameon=False, fontsize=9)
    _plain(axes)
    return figure


def stands_chart(stands: Sequence[StandRating], text: Text) -> Figure:
    """Average rating per stand: all of them best first when they fit in one ranking of
    twice `TOP` bars, else the `TOP` best above the `TOP` worst (worst first)."""
    if len(stands) <= 2 * TOP:
        panels = [(_("Stands by average rating"), stands)]
    else:
        panels = [(_("Best rated stands"), stands[:TOP]),
                  (_("Lowest rated stands"), rank_stands(stands, best_first=False)[:TOP])]
    bars = sum(max(len(shown), 2) for _title, shown in panels)
    figure = _figure(10, 1.4 + 1.0 * len(panels) + 0.34 * bars)
    for axes, (title, shown) in zip(
            figure.subplots(len(panels), 1, squeeze=False,
                            height_ratios=[max(len(shown), 2) for _title, shown in panels])[:, 0],
            panels, strict=True):
        _title(axes, text(title), TITLE_WIDTH)
        if not shown:
            _no_data(axes, text)
            continue
        rows = range(len(shown))
        drawn = axes.barh(rows, [stand.average for stand in shown],
                          color=[STAR_COLOURS[min(4, max(0, round(stand.average) - 1))]
                                 for stand in shown])
        axes.bar_label(drawn, [text(_n("{average} ({n} rating)", "{average} ({n} ratings)",
                                       stand.count, average=_decimal(stand.average)))
                               for stand in shown], padding=3, fontsize=8)
        axes.set_yticks(rows, [_shorten(" · ".join(filter(None, (stand.number,
                                                                 stand.name.get("fr")))))
                               for stand in shown], fontsize=9)
        axes.invert_yaxis()
        axes.set_xlim(0, 5.9)
        axes.set_xticks(RATINGS)
        axes.set_xlabel(text(_("Average rating (out of 5)")))
        _plain(axes)
    return figure


def registrations_chart(workshops: Sequence[WorkshopFill], text: Text,
                        zone: dt.tzinfo) -> Figure:
    """Each workshop's registrations by status against its capacity, beside its fill rate."""
    figure = _figure(14, max(3.5, 1.8 + 0.36 * len(workshops)))
    seats_axes, fill_axes = figure.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    _title(seats_axes, text(_("Registrations per workshop")), TITLE_WIDTH // 2)
    _draw_fill_rates(fill_axes, workshops, text, zone, labelled=False)
    if not workshops:
        _no_data(seats_axes, text)
        return figure
    rows = range(len(workshops))
    left = [0] * len(workshops)
    for counts, label, colour in (
            ([item.confirmed for item in workshops], _("Confirmed"), GOOD),
            ([item.offered for item in workshops], _("Offered a freed seat"), "#a6d96a"),
            ([item.waitlisted for item in workshops], _("Waiting list"), FAIR)):
        seats_axes.barh(rows, counts, left=left, color=colour, label=text(label))
        left = [start + count for start, count in zip(left, counts, strict=True)]
    seats_axes.scatter([item.capacity for item in workshops], rows, marker="|", s=250,
                       color="black", linewidths=2, label=text(_("Capacity")), zorder=3)
    seats_axes.set_yticks(rows, [_workshop_label(item.title, item.starts_at, zone)
                                 for item in workshops], fontsize=9)
    seats_axes.invert_yaxis()
    seats_axes.set_xlabel(text(_("People")))
    _whole_numbers(seats_axes.xaxis)
    seats_axes.legend(ncols=4, loc="lower left", bbox_to_anchor=(0.0, 1.04), frameon=False,
                      fontsize=9)
    _plain(seats_axes)
    return figure


def _name(name: str | Msg, text: Text) -> str:
    return name if isinstance(name, str) else text(name)


def contacts_chart(by_channel: DailyCounts, by_language: DailyCounts, text: Text) -> Figure:
    """New contacts per day, stacked by channel above and by language below."""
    figure = _figure(min(16.0, max(9.0, 3 + 0.4 * len(by_channel.days))), 8)
    channel_axes, language_axes = figure.subplots(2, 1)
    _draw_daily(channel_axes, by_channel, _("New contacts per day, by channel"),
                {group: _name(CHANNEL_NAMES.get(group, group), text)
                 for group in by_channel.series},
                CHANNEL_COLOURS, text)
    _draw_daily(language_axes, by_language, _("New contacts per day, by language"),
                {group: text(LANGUAGE_NAMES[group]) if group in LANGUAGE_NAMES else group
                 for group in by_language.series}, {}, text)
    return figure


def _draw_fair_ratings(axes: Axes, ratings: RatingCounts, text: Text) -> None:
    _title(axes, text(_("Rating of the fair")), TITLE_WIDTH // 2, pad=18)
    if ratings.average is None:
        _no_data(axes, text)
        return
    axes.text(0, 1.02, text(_n("{n} rating, average {average} out of 5",
                               "{n} ratings, average {average} out of 5", ratings.total,
                               average=_decimal(ratings.average))),
              transform=axes.transAxes, fontsize=9, color="#444444")
    bars = axes.bar(RATINGS, ratings.counts, color=STAR_COLOURS)
    axes.bar_label(bars, padding=2, fontsize=9)
    axes.set_xticks(RATINGS, [f"{stars} ★" for stars in RATINGS])
    axes.set_ylim(0, max(ratings.counts) * 1.15)
    axes.set_ylabel(text(RATINGS_AXIS))
    _whole_numbers(axes.yaxis)
    _plain(axes)


def _draw_fill_rates(axes: Axes, workshops: Sequence[WorkshopFill], text: Text,
                     zone: dt.tzinfo, *, labelled: bool, label_width: int = LABEL_WIDTH
                     ) -> None:
    """Fill rates as bars; `labelled`: with the workshops' names (else shared from the left)."""
    _title(axes, text(_("Seats taken, percent of capacity")), TITLE_WIDTH // 2,
           pad=18 if labelled else None)
    if not workshops:
        _no_data(axes, text)
        return
    rows = range(len(workshops))
    # what /stats writes beside this chart: the same seats (offered ones too), rounded down
    rates = [fill_percent(item) for item in workshops]
    bars = axes.barh(rows, rates, color=[GOOD if rate >= 75 else FAIR if rate >= 40 else POOR
                                         for rate in rates])
    axes.bar_label(bars, [f"{rate}\u00a0%" for rate in rates], padding=3, fontsize=8)
    axes.axvline(100, color="black", linestyle="--", linewidth=1)
    axes.set_xlim(0, max(125.0, max(rates) * 1.15))
    axes.set_xlabel("%")
    if labelled:
        axes.set_yticks(rows, [_workshop_label(item.title, item.starts_at, zone, label_width)
                               for item in workshops], fontsize=9)
        axes.invert_yaxis()
    _plain(axes)


def _draw_daily(axes: Axes, counts: DailyCounts, title: Msg, names: Mapping[str, str],
                colours: Mapping[str, str], text: Text) -> None:
    _title(axes, text(title), TITLE_WIDTH)
    if not counts.days:
        _no_data(axes, text)
        return
    positions = range(len(counts.days))
    bottom = [0] * len(counts.days)
    spare = itertools.cycle(OTHER_COLOURS)
    for group, values in sorted(counts.series.items()):
        axes.bar(positions, values, bottom=bottom, label=names[group],
                 color=colours.get(group) or next(spare))
        bottom = [start + value for start, value in zip(bottom, values, strict=True)]
    step = max(1, len(counts.days) // 20)  # about twenty dates at most under the bars
    axes.set_xticks(positions[::step], [f"{day:%d/%m}" for day in counts.days[::step]])
    axes.set_ylabel(text(_("New contacts")))
    _whole_numbers(axes.yaxis)
    axes.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _plain(axes)


def _title(axes: Axes, title: str, width: int, **options: Any) -> None:
    """A chart's title on as many lines as it needs, never cut by the figure's edge."""
    axes.set_title(textwrap.fill(title, width), loc="left", fontweight="bold", **options)


def _no_data(axes: Axes, text: Text) -> None:
    """Say so in place of a chart."""
    axes.text(0.5, 0.5, text(NO_DATA), transform=axes.transAxes, ha="center", va="center",
              fontsize=16, color="#777777")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)


def _plain(axes: Axes) -> None:
    axes.spines[["top", "right"]].set_visible(False)


def _whole_numbers(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _french(renderer: Renderer) -> Text:
    return lambda msg: renderer.message(msg, CHART_LANGUAGE)


def _decimal(value: float) -> str:
    """`4,3`: one decimal, the French way."""
    return format_decimal(value, "0.0", locale=BABEL_LOCALES[CHART_LANGUAGE])


def _workshop_label(title: Mapping[str, str], starts_at: dt.datetime | None,
                    zone: dt.tzinfo, width: int = LABEL_WIDTH) -> str:
    """`13/12 10:00 · Gestion financière des coop…`: two sessions of one title told apart."""
    name = title.get(CHART_LANGUAGE) or next(iter(title.values()), "")
    if starts_at is None:
        return _shorten(name, width)
    return _shorten(f"{starts_at.astimezone(zone):%d/%m %H:%M} · {name}", width)


def _shorten(label: str, width: int = LABEL_WIDTH) -> str:
    return label if len(label) <= width else label[:width - 1].rstrip() + "…"
