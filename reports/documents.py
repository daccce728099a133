"""The digest's files: the PDF the street office reads and forwards, the XLSX and CSV of the
week's tickets, and `render`, which writes them all with the two pictures.

Everything users typed (descriptions, addresses) is escaped before reportlab's paragraph
markup sees it, and cannot become a spreadsheet formula in the XLSX or CSV.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from bot.deployment import Deployment
from bot.grids import Grids
from reports.charts import chart_png, map_png
from reports.figures import OpenTicket, StationWeek, WeekFigures, WeekTicket
from reports.fonts import cjk_font
from reports.labels import FIGURE, FIGURES, Indicator, Kind, Labels, plain, share

__all__ = ["STEPS", "Rendered", "csv_file", "pdf", "render", "xlsx"]

STEPS = ("chart", "map", "pdf", "xlsx", "csv")  # what `render` reports to `step`, in order
PAGE_WIDTH = A4[0] - 30 * mm  # inside 15 mm margins
# A place or description longer than this is cut in the PDF: one cell must fit on a page.
PDF_TEXT_LIMIT = 120
EXCEL_CELL_LIMIT = 32_767  # Excel refuses longer cells
# A cell starting with one of these is read as a formula by Excel, LibreOffice or Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Rendered:
    """The files of one digest."""

    chart: Path
    map: Path
    pdf: Path
    xlsx: Path
    csv: Path


def render(
    figures: WeekFigures,
    *,
    deployment: Deployment,
    grids: Grids,
    translate: Callable[..., str],
    directory: Path,
    step: Callable[[str], None] | None = None,
    font: Path | None = None,
) -> Rendered:
    """Write the chart, the map, the PDF, the XLSX and the CSV into `directory` (created if
    needed) as digest-2026-W47[-station].*, calling `step(name)` after each (see STEPS).
    `font` is the CJK font file (`cjk_font(settings.font)`); Debian's by default."""
    font = font or cjk_font()
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"digest-{figures.week.label}" + (f"-{figures.station}" if figures.station else "")
    done = step or (lambda name: None)
    common: dict[str, Any] = {"deployment": deployment, "translate": translate}
    chart = chart_png(figures, **common, path=directory / f"{stem}-chart.png", font=font)
    done("chart")
    map_ = map_png(figures, **common, grids=grids, path=directory / f"{stem}-map.png", font=font)
    done("map")
    document = pdf(
        figures, **common, chart=chart, map=map_, path=directory / f"{stem}.pdf", font=font
    )
    done("pdf")
    sheets = xlsx(figures, **common, path=directory / f"{stem}.xlsx")
    done("xlsx")
    table = csv_file(figures, **common, path=directory / f"{stem}.csv")
    done("csv")
    return Rendered(chart=chart, map=map_, pdf=document, xlsx=sheets, csv=table)


# --- PDF ---------------------------------------------------------------------------------------


