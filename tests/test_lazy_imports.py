"""What only some replies need is imported by the first of them, not by every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A fresh interpreter: pytest's own has imported everything already.
SCRIPT = r'''
import asyncio, json, sys
from zoneinfo import ZoneInfo
import bot.app
import bot.http
from bot.i18n import Renderer, load_translations
from handlers.messages import _, reply

renderer = Renderer(load_translations(), ZoneInfo("Africa/Casablanca"))
text = renderer.render(reply(_("Welcome to {fair}!", fair="Tadamon")), "fr").text
asyncio.run(renderer.draw_pictures([reply(_("Welcome to {fair}!", fair="Tadamon"))], "fr"))
heavy = ["PIL", "icalendar", "bot.pictures", "bot.report", "pywebpush", "py_vapid",
         "cryptography.hazmat", "jinja2", "argon2", "aiogram", "matplotlib", "openpyxl"]
print(json.dumps({"text": text, "imported": [name for name in heavy if name in sys.modules]}))
'''


def test_a_reply_without_a_picture_imports_no_drawing_and_no_web_push() -> None:
    """bot.app, the HTTP server and a text reply leave Pillow, icalendar, the report, web push
    the organizer console's templates and password hashing, aiogram (Telegram off) and the
    report's and sheets' libraries unimported (they come with the first picture, the first
    push, the first console page, the first preview or report)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout)
    assert report["text"]
    assert report["imported"] == []
