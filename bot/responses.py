"""Keeps aiogram's response models alive between garbage collections.

aiogram reads every Bot API answer through ``Response[T]``, a pydantic generic model built on
first use and remembered only in pydantic's weak cache. The class sits in reference cycles,
so the next garbage collection frees it and the next call builds it again: about 3 ms for
``Response[Message]``, and 11% of the bot's event loop under load (py-spy on
benchmarks/load.py). One strong reference to each makes the cache hold.
"""

from __future__ import annotations

import functools

from aiogram import methods
from aiogram.methods.base import Response, TelegramMethod
from pydantic import BaseModel


@functools.cache
def keep_response_models() -> tuple[type[BaseModel], ...]:
    """``Response[T]`` for every Bot API method's result type, built once and held."""
    results = {
        method.__returning__
        for name in methods.__all__
        if isinstance(method := getattr(methods, name), type)
        and issubclass(method, TelegramMethod)
        and not isinstance(method.__returning__, property)  # the abstract bases
    }
    return tuple(Response[result] for result in sorted(results, key=repr))  # type: ignore[valid-type]
