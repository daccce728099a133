"""Catalogs: complete in both languages, matching placeholders, no missing or dead keys.

How keys are found in code (scanning ``bot/``, ``handlers/``, ``reports/``):

* a **message key** is a lowercase dotted string literal (``ack.created``) in a key position —
  the first argument of a call named ``t``, ``_``, ``__``, ``gettext``, ``lazy_gettext`` or
  ``<...>translator.get``, a ``key=``/``*_key=`` argument, a ``key``/``*_key`` assignment —
  or anywhere at all if its namespace (first segment) is one such keys or the catalogs use
  (so ``Button("button.claim", ...)`` counts once ``button.*`` keys exist);
* a **dynamic key** is an f-string starting with such a namespace, ``f"status.{status}"``; its
  constant prefix must be declared in `DYNAMIC_KEY_FAMILIES` below, together with the members
  the family must have, so that family is checked as a whole;
* a key-shaped literal in a message namespace that is *not* a message goes in
  `NOT_MESSAGE_KEYS`.
"""

from __future__ import annotations

import ast
import functools
import html
import logging
import multiprocessing
import os
import re
import shutil
import string
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiogram.utils.i18n import I18n
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot import i18n
from bot.app import COMMANDS
from bot.i18n import CatalogError, Translator, compile_catalogs
from bot.lifecycle import Status
from bot.notify import GONE_REASONS
from bot.permissions import Standing
from bot.photos import PHOTO_ERROR_REASONS, PhotoError, inspect_image

from factories import big_blob, corrupt_jpeg, fake_pdf, png_header_only

ROOT = Path(__file__).resolve().parents[1]
LOCALES_DIR = ROOT / "bot" / "locales"
CATALOG_LOCALES = ("zh_CN", "en")
SOURCE_DIRS = ("bot", "handlers", "reports")
KEY_SHAPE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
PREFIX_SHAPE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*\.")
CALL_NAMES = frozenset({"t", "_", "__", "gettext", "lazy_gettext"})

# Keys built at run time: prefix → the suffixes the family must have, exactly.
DYNAMIC_KEY_FAMILIES: dict[str, Callable[[], Iterable[str]]] = {
    "error.photo.": lambda: PHOTO_ERROR_REASONS,  # PhotoError.message_key
    "status.": lambda: [status.value for status in Status],  # a ticket's status, shown
    "command.": lambda: COMMANDS,  # the bot's command menu (bot/app.py)
    "gone.": lambda: GONE_REASONS,  # why a chat is unreachable (bot/notify.py)
    "role.": lambda: [*(s.value for s in Standing), "admin"],  # who may (bot/permissions.py)
}
NOT_MESSAGE_KEYS: frozenset[str] = frozenset()

# Telegram's HTML parse mode: these tags and nothing else.
TELEGRAM_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
    | {"tg-spoiler", "span", "blockquote", "tg-emoji"}
)


# --- reading catalogs and code ----------------------------------------------------------


def load_catalog(locale: str) -> Catalog:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "gridbot.po").open("rb") as fh:
        return read_po(fh, locale=locale, domain="gridbot", abort_invalid=True)


def catalog_texts(locale: str) -> dict[str, str]:
    return {str(m.id): str(m.string) for m in load_catalog(locale) if m.id}


def placeholders(text: str) -> set[tuple[str, str]]:
    return {
        (name, spec or "")
        for _, name, spec, _ in string.Formatter().parse(text)
        if name is not None
    }


@dataclass(frozen=True)
class KeyUse:
    key: str
    where: str
    explicit: bool  # the first argument of a translation call


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        if func.attr == "get":
            return "get" if ast.unparse(func.value).endswith("translator") else None
        return func.attr
    return None


def _is_key_name(name: str) -> bool:
    return name == "key" or name.endswith("_key")


