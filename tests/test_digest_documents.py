"""The digest's files as the street office opens them: a PDF whose text is Chinese, pictures drawn
in a Chinese font, spreadsheets that keep what users typed as text, and a clear error when no
Chinese font is installed."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import findfont
from matplotlib.text import Text
from openpyxl import load_workbook
from PIL import Image
from pypdf import PdfReader

from bot.deployment import Deployment, load_deployment
from bot.grids import Grids
from bot.i18n import Translator
from bot.settings import Settings
from reports.charts import chart, map_figure
from reports.documents import STEPS, Rendered, pdf, render
from reports.figures import (
    Counts,
    Hotspot,
    OpenTicket,
    StationWeek,
    TrendPoint,
    WeekFigures,
    WeekTicket,
)
from reports.fonts import FontMissing, cjk_font
from reports.labels import FIGURES, Labels, count_change, hours, share
from reports.week import Week

from conftest import SAMPLE, sample_deployment_with

SCRIPT = "<script>alert(1)</script>"
MARKUP = "鱼 & 熊掌 <b>不加粗</b> &amp;"
FORMULA = '=HYPERLINK("http://evil.example","点我")'
AT_FORMULA = "@SUM(1)"
LONG = "井盖破损" * 500  # 2,000 characters
EMOJI = "垃圾桶满了😡🗑️"
QUOTED = 'a "quoted", comma\nand a new line'
CONTROL = "铃\x00\x07\x1b声\ufffe"  # what no XML (so no XLSX) may hold
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator()


@pytest.fixture(scope="module")
def t(translator: Translator) -> Callable[..., str]:
    return translator.bind("zh_CN")


@pytest.fixture(scope="module")
def sample() -> Deployment:
    return load_deployment(SAMPLE)


@pytest.fixture(scope="module")
def grids(sample: Deployment) -> Grids:
    return Grids.of(sample)


def at(day: int, hour: int = 9) -> datetime:
    """A moment of week 2026-W47 (Monday 16 Nov) in Shanghai, as UTC."""
    return datetime(2026, 11, 16 + day, hour, tzinfo=UTC) - timedelta(hours=8)


def inside(grids: Grids, key: str) -> tuple[float, float]:
    point = grids.outline(key).representative_point()
    return point.y, point.x


def busy_week(sample: Deployment, grids: Grids) -> WeekFigures:
    week = Week(2026, 47, sample.zone)
    this = Counts(
        received=14, opened=12, merged=2, claimed=10, resolved=9, closed=7, reopened=1,
        rejected=1, escalated=2, open_at_end=5, overdue_at_end=3, parked_at_end=1, due=8,
        due_met=7, satisfied=6, rated=7, claim_hours_median=1.25, claim_hours_p90=5.0,
        resolve_hours_median=20.04, resolve_hours_p90=70.0,
    )
    before = Counts(received=10, opened=9, resolved=11, overdue_at_end=5, due=4, due_met=2)
    fenyang = Counts(opened=7, resolved=5, overdue_at_end=2, open_at_end=3, due=4, due_met=3)
    jinshui = Counts(opened=4, resolved=4, overdue_at_end=1, open_at_end=1)
    triage = Counts(opened=1, open_at_end=1)

    def ticket(number: int, station: str | None, status: str, description: str,
               place: str = "金水路12号", where: tuple[float, float] | None = None) -> WeekTicket:
        lat, lon = where if where is not None else (None, None)
        return WeekTicket(
            id=number, created_at=at(number % 7, 8 + number % 10), station_key=station,
            category_key="sanitation" if number % 2 else "facilities", status=status,
            place=place, description=description, lat=lat, lon=lon, reports=1 + number % 3,
            due_at=at(number % 7 + 1), claimed_at=at(number % 7, 20) if number % 3 else None,
            resolved_at=None, closed_at=None, rating="satisfied" if number == 3 else None,
        )

    tickets = (
        ticket(1, "fenyang", "claimed", SCRIPT, place=SCRIPT, where=inside(grids, "fenyang")),
        ticket(2, "fenyang", "assigned", MARKUP, place=MARKUP, where=inside(grids, "fenyang")),
        ticket(3, "jinshui", "closed", FORMULA, where=inside(grids, "jinshui")),
        ticket(4, "jinshui", "resolved", AT_FORMULA, where=inside(grids, "jinshui")),
        ticket(5, "fenyang", "reopened", LONG, place=LONG, where=inside(grids, "fenyang")),
        ticket(6, "fenyang", "claimed", EMOJI, where=inside(grids, "hushan")),
        ticket(7, None, "new", "", place=""),  # no location at all
        ticket(8, None, "assigned", QUOTED, where=(31.0, 121.0)),  # far outside the grids
        ticket(9, "jinshui", "parked", "-1+1", place="+86 电话"),
        ticket(10, "jinshui", "claimed", CONTROL, place=CONTROL, where=inside(grids, "jinshui")),
    )

    def open_ticket(number: int, place: str, *, overdue: bool) -> OpenTicket:
        return OpenTicket(
            id=number, station_key="fenyang" if number % 2 else None,
            category_key="sanitation", place=place, status="claimed",
            created_at=at(0) - timedelta(days=number), due_at=at(1) - timedelta(days=number),
            overdue=overdue,
        )

    return WeekFigures(
        week=week,
        station=None,
        generated_at=at(7, 10),
        total=this,
        previous_total=before,
        stations=(
            StationWeek("fenyang", "汾阳路社区工作站", fenyang, Counts(opened=5, resolved=6)),
            StationWeek("jinshui", "金水路社区工作站", jinshui, Counts(opened=4)),
            StationWeek(None, "", triage, Counts()),
        ),
        categories=(("sanitation", 8), ("facilities", 5), ("removed-category", 1)),
        oldest_open=(
            open_ticket(31, SCRIPT, overdue=True), open_ticket(30, LONG, overdue=True),
            open_ticket(29, CONTROL, overdue=True),
        ),
        overdue=tuple(open_ticket(n, MARKUP if n == 20 else f"路灯 {n}", overdue=True)
                      for n in range(20, 32)),
        hotspots=(Hotspot(SCRIPT, 4, (1, 2, 5, 6)), Hotspot("汾阳路88号", 3, (11, 12, 13))),
        trend=tuple(
            TrendPoint(week.previous(11 - n).label, opened=5 + n, resolved=4 + n % 5,
                       open_at_end=n % 4)
            for n in range(12)
        ),
        tickets=tickets,
    )


def empty_week(sample: Deployment) -> WeekFigures:
    week = Week(2026, 1, sample.zone)
    return WeekFigures(
        week=week, station=None, generated_at=at(0), total=Counts(), previous_total=Counts(),
        stations=tuple(StationWeek(s.key, s.name, Counts(), Counts()) for s in sample.stations),
        categories=(), oldest_open=(), overdue=(), hotspots=(),
        trend=tuple(TrendPoint(week.previous(11 - n).label, 0, 0, 0) for n in range(12)),
    )


@pytest.fixture(scope="module")
def digest(
    tmp_path_factory: pytest.TempPathFactory, sample: Deployment, grids: Grids,
    t: Callable[..., str],
) -> Rendered:
    steps: list[str] = []
    rendered = render(
        busy_week(sample, grids), deployment=sample, grids=grids, translate=t,
        directory=tmp_path_factory.mktemp("digest") / "out", step=steps.append,
    )
    assert steps == list(STEPS)
    return rendered


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


# --- PDF ---------------------------------------------------------------------------------------


def test_the_pdf_reads_as_chinese(digest: Rendered) -> None:
    text = pdf_text(digest.pdf)

    assert digest.pdf.name == "digest-2026-W47.pdf"
    assert "兴城路街道办事处工作周报" in text
    assert "2026年第47周" in text and "2026-11-16 至 2026-11-22" in text
    assert "汾阳路社区工作站" in text and "金水路社区工作站" in text
    assert "街道待分派" in text  # the reports no grid holds
    assert "按期处置率" in text and "满意率" in text and "处置用时中位数（小时）" in text
    assert "环境卫生" in text and "公共设施" in text  # category names, not keys
    assert "全部超期工单" in text and "未办结时间最长的工单" in text


def test_the_pdf_shows_the_figures_against_last_week(digest: Rendered) -> None:
    text = pdf_text(digest.pdf)

    assert "88%" in text  # 7 of 8 deadlines met
    assert "+38个百分点" in text  # 88% against 50%
    assert "20.0" in text  # hours with one decimal
    assert "\u22122" in text  # resolved 9 against 11: a real minus sign
    assert "+3" in text  # opened 12 against 9


def test_user_text_in_the_pdf_is_shown_literally_not_interpreted(digest: Rendered) -> None:
    text = pdf_text(digest.pdf)

    assert SCRIPT in text
    assert "鱼 & 熊掌 <b>不加粗</b> &amp;" in text
    unwrapped = "".join(text.split())
    assert "井盖破损" * 29 in unwrapped and "井盖破损" * 31 not in unwrapped  # cut to fit
    assert "铃声" in text and "\x00" not in text


def test_the_pdf_lists_every_overdue_ticket(digest: Rendered) -> None:
    text = pdf_text(digest.pdf)

    assert all(f"#{number}" in text for number in range(20, 32))


def test_an_empty_week_of_a_station_still_makes_every_file(
    tmp_path: Path, sample: Deployment, grids: Grids, t: Callable[..., str]
) -> None:
    figures = replace(
        empty_week(sample), station="fenyang",
        stations=(StationWeek("fenyang", "汾阳路社区工作站", Counts(), Counts()),),
    )

    rendered = render(figures, deployment=sample, grids=grids, translate=t, directory=tmp_path)
    text = pdf_text(rendered.pdf)

    assert {path.name for path in tmp_path.iterdir()} == {
        "digest-2026-W01-fenyang.pdf", "digest-2026-W01-fenyang.xlsx",
        "digest-2026-W01-fenyang.csv", "digest-2026-W01-fenyang-chart.png",
        "digest-2026-W01-fenyang-map.png",
    }
    assert "工作站：汾阳路社区工作站" in text
    assert "2026年第1周" in text and "2025-12-29 至 2026-01-04" in text  # across the new year
    assert "—" in text  # no deadline, no rating: no percentage
    assert "无" in text  # no categories, hotspots, open or overdue tickets
    rows = list(csv.reader(io.StringIO(rendered.csv.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 1  # the header only
    assert load_workbook(rendered.xlsx)["工单"].max_row == 1


def test_a_chart_with_nothing_to_draw_says_so(
    sample: Deployment, t: Callable[..., str]
) -> None:
    figures = replace(empty_week(sample), stations=(), trend=())

    texts = [text.get_text() for text in texts_of(chart(figures, deployment=sample, translate=t))]

    assert texts.count("本周没有数据") == 2


def test_names_from_the_deployment_file_are_shown_as_written(
    tmp_path: Path, t: Callable[..., str]
) -> None:
    office = "<b>兴城路</b> & $x^2$ 街道"
    odd = sample_deployment_with(tmp_path, street_office={"name": office, "chat_id": -100123})
    figures = empty_week(odd)
    picture = tmp_path / "picture.png"
    Image.new("RGB", (40, 30), "white").save(picture)

    document = pdf(
        figures, deployment=odd, translate=t, chart=picture, map=picture,
        path=tmp_path / "odd.pdf",
    )
    words = {text.get_text() for text in texts_of(
        map_figure(figures, deployment=odd, grids=Grids.of(odd), translate=t)
    )}

    assert f"{office}工作周报" in pdf_text(document)
    assert f"{office} 2026年第1周 工单分布" in words  # not math text, not markup


# --- pictures ----------------------------------------------------------------------------------


def texts_of(picture: Figure) -> list[Text]:
    FigureCanvasAgg(picture).draw()  # tick labels exist once drawn
    return [text for text in picture.findobj(Text) if text.get_text().strip()]


def test_the_chart_is_drawn_in_the_chinese_font(
    sample: Deployment, grids: Grids, t: Callable[..., str]
) -> None:
    picture = chart(busy_week(sample, grids), deployment=sample, translate=t)
    texts = texts_of(picture)
    words = {text.get_text() for text in texts}

    assert {"汾阳路社区工作站", "街道待分派", "新立工单", "处置完成", "周末超期"} <= words
    assert "各工作站：2026年第47周" in words and "近12周走势" in words and "第47周" in words
    assert {str(findfont(text.get_fontproperties())) for text in texts} == {str(cjk_font())}


def test_the_map_names_the_stations_and_the_states(
    sample: Deployment, grids: Grids, t: Callable[..., str]
) -> None:
    picture = map_figure(busy_week(sample, grids), deployment=sample, grids=grids, translate=t)
    texts = texts_of(picture)
    words = {text.get_text() for text in texts}

    assert {station.name for station in sample.stations} <= words
    assert {"处理中 (3)", "待认领 (1)", "返工中 (1)", "待确认 (1)", "已办结 (1)"} <= words
    assert not any(word.startswith("挂账") for word in words)  # the parked one has no place
    assert "兴城路街道办事处 2026年第47周 工单分布" in words
    assert "另有 3 件工单没有位置或在网格之外，未在图上标出" in words  # 7, 8 and 9
    assert {str(findfont(text.get_fontproperties())) for text in texts} == {str(cjk_font())}


def test_the_pictures_are_real_pngs(digest: Rendered) -> None:
    for path, size in ((digest.chart, (1650, 1350)), (digest.map, (1350, 1350))):
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == size
        assert 20_000 < path.stat().st_size < 2_000_000


# --- spreadsheets ------------------------------------------------------------------------------


def test_the_workbook_has_the_figures_and_the_tickets(digest: Rendered) -> None:
    book = load_workbook(digest.xlsx)
    figures, tickets = book["指标"], book["工单"]

    assert book.sheetnames == ["指标", "工单"]
    header = [cell.value for cell in figures[1]]
    assert header[:3] == ["范围", "周次", "收到报事"] and len(header) == 2 + len(FIGURES)
    assert [row[0].value for row in figures.iter_rows(min_row=2)] == [
        "全街道", "全街道", "汾阳路社区工作站", "汾阳路社区工作站", "金水路社区工作站",
        "金水路社区工作站", "街道待分派", "街道待分派",
    ]
    assert [figures["B2"].value, figures["B3"].value] == ["2026-W47", "2026-W46"]
    compliance = 2 + [i.name for i in FIGURES].index("compliance") + 1
    assert figures.cell(row=2, column=compliance).value == pytest.approx(7 / 8)
    assert figures.cell(row=2, column=compliance).number_format == "0%"
    assert figures.cell(row=3, column=compliance + 2).value is None  # nobody rated last week
    for sheet in (figures, tickets):
        assert sheet.freeze_panes == "A2"
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet.column_dimensions["A"].width > 5
    assert [cell.value for cell in tickets[1]][:7] == [
        "编号", "报事时间", "工作站", "类别", "状态", "地点", "描述"
    ]
    assert tickets.max_row == 1 + 10


def test_the_workbook_keeps_user_text_as_text(digest: Rendered) -> None:
    tickets = load_workbook(digest.xlsx)["工单"]
    by_number = {row[0].value: row for row in tickets.iter_rows(min_row=2)}

    formula = by_number[3][6]
    assert formula.value == FORMULA and formula.data_type == "s" and formula.quotePrefix
    assert by_number[4][6].value == AT_FORMULA and by_number[4][6].data_type == "s"
    assert by_number[1][6].value == SCRIPT and by_number[5][6].value == LONG
    assert by_number[6][6].value == EMOJI
    assert by_number[7][6].value is None and by_number[7][7].value is None  # empty, no place
    assert by_number[3][14].value == "满意"
    assert by_number[10][6].value == "铃声"  # control characters dropped, the workbook opens


def test_the_workbook_times_are_the_districts_clock(digest: Rendered) -> None:
    tickets = load_workbook(digest.xlsx)["工单"]
    reported = next(row for row in tickets.iter_rows(min_row=2) if row[0].value == 1)[1]

    # Ticket 1 was reported at 09:00 on Tuesday, Shanghai time; Excel has no zones.
    assert reported.value == datetime(2026, 11, 17, 9, 0)  # noqa: DTZ001
    assert reported.is_date and reported.number_format == "yyyy-mm-dd hh:mm"


def test_the_csv_opens_in_excel_as_chinese_and_runs_no_formula(digest: Rendered) -> None:
    raw = digest.csv.read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    by_number = {row[0]: row for row in rows[1:]}

    assert raw.startswith(codecs.BOM_UTF8)
    assert rows[0][:4] == ["编号", "报事时间", "工作站", "类别"]
    assert by_number["3"][6] == "'" + FORMULA
    assert by_number["4"][6] == "'" + AT_FORMULA
    assert by_number["9"][6] == "'-1+1" and by_number["9"][5] == "'+86 电话"
    assert by_number["8"][6] == QUOTED  # quoted, so the comma and the new line stay inside
    assert by_number["1"][6] == SCRIPT and by_number["5"][6] == LONG
    assert by_number["6"][6] == EMOJI and by_number["10"][6] == "铃声"
    assert by_number["7"][5:8] == ["", "", ""]
    assert by_number["1"][1] == "2026-11-17 09:00"
    assert by_number["3"][2] == "金水路社区工作站" and by_number["8"][2] == "街道待分派"


# --- numbers and names -------------------------------------------------------------------------


def test_numbers_are_written_as_the_office_reads_them(
    sample: Deployment, translator: Translator
) -> None:
    labels = Labels(sample, translator.bind("en"))

    assert [share(0.874), share(None), share(0.0)] == ["87%", "—", "0%"]
    assert [hours(20.04), hours(None)] == ["20.0", "—"]
    assert [count_change(12, 9), count_change(9, 11), count_change(4, 4)] == ["+3", "−2", "0"]
    assert count_change(1.25, 2.0, digits=1) == "−0.8"
    assert labels.week_name(Week(2026, 47, sample.zone)) == "Week 47 of 2026"
    assert labels.category("sanitation") == "Sanitation"
    assert labels.station(None) == "Office triage"
    assert labels.station("gone", "旧站") == "旧站"


# --- the font ----------------------------------------------------------------------------------


def test_a_configured_font_that_is_missing_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(FontMissing) as refused:
        cjk_font(tmp_path / "nowhere.ttf")

    message = str(refused.value)
    assert "nowhere.ttf" in message and "is not a file" in message
    assert "fonts-wqy-microhei" in message and "GRIDBOT_FONT" in message


@pytest.mark.skipif(not DEJAVU.is_file(), reason="Debian's DejaVu fonts are not installed")
def test_a_configured_font_without_chinese_is_refused_clearly() -> None:
    with pytest.raises(FontMissing, match="has no Chinese glyphs.*fonts-wqy-microhei"):
        cjk_font(DEJAVU)


@pytest.mark.parametrize("content", [b"", b"not a font at all", b"ttcf" + bytes(200)])
def test_a_configured_file_that_is_no_font_is_refused_clearly(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "broken.ttc"
    path.write_bytes(content)

    with pytest.raises(FontMissing, match="not a font file that can be read"):
        cjk_font(path)


def test_the_font_is_configured_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    font = cjk_font()
    monkeypatch.setenv("GRIDBOT_FONT", str(font))

    assert cjk_font(Settings().font) == font
