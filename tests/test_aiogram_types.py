"""aiogram's Telegram types are built when first used (bot/channels/aiogram_types.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: which import comes first decides, and pytest has imported aiogram.
SCRIPT = r'''
import asyncio, json
import bot.channels.telegram
from aiogram import methods
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

async def main():
    report = {"message_built_at_import": Message.__pydantic_complete__,
              "update_built_at_import": Update.__pydantic_complete__}
    update = Update.model_validate({"update_id": 7, "message": {
        "message_id": 3, "date": 0, "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": False, "first_name": "Amina"}, "text": "A12"}})
    report["text"] = update.message.text
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="Ateliers", callback_data="m:ws")]])
    report["sent"] = json.loads(SendMessage(chat_id=5, text="Bonjour", reply_markup=keyboard)
                                .model_dump_json(exclude_none=True, exclude_defaults=True))
    failed = []
    for name in methods.__all__:  # each builds the types it nests (most of them)
        model = getattr(methods, name)
        if name == "TelegramMethod" or not hasattr(model, "__returning__"):
            continue
        try:
            model.__pydantic_validator__.validate_python
            model.__pydantic_serializer__.to_python
            model.__pydantic_core_schema__  # noqa: B018
            methods.Response[model.__returning__].__pydantic_validator__.validate_python
        except Exception as exc:
            failed.append(f"{name}: {exc}")
    report["failed"] = failed
    print(json.dumps(report))

asyncio.run(main())
'''


def test_aiogram_types_are_built_when_first_used_and_all_of_them_build() -> None:
    """Importing the Telegram channel builds no validator but the update's; the others are
    built on first use, every Bot API method and its response alike, and parse and serialise
    as usual."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    assert report["update_built_at_import"] is True
    assert report["message_built_at_import"] is False
    assert report["text"] == "A12"
    assert report["sent"] == {"chat_id": 5, "text": "Bonjour", "reply_markup": {
        "inline_keyboard": [[{"text": "Ateliers", "callback_data": "m:ws"}]]}}
    assert report["failed"] == []