def _explicit_key_nodes(tree: ast.AST) -> set[int]:
    """ids of expressions in a key position: t("…"), key="…", message_key = "…"."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if node.args and (name in CALL_NAMES or name == "get"):
                found.add(id(node.args[0]))
            found |= {id(kw.value) for kw in node.keywords if kw.arg and _is_key_name(kw.arg)}
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
                if _is_key_name(name):
                    found.add(id(node.value))
    return found


@functools.cache
def scan_sources() -> tuple[list[KeyUse], list[KeyUse], set[str]]:
    """(literal key uses, dynamic prefix uses, every string constant in code)."""
    literals: list[KeyUse] = []
    dynamic: list[KeyUse] = []
    constants: set[str] = set()
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            explicit_nodes = _explicit_key_nodes(tree)
            rel = path.relative_to(ROOT)
            for node in ast.walk(tree):
                where = f"{rel}:{getattr(node, 'lineno', '?')}"
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    constants.add(node.value)
                    if KEY_SHAPE.fullmatch(node.value):
                        literals.append(KeyUse(node.value, where, id(node) in explicit_nodes))
                elif isinstance(node, ast.JoinedStr) and node.values:
                    head = node.values[0]
                    if (
                        isinstance(head, ast.Constant)
                        and isinstance(head.value, str)
                        and PREFIX_SHAPE.fullmatch(head.value)
                    ):
                        dynamic.append(KeyUse(head.value, where, id(node) in explicit_nodes))
    return literals, dynamic, constants


def message_namespaces(literals: list[KeyUse]) -> set[str]:
    keys = set(catalog_texts("zh_CN")) | {use.key for use in literals if use.explicit}
    return {key.split(".")[0] for key in keys}


def used_keys(literals: list[KeyUse]) -> list[KeyUse]:
    namespaces = message_namespaces(literals)
    return [
        use
        for use in literals
        if use.key not in NOT_MESSAGE_KEYS
        and (use.explicit or use.key.split(".")[0] in namespaces)
    ]


# --- the committed catalogs ---------------------------------------------------------------


def test_both_catalogs_have_exactly_the_same_keys() -> None:
    zh, en = set(catalog_texts("zh_CN")), set(catalog_texts("en"))

    assert zh - en == set(), "keys missing in en"
    assert en - zh == set(), "keys missing in zh_CN"


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_every_message_is_translated_and_not_fuzzy(locale: str) -> None:
    catalog = load_catalog(locale)

    empty = [m.id for m in catalog if m.id and not str(m.string).strip()]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert empty == []
    assert fuzzy == []
    assert len(catalog) > 0


def test_placeholders_are_the_same_in_both_languages() -> None:
    zh, en = catalog_texts("zh_CN"), catalog_texts("en")

    mismatched = {
        key: (placeholders(zh[key]), placeholders(en[key]))
        for key in zh.keys() & en.keys()
        if placeholders(zh[key]) != placeholders(en[key])
    }
    assert mismatched == {}


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_placeholders_are_plain_names(locale: str) -> None:
    # Only {name} (optionally {name:spec}): positional, attribute or index fields would fail
    # at run time in the translator's format_map.
    bad = {
        key: sorted(name for name, _ in placeholders(text) if not name.isidentifier())
        for key, text in catalog_texts(locale).items()
    }
    assert {key: names for key, names in bad.items() if names} == {}


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_no_key_is_defined_twice(locale: str) -> None:
    # Babel silently keeps one of two duplicate entries; msgfmt refuses the file.
    po = (LOCALES_DIR / locale / "LC_MESSAGES" / "gridbot.po").read_text(encoding="utf-8")
    msgids = re.findall(r'^msgid "(.+)"$', po, flags=re.MULTILINE)

    assert len(msgids) == len(set(msgids))


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_catalog_reads_cleanly_and_passes_babels_checks(
    locale: str, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = load_catalog(locale)  # abort_invalid: any problem raises

    assert [(m.id, errors) for m, errors in catalog.check()] == []
    assert catalog.locale is not None
    assert catalog.locale.language == locale.split("_")[0]
    assert catalog.mime_headers  # header present
    assert capsys.readouterr().out == ""


def test_pybabel_compiles_the_catalogs_without_warnings(tmp_path: Path) -> None:
    pybabel = Path(sys.executable).with_name("pybabel")
    if not pybabel.exists():
        pytest.skip("pybabel is not installed next to this interpreter")
    shutil.copytree(LOCALES_DIR, tmp_path / "locales", ignore=shutil.ignore_patterns("*.mo"))

    result = subprocess.run(
        [str(pybabel), "compile", "-d", str(tmp_path / "locales"), "-D", "gridbot"],
        capture_output=True,
        text=True,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower() and "error" not in output.lower(), output
    for locale in CATALOG_LOCALES:
        assert (tmp_path / "locales" / locale / "LC_MESSAGES" / "gridbot.mo").is_file()


class _TelegramHtml:
    """Checks a message against Telegram's HTML parse mode (known tags, balanced, escaped)."""

    TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")
    ENTITY = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)")

    @classmethod
    def problems(cls, text: str) -> list[str]:
        found: list[str] = []
        stack: list[str] = []
        for match in cls.TAG.finditer(text):
            closing, tag = match.group(1), match.group(2).lower()
            if tag not in TELEGRAM_TAGS:
                found.append(f"unsupported tag <{tag}>")
            elif not closing:
                stack.append(tag)
            elif not stack or stack.pop() != tag:
                found.append(f"unbalanced </{tag}>")
        if stack:
            found.append(f"unclosed <{stack[-1]}>")
        rest = cls.TAG.sub("", text)
        if "<" in rest or ">" in rest:
            found.append("bare < or > (write &lt; &gt;)")
        if cls.ENTITY.search(rest):
            found.append("bare & (write &amp;)")
        return found


