"""The wheel carries what a deployment needs: compiled catalogs, the web page, the sample fair,
the migrations and the console script."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_compiled_catalogs_and_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("tadamon-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for language in ("ar", "fr", "en"):
        assert f"locales/{language}/LC_MESSAGES/messages.mo" in names
    for expected in (
        "bot/channels/webchat.html",
        "bot/channels/webchat.js",
        "bot/channels/webchat.css",
        "bot/channels/webchat-sw.js",
        "bot/data/sample-fair.yaml",
        "storage/migrations/env.py",
        "storage/migrations/script.py.mako",
        "storage/migrations/versions/0001_initial_schema.py",
        "handlers/router.py",
        "handlers/understanding/data/lexicon.yaml",
        "handlers/understanding/data/train.csv",
        "handlers/understanding/data/glossary.yaml",
    ):
        assert expected in names
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "tadamon = bot.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
