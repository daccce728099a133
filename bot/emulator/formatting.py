"""Telegram's HTML parse_mode, as the Bot API server applies it: plain text plus entities.

The grammar and error messages follow tdlib's HTML parser so a bot's formatting bugs show up
here exactly as they would in production (with one stricter, documented exception: a bare "&").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SUPPORTED_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins",
        "tg-spoiler", "tg-emoji", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip

_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#(?:x([0-9a-fA-F]{1,8})|([0-9]{1,10}))|([a-zA-Z]{1,10}));")
_NAME_TOKEN_RE = re.compile(r"[A-Za-z0-9.\-]*")
_SPACE = " \t\r\n\f\v"


class EntityParseError(ValueError):
    """The text cannot be parsed; ``str(error)`` is Telegram's description after the prefix."""


@dataclass(frozen=True, slots=True)
class ParsedText:
    text: str
    entities: list[dict[str, Any]]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode an HTML entity starting at ``pos`` ("&"); return (character, end) or None."""
    match = _ENTITY_RE.match(text, pos)
    if match is None:
        return None
    hex_code, dec_code, name = match.groups()
    if name is not None:
        char = _NAMED_ENTITIES.get(name)
        return None if char is None else (char, match.end())
    code = int(hex_code, 16) if hex_code is not None else int(dec_code)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


def parse_html(source: str, *, strict_ampersand: bool = True) -> ParsedText:
    """Parse Telegram HTML into plain text and entities, or raise :class:`EntityParseError`.

    ``strict_ampersand`` rejects an "&" that starts no entity. Telegram itself keeps such an
    ampersand as text, but a bot that leaves one unescaped has usually forgotten to escape
    user text, which breaks on the first "<" a user types; the emulator reports it early.
    """
    out: list[str] = []
    out_utf16 = 0
    entities: list[dict[str, Any]] = []
    # open tags: (tag name, argument, utf16 offset where the entity starts, byte offset of tag)
    stack: list[tuple[str, str, int]] = []
    i = 0
    size = len(source)
    while i < size:
        ch = source[i]
        if ch == "&":
            decoded = _decode_entity(source, i)
            if decoded is not None:
                char, i = decoded
                out.append(char)
                out_utf16 += 2 if ord(char) > 0xFFFF else 1
                continue
            if strict_ampersand:
                raise EntityParseError(
                    f'Unescaped "&" at byte offset {_byte_offset(source, i)}; '
                    "write &amp; (emulator strict mode)"
                )
        if ch != "<":
            out.append(ch)
            out_utf16 += 2 if ord(ch) > 0xFFFF else 1
            i += 1
            continue
        begin = i
        begin_byte = _byte_offset(source, begin)
        i += 1
        if i < size and source[i] == "/":
            i = _close_tag(source, i, begin, begin_byte, stack, entities, out_utf16)
            continue
        while i < size and source[i] not in _SPACE and source[i] != ">":
            i += 1
        if i >= size:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
        tag = source[begin + 1 : i].lower()
        if tag not in SUPPORTED_TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin_byte}')
        argument, i = _read_attributes(source, i, tag, begin_byte)
        if tag == "span" and argument != "spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {begin_byte}'
            )
        stack.append((tag, argument, out_utf16))
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText("".join(out), entities)


def _read_attributes(source: str, i: int, tag: str, begin_byte: int) -> tuple[str, int]:
    """Read a start tag's attributes from ``i``; return (entity argument, index after ">")."""
    size = len(source)
    argument = ""
    while i < size and source[i] != ">":
        while i < size and source[i] in _SPACE:
            i += 1
        if i >= size:
            break
        if source[i] == ">":
            break
        name_start = i
        while i < size and source[i] not in _SPACE and source[i] not in "=>":
            i += 1
        name = source[name_start:i]
        if not name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {begin_byte}'
            )
        while i < size and source[i] in _SPACE:
            i += 1
        if i >= size or source[i] != "=":
            if tag == "blockquote" and name == "expandable":
                argument = "1"
                continue
            raise EntityParseError(
                "Expected equal sign in declaration of an attribute of the tag "
                f'"{tag}" at byte offset {begin_byte}'
            )
        i += 1
        while i < size and source[i] in _SPACE:
            i += 1
        if i >= size:
            raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin_byte}')
        if source[i] not in "'\"":
            token = _NAME_TOKEN_RE.match(source, i)
            assert token is not None  # the pattern matches the empty string
            value = token.group().lower()
            i = token.end()
            if i >= size or (source[i] not in _SPACE and source[i] != ">"):
                raise EntityParseError(
                    f"Unexpected end of name token at byte offset {_byte_offset(source, i)}"
                )
        else:
            quote = source[i]
            i += 1
            chars: list[str] = []
            while i < size and source[i] != quote:
                if source[i] == "&" and (decoded := _decode_entity(source, i)) is not None:
                    chars.append(decoded[0])
                    i = decoded[1]
                    continue
                chars.append(source[i])
                i += 1
            value = "".join(chars)
            i += 1
        if i >= size:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
        if tag == "a" and name == "href":
            argument = value
        elif tag in ("code", "pre") and name == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif tag == "span" and name == "class" and value.startswith("tg-"):
            argument = value[len("tg-") :]
        elif tag == "tg-emoji" and name == "emoji-id":
            argument = value
    if i >= size:
        raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
    return argument, i + 1


def _close_tag(
    source: str,
    i: int,
    begin: int,
    begin_byte: int,
    stack: list[tuple[str, str, int]],
    entities: list[dict[str, Any]],
    out_utf16: int,
) -> int:
    """Handle "</tag>" with ``i`` at the "/"; return the index after ">"."""
    size = len(source)
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {begin_byte}")
    i += 1
    while i < size and source[i] not in _SPACE and source[i] != ">":
        i += 1
    end_name = source[begin + 2 : i].lower()
    while i < size and source[i] in _SPACE:
        i += 1
    if i >= size or source[i] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {begin_byte}")
    tag, argument, offset = stack.pop()
    if end_name and end_name != tag:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {begin_byte}, expected "</{tag}>", '
            f'found "</{end_name}>"'
        )
    length = out_utf16 - offset
    if length > 0:
        entity: dict[str, Any] = {"type": _ENTITY_TYPES[tag], "offset": offset, "length": length}
        if tag == "a":
            entity["url"] = argument
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = argument
        elif tag in ("pre", "code") and argument:
            entity["type"] = "pre"
            entity["language"] = argument
        elif tag == "blockquote" and argument:
            entity["type"] = "expandable_blockquote"
        if tag == "a" and not argument:
            return i + 1  # Telegram drops links without a usable address
        entities.append(entity)
    return i + 1


def trim(parsed: ParsedText) -> ParsedText:
    """Strip leading/trailing whitespace like Telegram does, keeping entities aligned."""
    text = parsed.text
    stripped_left = text.lstrip()
    shift = utf16_len(text[: len(text) - len(stripped_left)])
    result = stripped_left.rstrip()
    total = utf16_len(result)
    entities: list[dict[str, Any]] = []
    for entity in parsed.entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, total)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return ParsedText(result, entities)


def command_entities(text: str) -> list[dict[str, Any]]:
    """A ``bot_command`` entity for a leading "/command", as clients attach to it."""
    if not text.startswith("/"):
        return []
    match = re.match(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?", text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group())}]