@pytest.mark.parametrize("locale", CATALOG_LOCALES)
def test_messages_are_valid_telegram_html(locale: str) -> None:
    bad = {}
    for key, text in catalog_texts(locale).items():
        filled = text.format_map({name: "1" for name, _ in placeholders(text)})
        if problems := _TelegramHtml.problems(filled):
            bad[key] = problems
    assert bad == {}


def test_the_html_checker_catches_mistakes() -> None:
    assert _TelegramHtml.problems("<b>好</b> &amp; <a href='x'>y</a>") == []
    assert _TelegramHtml.problems("<b>好") == ["unclosed <b>"]
    assert _TelegramHtml.problems("<div>x</div>") != []
    assert _TelegramHtml.problems("1 < 2") != []
    assert _TelegramHtml.problems("A & B") != []


# --- catalogs against the code --------------------------------------------------------------


def test_every_key_used_in_code_exists_in_the_catalogs() -> None:
    literals, _, _ = scan_sources()
    known = set(catalog_texts("zh_CN"))

    missing = sorted(
        {f"{use.key}  ({use.where})" for use in used_keys(literals) if use.key not in known}
    )
    assert missing == [], "add these keys to both catalogs:\n" + "\n".join(missing)


def test_every_catalog_key_is_used_somewhere() -> None:
    _, _, constants = scan_sources()

    dead = sorted(
        key
        for key in catalog_texts("zh_CN")
        if key not in constants and not key.startswith(tuple(DYNAMIC_KEY_FAMILIES))
    )
    assert dead == [], "no code uses these keys (or declare their family as dynamic):\n" + (
        "\n".join(dead)
    )


def test_every_dynamic_key_family_in_code_is_declared() -> None:
    literals, dynamic, _ = scan_sources()
    namespaces = message_namespaces(literals)

    undeclared = sorted(
        f"{use.key}…  ({use.where})"
        for use in dynamic
        if (use.explicit or use.key.split(".")[0] in namespaces)
        and not use.key.startswith(tuple(DYNAMIC_KEY_FAMILIES))
    )
    assert undeclared == [], "declare in DYNAMIC_KEY_FAMILIES:\n" + "\n".join(undeclared)


@pytest.mark.parametrize("prefix", sorted(DYNAMIC_KEY_FAMILIES))
def test_each_dynamic_family_is_complete(prefix: str) -> None:
    expected = {prefix + member for member in DYNAMIC_KEY_FAMILIES[prefix]()}
    family = {key for key in catalog_texts("zh_CN") if key.startswith(prefix)}

    assert sorted(expected - family) == [], "missing from the catalogs"
    assert sorted(family - expected) == [], "in the catalogs but not a member of the family"


def test_the_scanner_recognises_the_documented_patterns(tmp_path: Path) -> None:
    source = """
t("ack.created", number=1)
translator.get("callback.claimed", locale, number=2)
self.notifier.t(f"status.{status}", locale)
send(key="error.generic")
message_key = "error.x"
logger.info("bot.photos")  # not a key position
"""
    tree = ast.parse(source)
    explicit = _explicit_key_nodes(tree)

    in_key_position = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and id(node) in explicit
    }
    assert in_key_position == {"ack.created", "callback.claimed", "error.generic", "error.x"}
    assert KEY_SHAPE.fullmatch("error.generic")
    assert not KEY_SHAPE.fullmatch("Error.Generic")
    assert PREFIX_SHAPE.fullmatch("status.")


def test_photo_errors_fill_exactly_their_message_placeholders() -> None:
    bad_inputs = [
        b"",
        big_blob(21 * 1024 * 1024),
        fake_pdf(),
        corrupt_jpeg(),
        png_header_only(30_000, 30_000),
    ]
    raised: dict[str, PhotoError] = {}
    for data in bad_inputs:
        with pytest.raises(PhotoError) as caught:
            inspect_image(data)
        raised[caught.value.reason] = caught.value
    translator = Translator()

    assert set(raised) == set(PHOTO_ERROR_REASONS)
    for error in raised.values():
        for locale in CATALOG_LOCALES:
            text = catalog_texts(locale)[error.message_key]
            assert {name for name, _ in placeholders(text)} == set(error.params)
            assert "{" not in translator.get(error.message_key, locale, **error.params)