def pdf(
    figures: WeekFigures,
    *,
    deployment: Deployment,
    translate: Callable[..., str],
    chart: Path,
    map: Path,  # the map picture; the name shadows the builtin only in here
    path: Path,
    font: Path | None = None,
) -> Path:
    """The digest as an A4 PDF: title, summary, the figures against last week, the stations,
    categories, hotspots, both pictures, the oldest open tickets and every overdue one."""
    labels = Labels(deployment, translate)
    styles = _Styles(_register(font or cjk_font()))
    t = translate
    total, before = figures.total, figures.previous_total
    week = labels.week(figures.week)
    title = t("digest.title", office=escape(deployment.street_office.name))
    story: list[Flowable] = [Paragraph(title, styles.title)]
    if figures.station:
        station = labels.station(figures.station)
        story.append(Paragraph(t("digest.station", station=escape(station)), styles.subtitle))
    story += [
        Paragraph(week, styles.subtitle),
        Paragraph(
            t("digest.generated", moment=labels.moment(figures.generated_at)), styles.note
        ),
        Spacer(1, 4 * mm),
        Paragraph(
            t(
                "digest.summary",
                received=total.received, opened=total.opened, resolved=total.resolved,
                previous_resolved=before.resolved, closed=total.closed,
                open=total.open_at_end, overdue=total.overdue_at_end,
                compliance=share(total.compliance), satisfaction=share(total.satisfaction),
            ),
            styles.body,
        ),
        *_section(t("digest.section.figures"), styles, _figures_table(labels, styles, figures)),
        *_section(t("digest.section.stations"), styles, _stations_table(labels, styles, figures)),
        *_section(
            t("digest.section.categories"), styles, _categories_table(labels, styles, figures)
        ),
        *_section(t("digest.section.hotspots"), styles, _hotspots_table(labels, styles, figures)),
        *_section(t("digest.section.chart"), styles, _picture(chart, height=150 * mm)),
        *_section(t("digest.section.map"), styles, _picture(map, height=170 * mm)),
        *_section(
            t("digest.section.oldest"), styles, _tickets_table(labels, styles, figures.oldest_open)
        ),
        *_section(
            t("digest.section.overdue"), styles, _tickets_table(labels, styles, figures.overdue)
        ),
    ]

    def footer(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(styles.font, 8)
        canvas.setFillColor(colors.grey)
        canvas.drawString(15 * mm, 9 * mm, f"{deployment.street_office.name} · {week}")
        canvas.drawRightString(A4[0] - 15 * mm, 9 * mm, t("digest.page", number=document.page))
        canvas.restoreState()

    document = SimpleDocTemplate(
        str(path), pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
        bottomMargin=16 * mm, title=f"{deployment.street_office.name} {figures.week.label}",
        author=deployment.street_office.name, subject=figures.week.label,
        lang=labels.language.replace("_", "-"),
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return path


class _Styles:
    """Paragraph styles in the CJK font, wrapping between any two Chinese characters."""

    def __init__(self, font: str) -> None:
        self.font = font
        base = getSampleStyleSheet()

        def style(name: str, parent: str, **changes: Any) -> ParagraphStyle:
            return ParagraphStyle(
                name, parent=base[parent], fontName=font, wordWrap="CJK", **changes
            )

        self.title = style("digest-title", "Title", fontSize=20, leading=28)
        self.subtitle = style("digest-subtitle", "Normal", fontSize=12, leading=18,
                              alignment=TA_CENTER)
        self.note = style("digest-note", "Normal", fontSize=8, leading=11, alignment=TA_CENTER,
                          textColor=colors.grey)
        self.heading = style("digest-heading", "Heading2", fontSize=13, leading=18,
                             spaceBefore=8, spaceAfter=4)
        self.body = style("digest-body", "BodyText", fontSize=10, leading=16)
        self.cell = style("digest-cell", "BodyText", fontSize=8, leading=10.5)
        self.number = style("digest-number", "BodyText", fontSize=8, leading=10.5,
                            alignment=TA_RIGHT)
        self.head = style("digest-head", "BodyText", fontSize=8, leading=10.5,
                          textColor=colors.white)


def _register(font: Path) -> str:
    """The reportlab name of the font, registered once per file (the first face of a .ttc)."""
    name = f"digest-{font.stem}-{zlib.crc32(str(font).encode()):08x}"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(font), subfontIndex=0))
        # One face for all: <b>/<i> in markup then map to it instead of failing.
        pdfmetrics.registerFontFamily(name, normal=name, bold=name, italic=name, boldItalic=name)
    return name


def _section(heading: str, styles: _Styles, content: Flowable) -> list[Flowable]:
    # The heading stays with the start of its content, never alone at the foot of a page.
    return [KeepTogether([Paragraph(heading, styles.heading), content]), Spacer(1, 2 * mm)]


