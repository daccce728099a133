"""No user-facing literal in handlers: everything a person reads comes from the catalogs.

A string in handlers/ that holds Chinese, or reads like words of prose, is a message
written inline. Docstrings, log lines and catalog keys are not user-facing and pass.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = sorted((ROOT / "handlers").glob("*.py"))
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")
PROSE = re.compile(r"[A-Za-z]{2,}[,.!?]? +[A-Za-z]{2,}")  # two words and a space
LOGGING = frozenset({"debug", "info", "warning", "error", "exception", "critical"})


def user_facing_literals(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            first = body[0].value
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                skip.add(id(first))  # a docstring
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOGGING
        ):
            skip.update(id(n) for arg in node.args for n in ast.walk(arg))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
            if CJK.search(text) or PROSE.search(text):
                found.append((node.lineno, text))
    return found


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.name)
def test_handlers_hold_no_user_facing_text(path: Path) -> None:
    assert user_facing_literals(path.read_text(encoding="utf-8")) == []


def test_the_scanner_finds_inline_messages() -> None:
    source = '''
"""A module docstring with several words."""
import logging
log = logging.getLogger(__name__)

async def handler(message):
    """Docstring, fine."""
    log.info("handled an update from %s", message.chat.id)
    await message.answer("请先发照片")
    await message.answer(f"Please send {1} photo")
    key = "chief.need_after_photo"
'''
    found = [text for _, text in user_facing_literals(source)]
    assert found == ["请先发照片", "Please send "]