# --- Translator -----------------------------------------------------------------------------


def write_po(
    locales_dir: Path,
    locale: str,
    messages: dict[str, str],
    *,
    fuzzy: Iterable[str] = (),
) -> Path:
    folder = locales_dir / locale / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    fuzzy = set(fuzzy)
    lines = [
        'msgid ""',
        'msgstr ""',
        f'"Language: {locale}\\n"',
        '"Content-Type: text/plain; charset=UTF-8\\n"',
        "",
    ]
    for key, text in messages.items():
        if key in fuzzy:
            lines.append("#, fuzzy")
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        lines += [f'msgid "{key}"', f'msgstr "{escaped}"', ""]
    path = folder / "gridbot.po"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def small_locales(tmp_path: Path) -> Path:
    locales = tmp_path / "locales"
    write_po(
        locales,
        "zh_CN",
        {
            "ack.created": "已登记 #{number}，地址：{address}",
            "only.zh": "只有中文",
            "draft.note": "草稿 {x}",
        },
    )
    write_po(
        locales,
        "en",
        {"ack.created": "Logged #{number} at {address}", "draft.note": "Draft {x}"},
        fuzzy={"draft.note"},
    )
    return locales


def test_the_real_catalogs_load_zh_first() -> None:
    translator = Translator()

    assert translator.locales == ("zh_CN", "en")
    assert translator.get("error.photo.corrupt", "zh_CN") != translator.get(
        "error.photo.corrupt", "en"
    )
    assert "20 MB" in translator.get("error.photo.too_large", "en", limit_mb=20)


def test_params_are_filled_in(small_locales: Path) -> None:
    translator = Translator(small_locales)

    assert translator.get("ack.created", "zh_CN", number=7, address="汾阳路13号") == (
        "已登记 #7，地址：汾阳路13号"
    )
    assert translator.get("ack.created", "en", number=7, address="13 Fenyang Rd") == (
        "Logged #7 at 13 Fenyang Rd"
    )


def test_params_are_inserted_verbatim_never_escaped_or_reformatted(small_locales: Path) -> None:
    translator = Translator(small_locales)
    hostile = "<b>{number}</b> & {__class__}"

    text = translator.get("ack.created", "en", number=1, address=hostile)

    assert text == "Logged #1 at <b>{number}</b> & {__class__}"
    escaped = translator.get("ack.created", "en", number=1, address=html.escape(hostile))
    assert "&lt;b&gt;" in escaped


def test_missing_key_falls_back_to_chinese_and_warns_once(
    small_locales: Path, caplog: pytest.LogCaptureFixture
) -> None:
    translator = Translator(small_locales)

    with caplog.at_level(logging.WARNING, logger="bot.i18n"):
        first = translator.get("only.zh", "en")
        second = translator.get("only.zh", "en")

    assert first == second == "只有中文"
    warnings = [r for r in caplog.records if "only.zh" in r.getMessage()]
    assert len(warnings) == 1


def test_fuzzy_translation_counts_as_missing(small_locales: Path) -> None:
    assert Translator(small_locales).get("draft.note", "en", x=1) == "草稿 1"


