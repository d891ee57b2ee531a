"""A bare aiogram echo bot: the yardstick for bench/telegram_throughput.py.

    python bench/echo_bot.py TOKEN API_BASE
"""

from __future__ import annotations

import asyncio
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

dispatcher = Dispatcher()


@dispatcher.message()
async def echo(message: Message) -> None:
    await message.answer(message.text or "?")


async def main(token: str, base: str) -> None:
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    await dispatcher.start_polling(bot, handle_signals=True, polling_timeout=25)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
