"""Every word the bot says, from gettext catalogs: Simplified Chinese first, English second.

Messages are looked up by symbolic keys (``ack.created``); the full text lives in
``bot/locales/<locale>/LC_MESSAGES/gridbot.po`` and placeholders are ``{name}`` fields.

Code names a message with a lowercase dotted string literal in a key position, so that
``tests/test_i18n.py`` can check that every key exists and none is dead: the first argument
of ``t(...)`` (what `Translator.bind` returns), ``translator.get(...)`` or aiogram's ``_`` /
``__``; a ``key=`` / ``*_key=`` argument; or a ``key`` / ``*_key`` assignment::

    t("error.photo.corrupt")
    translator.get("error.photo.too_large", locale, limit_mb=20)
    message_key = "error.generic"

Keys built at run time (``f"error.photo.{reason}"``) must belong to a family declared in
``DYNAMIC_KEY_FAMILIES`` in that test, with the members the family must have.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

if TYPE_CHECKING:
    from aiogram.utils.i18n import I18n

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).with_name("locales")
DOMAIN = "gridbot"
DEFAULT_LOCALE = "zh_CN"


class CatalogError(RuntimeError):
    """A catalog that cannot be compiled or loaded; names the file."""


def compile_catalogs(locales_dir: Path = LOCALES_DIR, *, domain: str = DOMAIN) -> None:
    """Compile each ``<locale>/LC_MESSAGES/<domain>.po`` whose ``.mo`` is missing or older.

    Safe to call from several processes at once: each writes a private temporary file and
    renames it over the ``.mo``, so readers see either the old or the new catalog, whole.
    """
    for po_path in sorted(Path(locales_dir).glob(f"*/LC_MESSAGES/{domain}.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime_ns > po_path.stat().st_mtime_ns:
            continue
        locale = po_path.parent.parent.name
        try:
            with po_path.open("rb") as fh:
                catalog = read_po(fh, locale=locale, domain=domain, abort_invalid=True)
        except Exception as exc:  # Babel raises PoFileError, ValueError, UnknownLocaleError...
            raise CatalogError(f"cannot read {po_path}: {exc}") from exc
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        try:
            _write_atomically(mo_path, buffer.getvalue())
        except OSError as exc:
            if mo_path.exists():
                # A read-only install with a stale catalog still talks, just not the newest text.
                log.warning("cannot refresh %s (%s); using the compiled catalog", mo_path, exc)
                continue
            raise CatalogError(
                f"cannot write {mo_path}: {exc}; compile catalogs where they are writable"
            ) from exc
        log.info("compiled %s", mo_path)


class Translator:
    """Looks up catalog messages by key and locale, falling back to zh_CN, then to the key.

    Parameters are inserted with `str.format` and are NOT escaped: catalog text is Telegram
    HTML, so the renderer must `html.escape` anything a user typed before passing it here.
    Values are inserted verbatim, so braces or markup in them are never re-interpreted.
    """

    def __init__(
        self,
        locales_dir: Path = LOCALES_DIR,
        *,
        default_locale: str = DEFAULT_LOCALE,
        domain: str = DOMAIN,
    ) -> None:
        self.locales_dir = Path(locales_dir)
        self.default_locale = default_locale
        self.domain = domain
        compile_catalogs(self.locales_dir, domain=domain)
        self._messages = self._load()
        if default_locale not in self._messages:
            raise CatalogError(f"no {domain}.po for the default locale {default_locale!r}")
        self._by_name = {locale.lower(): locale for locale in self._messages}
        self._by_language: dict[str, str] = {}
        for locale in self.locales:  # default first, so it wins its language ("zh" → zh_CN)
            self._by_language.setdefault(locale.split("_")[0].lower(), locale)
        self._reported: set[tuple[str, str]] = set()

    @property
    def locales(self) -> tuple[str, ...]:
        """Available locales, the default first."""
        others = sorted(locale for locale in self._messages if locale != self.default_locale)
        return (self.default_locale, *others)

    def get(self, key: str, locale: str, /, **params: Any) -> str:
        """The message `key` in `locale`, with `params` filled in."""
        if locale not in self._messages:
            locale = self.normalise_locale(locale)
        template = self._messages[locale].get(key)
        if template is None:
            self._report_missing(key, locale)
            template = self._messages[self.default_locale].get(key)
            if template is None:
                return key
        return self._format(key, template, params)

    def bind(self, locale: str) -> Callable[..., str]:
        """A ``t(key, **params)`` for one reader, as injected into handlers."""
        locale = locale if locale in self._messages else self.normalise_locale(locale)

        def t(key: str, /, **params: Any) -> str:
            return self.get(key, locale, **params)

        return t

    def normalise_locale(self, language_code: str | None) -> str:
        """Map Telegram's ``language_code`` ("zh-hans", "en-GB", None...) to a catalog locale.

        Any Chinese variant reads the zh_CN catalog; anything unknown gets the default.
        """
        if not language_code:
            return self.default_locale
        code = language_code.strip().replace("-", "_").lower()
        if code in self._by_name:
            return self._by_name[code]
        return self._by_language.get(code.split("_")[0], self.default_locale)

    def messages(self, locale: str) -> Mapping[str, str]:
        """All compiled messages of one locale (key → text), e.g. for a completeness check."""
        return dict(self._messages[locale])

    def aiogram_i18n(self) -> I18n:
        """aiogram's I18n over the same catalogs, for its middleware and lazy ``__``.

        Unlike `get`, aiogram returns the key itself when a locale lacks it (no zh_CN step).
        """
        from aiogram.utils.i18n import I18n

        return I18n(path=self.locales_dir, default_locale=self.default_locale, domain=self.domain)

    def _load(self) -> dict[str, dict[str, str]]:
        messages: dict[str, dict[str, str]] = {}
        for mo_path in sorted(self.locales_dir.glob(f"*/LC_MESSAGES/{self.domain}.mo")):
            with mo_path.open("rb") as fh:
                catalog = read_mo(fh)
            # Plural entries (tuple ids) are not used: keys are whole sentences per locale.
            messages[mo_path.parent.parent.name] = {
                message.id: message.string
                for message in catalog
                if isinstance(message.id, str)
                and message.id
                and isinstance(message.string, str)
                and message.string
            }
        return messages

    def _report_missing(self, key: str, locale: str) -> None:
        # Once per key and locale: a missing text must be noticed, not flood the log.
        if (key, locale) not in self._reported:
            self._reported.add((key, locale))
            log.warning("message %r is missing in locale %s", key, locale)

    def _format(self, key: str, template: str, params: Mapping[str, Any]) -> str:
        try:
            return template.format_map(_KeepMissing(key, params))
        except (ValueError, IndexError, AttributeError, KeyError):
            # A broken catalog entry shows its raw text rather than leaving the user unanswered.
            log.exception("cannot format message %r", key)
            return template


class _KeepMissing(dict[str, Any]):
    """Leaves ``{name}`` in place (and logs) when the caller forgot a parameter."""

    def __init__(self, key: str, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self._key = key

    def __missing__(self, name: str) -> str:
        log.warning("message %r: no value for {%s}", self._key, name)
        return "{" + name + "}"


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp_name, 0o644)  # readable like the .po it came from
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