def test_unknown_key_comes_back_as_itself(
    small_locales: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.i18n"):
        assert Translator(small_locales).get("no.such_key", "en") == "no.such_key"
    assert "no.such_key" in caplog.text


def test_a_forgotten_param_leaves_its_placeholder_and_warns(
    small_locales: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.i18n"):
        text = Translator(small_locales).get("ack.created", "en", number=3)

    assert text == "Logged #3 at {address}"
    assert "address" in caplog.text


def test_extra_params_are_ignored(small_locales: Path) -> None:
    text = Translator(small_locales).get("ack.created", "en", number=1, address="x", spare=2)

    assert text == "Logged #1 at x"


@pytest.mark.parametrize(
    ("language_code", "locale"),
    [
        ("zh-hans", "zh_CN"),
        ("zh-hant", "zh_CN"),
        ("zh", "zh_CN"),
        ("zh-CN", "zh_CN"),
        ("zh_TW", "zh_CN"),
        ("ZH-HANS", "zh_CN"),
        ("en", "en"),
        ("en-GB", "en"),
        ("en-us", "en"),
        (" en ", "en"),
        (None, "zh_CN"),
        ("", "zh_CN"),
        ("ru", "zh_CN"),
        ("xx-unknown-code", "zh_CN"),
        ("<script>", "zh_CN"),
    ],
)
def test_telegram_language_codes_map_to_our_locales(
    language_code: str | None, locale: str
) -> None:
    assert Translator().normalise_locale(language_code) == locale


def test_get_accepts_a_raw_language_code(small_locales: Path) -> None:
    translator = Translator(small_locales)

    assert translator.get("ack.created", "en-GB", number=1, address="x") == "Logged #1 at x"
    assert translator.get("only.zh", "fr") == "只有中文"


def test_bind_gives_a_t_for_one_reader(small_locales: Path) -> None:
    t = Translator(small_locales).bind("en-GB")

    assert t("ack.created", number=2, address="y") == "Logged #2 at y"


def test_a_missing_default_catalog_is_refused(tmp_path: Path) -> None:
    write_po(tmp_path, "en", {"a.b": "x"})

    with pytest.raises(CatalogError, match="zh_CN"):
        Translator(tmp_path)


def test_aiogram_i18n_reads_the_same_catalogs() -> None:
    translator = Translator()

    aiogram_i18n = translator.aiogram_i18n()

    assert isinstance(aiogram_i18n, I18n)
    assert set(aiogram_i18n.available_locales) == {"zh_CN", "en"}
    assert aiogram_i18n.default_locale == "zh_CN"
    with aiogram_i18n.use_locale("en"):
        assert aiogram_i18n.gettext("error.photo.corrupt") == translator.get(
            "error.photo.corrupt", "en"
        )


# --- compile_catalogs -----------------------------------------------------------------------


def test_compile_creates_the_mo_files_and_no_temp_files(small_locales: Path) -> None:
    compile_catalogs(small_locales)

    files = sorted(p.name for p in small_locales.rglob("*") if p.is_file())
    assert files == ["gridbot.mo", "gridbot.mo", "gridbot.po", "gridbot.po"]


def test_compile_leaves_fresh_catalogs_alone(small_locales: Path) -> None:
    compile_catalogs(small_locales)
    mo = small_locales / "zh_CN" / "LC_MESSAGES" / "gridbot.mo"
    before = mo.stat()

    compile_catalogs(small_locales)

    assert (mo.stat().st_ino, mo.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_compile_picks_up_an_edited_po(small_locales: Path) -> None:
    assert Translator(small_locales).get("only.zh", "zh_CN") == "只有中文"
    po = write_po(small_locales, "zh_CN", {"only.zh": "改过了"})
    mo = po.with_suffix(".mo")
    # An edit after the last compile, whatever the file system's timestamp resolution.
    later = mo.stat().st_mtime_ns + 2_000_000_000
    os.utime(po, ns=(later, later))

    assert Translator(small_locales).get("only.zh", "zh_CN") == "改过了"


def test_compile_names_a_broken_po(tmp_path: Path) -> None:
    folder = tmp_path / "zh_CN" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "gridbot.po").write_text('msgid "a.b"\nmsgstr "x"\nthis is not po\n', "utf-8")

    with pytest.raises(CatalogError, match=r"gridbot\.po"):
        compile_catalogs(tmp_path)
    assert not (folder / "gridbot.mo").exists()


def test_a_stale_catalog_that_cannot_be_rewritten_is_still_used(
    small_locales: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    compile_catalogs(small_locales)
    po = write_po(small_locales, "zh_CN", {"only.zh": "新文本"})
    later = po.with_suffix(".mo").stat().st_mtime_ns + 2_000_000_000
    os.utime(po, ns=(later, later))

    def read_only(path: Path, data: bytes) -> None:
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(i18n, "_write_atomically", read_only)
    with caplog.at_level(logging.WARNING, logger="bot.i18n"):
        translator = Translator(small_locales)

    assert translator.get("only.zh", "zh_CN") == "只有中文"
    assert "cannot refresh" in caplog.text


def test_compile_is_safe_from_several_processes_at_once(small_locales: Path) -> None:
    context = multiprocessing.get_context("spawn")
    for po in small_locales.rglob("*.po"):
        po.with_suffix(".mo").unlink(missing_ok=True)

    with context.Pool(4) as pool:
        pool.map(compile_catalogs, [small_locales] * 8)

    leftovers = [p.name for p in small_locales.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert Translator(small_locales).get("only.zh", "zh_CN") == "只有中文"