def _text(value: object, limit: int = PDF_TEXT_LIMIT) -> str:
    """Plain text made safe for a paragraph: cut to `limit` characters, markup escaped."""
    text = plain(str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(text, quote=False)


def _table(
    labels: Labels, styles: _Styles, header: Sequence[str], rows: Iterable[Sequence[object]],
    widths: Sequence[float], *, numeric: Sequence[int] = (),
) -> Flowable:
    """A table with a shaded header repeated on every page; every cell wraps. Header texts are
    catalog markup; cells are plain text and escaped; `numeric` columns align right."""
    body = [
        [
            Paragraph(_text(cell), styles.number if index in numeric else styles.cell)
            for index, cell in enumerate(row)
        ]
        for row in rows
    ]
    if not body:
        return Paragraph(labels.translate("digest.none"), styles.body)
    table = Table(
        [[Paragraph(text, styles.head) for text in header], *body],
        colWidths=list(widths), repeatRows=1,
    )
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#4C78A8")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F2F5F9")]),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#B0B8C4")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _figures_table(labels: Labels, styles: _Styles, figures: WeekFigures) -> Flowable:
    t = labels.translate
    rows = [
        (
            t(indicator.key),
            labels.value(indicator, figures.total),
            labels.value(indicator, figures.previous_total),
            labels.change(indicator, figures.total, figures.previous_total),
        )
        for indicator in FIGURES
    ]
    header = [t("digest.column.figure"), t("digest.column.this_week"),
              t("digest.column.previous_week"), t("digest.column.change")]
    widths = [80 * mm, 30 * mm, 30 * mm, 40 * mm]
    return _table(labels, styles, header, rows, widths, numeric=(1, 2, 3))


_STATION_COLUMNS = (
    "opened", "resolved", "closed", "open_at_end", "overdue_at_end", "compliance",
    "satisfaction", "resolve_hours_median",
)


def _stations_table(labels: Labels, styles: _Styles, figures: WeekFigures) -> Flowable:
    indicators = [FIGURE[name] for name in _STATION_COLUMNS]

    def cell(indicator: Indicator, station: StationWeek) -> str:
        value = labels.value(indicator, station.this)
        if indicator.kind is Kind.COUNT:
            return f"{value} ({labels.change(indicator, station.this, station.previous)})"
        return value

    rows = [
        (labels.station(station.key, station.name), *(cell(i, station) for i in indicators))
        for station in figures.stations
    ]
    header = [labels.translate("digest.column.station"),
              *(labels.translate(indicator.key) for indicator in indicators)]
    widths = [36 * mm, *([144 * mm / len(indicators)] * len(indicators))]
    return _table(labels, styles, header, rows, widths, numeric=range(1, len(header)))


def _categories_table(labels: Labels, styles: _Styles, figures: WeekFigures) -> Flowable:
    reports = sum(count for _, count in figures.categories)
    rows = [
        (labels.category(key), count, share(count / reports if reports else None))
        for key, count in figures.categories
    ]
    t = labels.translate
    header = [t("digest.column.category"), t("digest.column.reports"), t("digest.column.share")]
    return _table(labels, styles, header, rows, [90 * mm, 45 * mm, 45 * mm], numeric=(1, 2))


def _hotspots_table(labels: Labels, styles: _Styles, figures: WeekFigures) -> Flowable:
    rows = [
        (
            spot.place,
            spot.reports,
            " ".join(f"#{number}" for number in spot.ticket_ids[:30])
            + (" …" if len(spot.ticket_ids) > 30 else ""),
        )
        for spot in figures.hotspots
    ]
    t = labels.translate
    header = [t("digest.column.place"), t("digest.column.reports"), t("digest.column.tickets")]
    return _table(labels, styles, header, rows, [90 * mm, 25 * mm, 65 * mm], numeric=(1,))


def _tickets_table(
    labels: Labels, styles: _Styles, tickets: Sequence[OpenTicket]
) -> Flowable:
    rows = [
        (
            f"#{ticket.id}",
            labels.station(ticket.station_key),
            labels.category(ticket.category_key),
            ticket.place,
            labels.status(ticket.status),
            labels.moment(ticket.created_at),
            labels.moment(ticket.due_at),
        )
        for ticket in tickets
    ]
    t = labels.translate
    header = [
        t("digest.column.number"), t("digest.column.station"), t("digest.column.category"),
        t("digest.column.place"), t("digest.column.status"), t("digest.column.reported"),
        t("digest.column.due"),
    ]
    widths = [mm * width for width in (14, 30, 22, 50, 20, 22, 22)]
    return _table(labels, styles, header, rows, widths)


def _picture(path: Path, *, height: float) -> Flowable:
    # Proportional: the picture keeps its shape inside the page width and this height.
    return Image(str(path), width=PAGE_WIDTH, height=height, kind="proportional")


# --- spreadsheets ------------------------------------------------------------------------------


def xlsx(
    figures: WeekFigures,
    *,
    deployment: Deployment,
    translate: Callable[..., str],
    path: Path,
) -> Path:
    """A workbook: the figures (district and each station, this week and the previous one) and
    the week's tickets, each with a bold, frozen header row."""
    labels = Labels(deployment, translate)
    t = translate
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has its first sheet
    sheet.title = t("digest.sheet.figures")
    scopes = [(t("digest.scope.district"), figures.total, figures.previous_total)] + [
        (labels.station(station.key, station.name), station.this, station.previous)
        for station in figures.stations
    ]
    this_week, previous_week = figures.week.label, figures.week.previous().label
    _fill(
        sheet,
        [t("digest.column.scope"), t("digest.column.week"), *(t(i.key) for i in FIGURES)],
        (
            [scope, week, *(indicator.of(counts) for indicator in FIGURES)]
            for scope, this, previous in scopes
            for week, counts in ((this_week, this), (previous_week, previous))
        ),
        widths=[22, 11, *(12 for _ in FIGURES)],
        formats={
            2 + index: "0%" if indicator.kind is Kind.SHARE else "0.0"
            for index, indicator in enumerate(FIGURES)
            if indicator.kind is not Kind.COUNT
        },
    )
    tickets = book.create_sheet(t("digest.sheet.tickets"))
    _fill(
        tickets,
        _ticket_header(t),
        (_ticket_row(labels, ticket) for ticket in figures.tickets),
        widths=[8, 17, 20, 14, 12, 30, 60, 11, 11, 9, 17, 17, 17, 17, 10],
        formats={index: "yyyy-mm-dd hh:mm" for index in (1, 10, 11, 12, 13)}
        | {7: "0.000000", 8: "0.000000"},
    )
    book.save(path)
    return path


def csv_file(
    figures: WeekFigures,
    *,
    deployment: Deployment,
    translate: Callable[..., str],
    path: Path,
) -> Path:
    """The week's tickets as CSV in UTF-8 with a byte-order mark, so that Excel reads the
    Chinese; a text that would start a formula is prefixed with a single quote."""
    labels = Labels(deployment, translate)
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(_ticket_header(translate))
        for ticket in figures.tickets:
            writer.writerow(_csv_cell(cell) for cell in _ticket_row(labels, ticket))
    return path


def _ticket_header(t: Callable[..., str]) -> list[str]:
    return [
        t("digest.column.number"), t("digest.column.reported"), t("digest.column.station"),
        t("digest.column.category"), t("digest.column.status"), t("digest.column.place"),
        t("digest.column.description"), t("digest.column.lat"), t("digest.column.lon"),
        t("digest.column.reports"), t("digest.column.due"), t("digest.column.claimed"),
        t("digest.column.resolved"), t("digest.column.closed"), t("digest.column.rating"),
    ]


def _ticket_row(labels: Labels, ticket: WeekTicket) -> list[object]:
    """The ticket's cells, times on the district's clock without a zone."""

    def local(moment: datetime | None) -> datetime | None:
        return None if moment is None else labels.local(moment)

    return [
        ticket.id, local(ticket.created_at), labels.station(ticket.station_key),
        labels.category(ticket.category_key), labels.status(ticket.status), ticket.place,
        ticket.description, ticket.lat, ticket.lon, ticket.reports, local(ticket.due_at),
        local(ticket.claimed_at), local(ticket.resolved_at), local(ticket.closed_at),
        labels.rating(ticket.rating),
    ]


def _fill(
    sheet: Worksheet, header: Sequence[str], rows: Iterable[Sequence[object]], *,
    widths: Sequence[float], formats: dict[int, str],
) -> None:
    bold = Font(bold=True)
    for column, title in enumerate(header, start=1):
        sheet.cell(row=1, column=column, value=title).font = bold
    for row_number, row in enumerate(rows, start=2):
        for column, value in enumerate(row, start=1):
            cell = sheet.cell(row=row_number, column=column)
            if isinstance(value, str):
                # Assigned as a string, never parsed: "=HYPERLINK(…)" stays text, and the
                # quote prefix keeps Excel from making it a formula when the cell is edited.
                text = plain(value)[:EXCEL_CELL_LIMIT]
                cell.value = text
                cell.data_type = "s"
                cell.quotePrefix = text.startswith(FORMULA_STARTS)
            else:
                cell.value = value
                if value is not None and column - 1 in formats:
                    cell.number_format = formats[column - 1]
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, str):
        text = plain(value)
        return "'" + text if text.startswith(FORMULA_STARTS) else text
    return value
