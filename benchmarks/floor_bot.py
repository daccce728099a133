"""The floor for benchmarks/load.py: a bare aiogram bot doing only what any photo-report bot must
do — download the photo and reply once — on the same emulator, polling as gridbot does.

    python benchmarks/floor_bot.py --token TOKEN --api http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import io

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message


async def main(token: str, api: str) -> None:
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api)))
    dispatcher = Dispatcher()

    @dispatcher.message(F.photo)
    async def photo(message: Message) -> None:
        largest = max(message.photo or [], key=lambda size: size.width * size.height)
        found = await bot.get_file(largest.file_id)
        await bot.download_file(found.file_path or "", destination=io.BytesIO())
        await message.reply("收到")

    await dispatcher.start_polling(bot, handle_signals=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token", required=True)
    parser.add_argument("--api", required=True)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.token, arguments.api))
