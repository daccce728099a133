"""A local Telegram Bot API emulator: run the real aiogram bot against it and play its users."""

from bot.emulator.players import Group, User
from bot.emulator.records import (
    ApiError,
    BotMessage,
    EmulatorEvent,
    EmulatorTimeout,
    MessageRef,
)
from bot.emulator.server import BotAPIEmulator

__all__ = [
    "ApiError",
    "BotAPIEmulator",
    "BotMessage",
    "EmulatorEvent",
    "EmulatorTimeout",
    "Group",
    "MessageRef",
    "User",
]
