"""A bare python-telegram-bot (v22) echo bot: the second yardstick of bench/telegram_throughput.py.

Updates are handled concurrently (`concurrent_updates`), as the aiogram echo bot and Tadamon do;
PTB's default handles them one at a time, which no bot under load would keep.

    python bench/ptb_echo_bot.py TOKEN API_BASE
"""

from __future__ import annotations

import sys

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a text with the same text."""
    message = update.effective_message
    if message is not None:
        await message.reply_text(message.text or "?", do_quote=False)


def main(token: str, base: str) -> None:
    application = (Application.builder().token(token).base_url(f"{base}/bot")
                   .base_file_url(f"{base}/file/bot").concurrent_updates(True).build())
    application.add_handler(MessageHandler(filters.ALL, echo))
    application.run_polling(poll_interval=0.0, timeout=25, allowed_updates=["message"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
