"""The bot reads Telegram's answers without rebuilding their models after every garbage
collection (see bot/responses.py; what it saves is measured by benchmarks/load.py)."""

from __future__ import annotations

import gc
import weakref

from aiogram.methods import EditMessageText, GetFile, SendMessage, SendPhoto
from aiogram.methods.base import Response

from bot.responses import keep_response_models


def test_the_answer_models_survive_a_garbage_collection() -> None:
    keep_response_models()
    methods = (SendMessage, SendPhoto, EditMessageText, GetFile)
    models = [weakref.ref(Response[m.__returning__]) for m in methods]  # type: ignore[misc]
    gc.collect()
    assert all(model() is not None for model in models)
