"""A bare aiogram echo bot: the yardstick for bench/telegram_throughput.py. Long polling, or,
given a port, a webhook served by aiogram's own aiohttp handler (answered at once, handled in
the background, as Tadamon's webhook is).

    python bench/echo_bot.py TOKEN API_BASE [WEBHOOK_PORT]
"""

from __future__ import annotations

import asyncio
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

dispatcher = Dispatcher()


@dispatcher.message()
async def echo(message: Message) -> None:
    await message.answer(message.text or "?")


async def polling(bot: Bot) -> None:
    await dispatcher.start_polling(bot, handle_signals=True, polling_timeout=25)


async def webhook(bot: Bot, port: int) -> None:
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot).register(app, path="/webhook")
    setup_application(app, dispatcher, bot=bot)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await bot.set_webhook(f"http://127.0.0.1:{port}/webhook")
    await asyncio.Event().wait()


async def main(token: str, base: str, port: int | None) -> None:
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    await (polling(bot) if port is None else webhook(bot, port))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None))
