"""Caption parsing: what captains actually type, and what hostile or broken input must not do."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.intake import (
    ParsedCaption,
    classify,
    clean_caption,
    looks_like_problem,
    normalise_address,
    parse_caption,
)

CAPTIONS = [
    # address first, any separator
    ("汾阳路13号 旱厕堵了", "汾阳路13号", "旱厕堵了"),
    ("汾阳路13号，旱厕堵了", "汾阳路13号", "旱厕堵了"),
    ("汾阳路13号,旱厕堵了", "汾阳路13号", "旱厕堵了"),
    ("汾阳路13号\n旱厕堵了", "汾阳路13号", "旱厕堵了"),
    ("汾阳路13号旱厕堵了", "汾阳路13号", "旱厕堵了"),
    # address last
    ("旱厕堵了，汾阳路13号", "汾阳路13号", "旱厕堵了"),
    ("旱厕堵了汾阳路13号", "汾阳路13号", "旱厕堵了"),
    ("车库积水金水路13号", "金水路13号", "车库积水"),
    ("垃圾没人清 在汾阳路13号", "汾阳路13号", "垃圾没人清"),
    # address in the middle: both sides kept, joined by a space
    ("垃圾桶满了 汾阳路13号 好几天没人清", "汾阳路13号", "垃圾桶满了 好几天没人清"),
    ("在汾阳路13号门口有垃圾", "汾阳路13号", "门口有垃圾"),
    ("汾阳路13号的路灯不亮", "汾阳路13号", "路灯不亮"),
    # labelled forms, Chinese and ASCII punctuation, either order
    ("地址：金水路金秋小区二期3号楼；描述：车库积水", "金水路金秋小区二期3号楼", "车库积水"),
    ("地址:金水路金秋小区二期3号楼;描述:车库积水", "金水路金秋小区二期3号楼", "车库积水"),
    ("地点：汾阳路13号\n问题：旱厕堵了", "汾阳路13号", "旱厕堵了"),
    ("位置：兴城路小学\n情况：路灯不亮", "兴城路小学", "路灯不亮"),
    ("描述：车库积水\n地址：金秋小区二期3号楼", "金秋小区二期3号楼", "车库积水"),
    ("地址： 汾阳路13号\n旱厕堵了", "汾阳路13号", "旱厕堵了"),
    ("旱厕堵了\n地址：汾阳路13号", "汾阳路13号", "旱厕堵了"),
    ("问题：旱厕堵了 汾阳路13号", "汾阳路13号", "旱厕堵了"),
    ("汾阳路13号有问题：旱厕堵了", "汾阳路13号", "旱厕堵了"),
    # compounds, buildings, units, rooms
    ("金秋小区二期3号楼2单元门口垃圾没人清", "金秋小区二期3号楼2单元", "门口垃圾没人清"),
    ("金秋小区3栋 楼道灯不亮", "金秋小区3栋", "楼道灯不亮"),
    ("汾阳路13号2单元301室 水管漏水", "汾阳路13号2单元301室", "水管漏水"),
    ("汾阳路13号金秋小区3号楼 漏水", "汾阳路13号金秋小区3号楼", "漏水"),
    ("金秋小区门口垃圾", "金秋小区", "门口垃圾"),
    ("虎山苑5号楼 墙皮掉了", "虎山苑5号楼", "墙皮掉了"),
    # landmarks
    ("兴城路小学门口井盖坏了", "兴城路小学", "门口井盖坏了"),
    ("汾阳路菜市场门口占道经营", "汾阳路菜市场", "门口占道经营"),
    ("九水路社区卫生服务中心旁边漏水", "九水路社区卫生服务中心", "旁边漏水"),
    ("虎山路地铁站 扶梯坏了", "虎山路地铁站", "扶梯坏了"),
    # full-width digits and spaces, extra spaces, emoji
    ("汾阳路１３号", "汾阳路13号", None),
    ("汾阳路１３号　旱厕堵了", "汾阳路13号", "旱厕堵了"),
    ("  汾阳路13号    旱厕   堵了  ", "汾阳路13号", "旱厕 堵了"),
    ("📍汾阳路13号 旱厕堵了😭😭", "汾阳路13号", "旱厕堵了"),
    # Chinese numerals
    ("汾阳路十三号 旱厕堵了", "汾阳路十三号", "旱厕堵了"),
    ("金秋小区二期三号楼三单元 楼道灯坏了", "金秋小区二期三号楼三单元", "楼道灯坏了"),
    ("金秋小区二期3#楼2单元 漏水", "金秋小区二期3#楼2单元", "漏水"),
    ("东李小区3-2-301 楼上漏水", "东李小区3-2-301", "楼上漏水"),
    # basic English and pinyin
    ("Fenyang Rd 13 garbage", "Fenyang Rd 13", "garbage"),
    ("fenyanglu 13hao 旱厕堵了", "fenyanglu 13hao", "旱厕堵了"),
    ("Jinshui Road No.8 trash", "Jinshui Road No.8", "trash"),
    ("Heilongjiang Middle Rd 5 flooding", "Heilongjiang Middle Rd 5", "flooding"),
    ("the last 2 days", None, "the last 2 days"),
    ("garbage at fenyang rd 13", "fenyang rd 13", "garbage"),
    ("13 Fenyang Road, leak", "13 Fenyang Road", "leak"),
    # only one of the two
    ("汾阳路13号", "汾阳路13号", None),
    ("旱厕堵了", None, "旱厕堵了"),
    ("今天下午开会吗？", None, "今天下午开会吗"),
    ("我是楼院长，请多关照", None, "我是楼院长，请多关照"),
]


@pytest.mark.parametrize(("caption", "address", "description"), CAPTIONS)
def test_caption_forms_captains_type(
    caption: str, address: str | None, description: str | None
) -> None:
    assert parse_caption(caption) == ParsedCaption(address=address, description=description)


@pytest.mark.parametrize("caption", [None, "", "   ", "\n\n", "😀😀", "，。；", "\u200b"])
def test_empty_captions_have_neither_address_nor_description(caption: str | None) -> None:
    assert parse_caption(caption) == ParsedCaption(address=None, description=None)


def test_html_is_kept_as_typed_for_the_renderer_to_escape() -> None:
    parsed = parse_caption("汾阳路13号 <b>旱厕</b> & 堵了")
    assert parsed == ParsedCaption(address="汾阳路13号", description="<b>旱厕</b> & 堵了")


def test_sql_like_junk_is_just_text() -> None:
    parsed = parse_caption("汾阳路13号 '; DROP TABLE tickets; -- 漏水")
    assert parsed.address == "汾阳路13号"
    assert parsed.description == "'; DROP TABLE tickets; -- 漏水"


def test_a_chain_of_place_words_is_not_one_huge_address() -> None:
    parsed = parse_caption("汾阳路13号" * 200)
    assert parsed.address == "汾阳路13号"


# Inputs that make backtracking regexes explode, and plain long captions, at 5,000 characters
# and more. Finishing at all is the assertion: the parser is linear.
HUGE = [
    "路" * 5000,
    "1" * 5000,
    "路1" * 2500,
    "小区" * 2500,
    "院" * 5000,
    "市场" * 2500,
    "地址：" * 2000,
    "问题：地址：" * 1000,
    "Fenyang " * 700,
    "ab rd " * 900,
    "金秋小区二期3号楼" * 600,
    "旱厕堵了" * 1250 + "汾阳路13号",
    "路" + "1" * 5000 + "号",
    " \n" * 5000,
    "😀" * 5000,
]


@pytest.mark.parametrize("caption", HUGE, ids=lambda caption: repr(caption[:8]))
def test_huge_captions_parse(caption: str) -> None:
    parsed = parse_caption(caption * 4)  # 20,000 characters and up
    assert parsed.address is None or len(parsed.address) <= 80


def test_long_caption_keeps_its_address() -> None:
    parsed = parse_caption("旱厕堵了" * 1250 + " 汾阳路13号")
    assert parsed.address == "汾阳路13号"
    assert parsed.description == "旱厕堵了" * 1250


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parsing_never_raises_and_returns_pieces_of_the_caption(text: str) -> None:
    cleaned = clean_caption(text)
    parsed = parse_caption(text)
    if parsed.address is not None:
        assert parsed.address
        assert parsed.address in cleaned
    if parsed.description is not None:
        assert parsed.description
        # A description around an address comes back as its two sides joined by a space.
        assert all(piece in cleaned for piece in parsed.description.split(" "))


ALPHABET = "汾阳路金水秋小区二期号楼单元栋院市场地址描述问题：:；;，, \n13０１２堵漏了Rd 😀<>&"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=200))
def test_parsing_address_like_noise(text: str) -> None:
    cleaned = clean_caption(text)
    parsed = parse_caption(text)
    if parsed.address is not None:
        assert parsed.address in cleaned
    if parsed.description is not None:
        assert all(piece in cleaned for piece in parsed.description.split(" "))


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("汾阳路１３號", "汾阳路13号"),
        (" 汾阳路 13 号 ", "汾阳路13号"),
        ("汾阳路013号", "汾阳路13号"),
        ("金秋小区二期3栋", "金秋小区二期3号楼"),
        ("金秋小区二期3幢", "金秋小区二期3号楼"),
        ("金秋小区二期3号栋", "金秋小区二期3号楼"),
        ("金秋小区二期3#楼", "金秋小区二期3号楼"),
        ("金秋小区二期３＃楼", "金秋小区二期3号楼"),
        ("金秋小区二期3号楼", "金秋小区二期3号楼"),
        ("汾阳路13号，", "汾阳路13号"),
        ("Fenyang Road No. 13", "fenyangrd13"),
        ("FENYANG RD 13", "fenyangrd13"),
        ("汾阳路13-2号", "汾阳路13-2号"),
        ("", ""),
        ("！？。", ""),
        # Chinese numerals before a unit word are numbers...
        ("汾阳路十三号", "汾阳路13号"),
        ("二十一号楼", "21号楼"),
        ("三单元", "3单元"),
        ("三零一室", "301室"),
        ("第三单元", "3单元"),
        ("汾阳路一百零五号", "汾阳路105号"),
        ("汾阳路零三号", "汾阳路3号"),
        ("金秋小区二期三号楼三单元五零二室", "金秋小区二期3号楼3单元502室"),
        # ...inside a name they are the name
        ("九水路九号", "九水路9号"),
        ("九水路", "九水路"),
        ("四流中路十号", "四流中路10号"),
        ("万年泉路", "万年泉路"),
        ("十梅庵公园", "十梅庵公园"),
        ("金秋小区二期", "金秋小区二期"),
        ("金秋小区2期", "金秋小区二期"),
        ("百通花园一期", "百通花园一期"),
        # units spelled every way
        ("京口新村8座", "京口新村8号楼"),
        ("东李小区3-2-301", "东李小区3号楼2单元301室"),
        ("东李小区3号楼2单元301户", "东李小区3号楼2单元301室"),
        # filler around the place
        ("汾阳路13号旁边", "汾阳路13号"),
        ("汾阳路13号门口东侧", "汾阳路13号"),
        ("兴城路小学对面", "兴城路小学"),
        ("在汾阳路13号附近", "汾阳路13号"),
        ("李沧区汾阳路13号那边", "汾阳路13号"),
        ("青岛市李沧区金水路8号这里", "金水路8号"),
        ("兴城路街道办事处", "兴城路街道办事处"),
        ("门口", "门口"),  # never down to nothing
    ],
)
def test_normalise_address(typed: str, normalised: str) -> None:
    assert normalise_address(typed) == normalised


ADDRESS_ALPHABET = "汾阳路九水金秋小区二期一三十百号楼栋单元室门口旁边在李沧区0123-# "


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ADDRESS_ALPHABET, max_size=40))
def test_normalising_is_total_and_stable(text: str) -> None:
    once = normalise_address(text)
    assert normalise_address(once) == once


def test_normalising_twice_changes_nothing() -> None:
    for _caption, address, _description in CAPTIONS:
        if address:
            once = normalise_address(address)
            assert normalise_address(once) == once


@pytest.mark.parametrize(
    "text",
    [
        "旱厕堵了",
        "车库积水",
        "路灯不亮",
        "垃圾没人清",
        "井盖破损",
        "墙皮掉了",
        "电动车乱停",
        "楼道很脏很臭",
        "水管漏水",
        "占道经营",
        "消防隐患",
        "street light broken",
        "Pipe LEAK",
    ],
)
def test_problems_look_like_problems(text: str) -> None:
    assert looks_like_problem(text)


@pytest.mark.parametrize(
    "text", ["", None, "大家好", "今天下午三点开会", "收到，谢谢", "汾阳路13号", "good morning"]
)
def test_chat_does_not_look_like_a_problem(text: str | None) -> None:
    assert not looks_like_problem(text)


def test_clean_caption_squeezes_spaces_and_keeps_line_breaks() -> None:
    assert (
        clean_caption("  汾阳路１３号 \t\u3000 旱厕 \r\n\n 堵了 \u200b ")
        == "汾阳路13号 旱厕\n堵了"
    )


CATEGORIES = [
    ("sanitation", ["垃圾", "旱厕", "堵"]),
    ("facilities", ["灯", "井盖", "坏"]),
    ("safety", ["电线", "塌"]),
]


@pytest.mark.parametrize(
    ("description", "category"),
    [
        ("旱厕堵了", "sanitation"),
        ("楼道灯坏了，晚上很黑", "facilities"),
        ("电线垂下来了", "safety"),
        ("垃圾堆旁边的路灯坏了", "sanitation"),  # the first category in file order wins
        ("有人在这里下象棋", "other"),
        ("", "other"),
        (None, "other"),
    ],
)
def test_a_quick_report_gets_a_category_from_its_words(
    description: str | None, category: str
) -> None:
    assert classify(description, CATEGORIES, default="other") == category
