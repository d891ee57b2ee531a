"""What a serving process imports at start: only what serving needs. Alembic (with Mako and
Pygments, about 11 MB) only when the schema is behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from storage import database
from tests.conftest import TADAMON, DatabaseFactory, cli_env
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
# `python -X importtime` names each module imported, on standard error.
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)
# A fresh interpreter: pytest's own has imported Alembic already.
UPGRADE = r'''
import asyncio, json, sys
from storage import database

async def main():
    engine = database.create_engine(sys.argv[1])
    try:
        await database.upgrade(engine)
        async with engine.connect() as connection:
            rows = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            return [row[0] for row in rows]
    finally:
        await engine.dispose()

stored = asyncio.run(main())
print(json.dumps({"stored": stored, "alembic": "alembic" in sys.modules}))
'''


def _upgrade_in_a_new_process(url: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", UPGRADE, url], cwd=ROOT, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_the_head_read_from_the_files_is_alembics() -> None:
    """The head revision found without Alembic is the one Alembic finds."""
    config = database.alembic_config()
    assert database.head_revision() == ScriptDirectory.from_config(config).get_current_head()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_current_schema_is_not_migrated_and_alembic_not_imported(
    kind: str, make_database: DatabaseFactory
) -> None:
    """A new database is migrated to the head (Alembic imported); at the next start it is
    current: one query, Alembic left unimported."""
    url = await make_database(kind, sample=False, migrated=False)
    first = _upgrade_in_a_new_process(url)
    head = database.head_revision()
    assert first == {"stored": [head], "alembic": True}

    again = _upgrade_in_a_new_process(url)
    assert again == {"stored": [head], "alembic": False}


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _imports_of_run(folder: Path, env: dict[str, str]) -> set[str]:
    """The modules a `tadamon run` imports until it serves (it is then stopped)."""
    port = free_port()
    log = folder / "run.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [TADAMON, "run", "--no-worker"], cwd=folder, stdout=subprocess.DEVNULL, stderr=err,
            env={**env, "TADAMON_HTTP_PORT": str(port), "PYTHONPROFILEIMPORTTIME": "1"})
    try:
        # A liveness wait, not a timing: a process that died fails at once.
        deadline = time.monotonic() + 180
        while _status(f"http://127.0.0.1:{port}/healthz") != 200:
            assert process.poll() is None, log.read_text(encoding="utf-8")[-3000:]
            assert time.monotonic() < deadline, "no answer on /healthz within 180 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return set(IMPORTED.findall(log.read_text(encoding="utf-8")))


def test_tadamon_run_imports_no_migration_machinery(tmp_path: Path) -> None:
    """`tadamon run` on a new database (migrated in a child process), then again on the
    migrated one: both serve without importing Alembic, Mako or Pygments, and the database
    is at the head revision."""
    env = cli_env(TADAMON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    for _start in ("first", "again"):
        imported = _imports_of_run(tmp_path, env)

        assert "aiohttp.web" in imported  # the log does list the imports
        heavy = {name for name in imported
                 if name.split(".")[0] in ("alembic", "mako", "pygments")}
        assert heavy == set()
        with contextlib.closing(sqlite3.connect(tmp_path / "x.db")) as connection:
            stored = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        assert stored == [(database.head_revision(),)]
