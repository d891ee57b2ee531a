"""The `tadamon` console script, run as operators run it: exit status, output, one-line errors.
Every command runs as the real console script in at least one test here (`fresh=True`, and
`tadamon run` in its own process); the other runs fork a warm process (tests/commands.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import sample_catalogue
from tests import commands
from tests.conftest import TADAMON, cli_env
from tests.servers import free_port

DATA = Path(__file__).with_name("data")
COUNTS = re.compile(r"^imported: (fair \S+: \d+ categories, \d+ stands, \d+ exhibitors, "
                    r"\d+ workshops, \d+ reminders, \d+ info answers, \d+ places) "
                    r"\(created (\d+), updated (\d+), removed (\d+)\)$")


@dataclass
class Done:
    """How one run of the console script ended."""

    returncode: int
    stdout: str
    stderr: str


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The caller's environment without any TADAMON_ variable, a database in tmp_path."""
    return cli_env(**{"TADAMON_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db",
                      **settings})


def tadamon_all(tmp_path: Path, *runs: tuple[tuple[str | Path, ...], dict[str, str]],
                fresh: bool = False) -> list[Done]:
    """Run commands in tmp_path, several side by side; wait for them all. Each runs in a
    process forked from a warm one (tests/commands.py); `fresh=True`: the console script."""
    started = [commands.start(*args, env=environment(tmp_path, **settings), cwd=tmp_path,
                              fresh=fresh)
               for args, settings in runs]
    return [Done(done.returncode, *done.text())
            for done in (running.wait(timeout=60) for running in started)]


def tadamon(tmp_path: Path, *args: str | Path, fresh: bool = False, **settings: str) -> Done:
    """Run one command in tmp_path and wait for it."""
    return tadamon_all(tmp_path, (args, settings), fresh=fresh)[0]


def stored(tmp_path: Path, table: str, database: str = "x.db") -> int:
    with contextlib.closing(sqlite3.connect(tmp_path / database)) as connection:
        count: int = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database the sample fair was imported into by `tadamon import`, once for the module."""
    folder = tmp_path_factory.mktemp("imported")
    done = tadamon(folder, "import", sample_catalogue())
    assert done.returncode == 0, done.stderr
    return folder / "x.db"


@pytest.fixture
def sample_db(tmp_path: Path, imported: Path) -> Path:
    """A copy of that database as the test's x.db, for commands run after an import."""
    return Path(shutil.copy(imported, tmp_path / "x.db"))


def test_import_twice_prints_the_same_counts(tmp_path: Path) -> None:
    lines = []
    for fresh in (True, False):
        done = tadamon(tmp_path, "import", sample_catalogue(), fresh=fresh)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        lines.append(done.stdout.strip())
    first, second = (COUNTS.match(line) for line in lines)
    assert first is not None and second is not None, lines
    assert first.group(1) == second.group(1)
    assert first.group(1).startswith("fair khouribga-ess-2026: 5 categories, 120 stands, ")
    assert first.group(1).endswith(" exhibitors, 16 workshops, 4 reminders, 9 info answers, "
                                   "8 places")
    assert int(first.group(2)) > 245
    assert second.groups()[1:] == ("0", "0", "0")
    assert stored(tmp_path, "stands") == 120


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    broken = DATA / "unknown-stand.yaml"
    unknown_stand = 'tadamon: unknown-stand.yaml: exhibitors[1].stand: unknown stand "Z9"'
    cases: list[tuple[tuple[str | Path, ...], str]] = [
        (("import", broken), unknown_stand),
        (("import", broken, "--dry-run"), unknown_stand),
        (("import", DATA / "bad" / "workshops.csv", "--dry-run"),
         "tadamon: workshops.csv:4: capacity must be a whole number"),
        (("import", "missing.yaml", "--dry-run"), "tadamon: missing.yaml: no such file"),
    ]
    results = tadamon_all(tmp_path, *(
        (args, {"TADAMON_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/{index}.db"})
        for index, (args, _) in enumerate(cases)))
    for (args, message), done in zip(cases, results, strict=True):
        assert (done.returncode, done.stderr.splitlines(), done.stdout) == (2, [message], ""), args
    assert stored(tmp_path, "fairs", "0.db") == 0


def test_dry_run_stores_nothing(tmp_path: Path) -> None:
    # the start-up catalogue is not loaded by an import either
    done = tadamon(tmp_path, "import", sample_catalogue(), "--dry-run",
                   TADAMON_CATALOGUE=str(sample_catalogue()))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("valid (dry run, nothing stored): fair khouribga-ess-2026: ")
    assert "120 stands" in done.stdout
    assert re.search(r"\(created [1-9]\d*, updated 0, removed 0\)$", done.stdout.strip())
    for table in ("fairs", "stands", "exhibitors", "workshops"):
        assert stored(tmp_path, table) == 0, table


def test_bad_setting_stops_start_up(tmp_path: Path) -> None:
    settings = [("TADAMON_HTTP_PORT", "eighty"), ("TADAMON_DATABASE_URL", "mysql://x"),
                ("TADAMON_ORGANIZERS", "bad"), ("TADAMON_HTTP_PORT", "99999"),
                ("TADAMON_ORGANIZERS", "telegram:1,web:session-boss"),
                ("TADAMON_QUIET_HOURS", "22h-8h")]
    runs: list[tuple[tuple[str | Path, ...], dict[str, str]]] = [
        (("run",), {name: value}) for name, value in settings]
    runs.append((("import", sample_catalogue()), {"TADAMON_ORGANIZERS": "telegram"}))
    runs.append((("worker",), {"TADAMON_ORGANIZERS": "web:session-boss"}))
    runs.append((("organizer", "list"), {"TADAMON_ORGANIZERS": "web:session-boss"}))
    results = tadamon_all(tmp_path, *runs)
    for (_, setting), done in zip(runs, results, strict=True):
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"tadamon: {next(iter(setting))}: "), lines
    assert not (tmp_path / "x.db").exists()


def test_db_upgrade_twice(tmp_path: Path) -> None:
    unusable = f"sqlite+aiosqlite:///{tmp_path}/no/such/folder/x.db"
    first, broken = tadamon_all(tmp_path, (("db", "upgrade"), {}),
                                (("db", "upgrade"), {"TADAMON_DATABASE_URL": unusable}),
                                fresh=True)
    second = tadamon(tmp_path, "db", "upgrade")
    for done in (first, second):
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "database is up to date"
    assert stored(tmp_path, "fairs") == 0
    assert broken.returncode == 1
    assert broken.stderr.splitlines() == [
        "tadamon: database error: (sqlite3.OperationalError) unable to open database file"]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    except OSError:
        return 0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`tadamon run` on a free port; its log in tmp_path/run.log; stopped if the test fails."""
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [TADAMON, "run"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err,
            env=environment(tmp_path, TADAMON_HTTP_PORT=str(port)))
    try:
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_run_serves_the_web_chat_and_stops_on_sigterm(
    server: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, base, log = server
    # A liveness wait, not a timing: start-up migrates, loads the sample fair and trains the
    # classifier, and a shared machine may be slow; a process that died fails at once.
    deadline = time.monotonic() + 180
    while _get(f"{base}/healthz") != 200:
        assert process.poll() is None, log.read_text(encoding="utf-8")
        assert time.monotonic() < deadline, "no answer on /healthz within 180 s"
        time.sleep(0.2)

    issue = urllib.request.Request(f"{base}/chat/api/sessions", method="POST", data=b"{}",
                                   headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(issue, timeout=10) as response:
        assert response.status == 201
        session = json.loads(response.read())["session"]
    request = urllib.request.Request(
        f"{base}/chat/api/messages", method="POST",
        data=json.dumps({"session": session, "text": "bonjour"}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        body = json.loads(response.read())
    assert body["lang"] == "fr"
    assert "Bienvenue" in "\n".join(reply["text"] for reply in body["replies"])

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    text = log.read_text(encoding="utf-8")
    assert "web chat: on" in text
    assert re.search(r"telegram: off .*TADAMON_TELEGRAM_TOKEN", text), text
    assert re.search(r"whatsapp: off .*TADAMON_WHATSAPP_TOKEN", text), text
    assert "Traceback" not in text


def test_broadcast_bad_input_exits_2_with_one_line(tmp_path: Path, sample_db: Path) -> None:
    send = ("broadcast", "--yes", "--audience", "all")
    texts = ("--text-fr", "Le salon ferme à 20:00.", "--text-ar", "يغلق المعرض على الساعة 20:00.")
    cases: list[tuple[tuple[str, ...], str]] = [
        (("broadcast", "status", "42"), "tadamon: broadcast 42: no such broadcast"),
        (("broadcast", "cancel", "42"), "tadamon: broadcast 42: no such broadcast"),
        (("broadcast", "status", "abc"),
         "tadamon: 'abc' is not a broadcast id (the number `tadamon broadcast` printed)"),
        (("broadcast", "--yes", "--audience", "workshop:no-such-workshop", *texts),
         "tadamon: --audience: the fair has no workshop 'no-such-workshop'"),
        ((*send, "--at", "2020-01-01T09:00", *texts), "tadamon: --at: '2020-01-01T09:00' is "
         "in the past (it is {now} in Africa/Casablanca; a minute of slack is allowed): leave "
         "--at out to send now"),
        ((*send, "--text-fr", "Fermeture. " * 100, "--text-ar", "يغلق المعرض."),
         "tadamon: --text-fr: 1099 characters, a broadcast holds at most 1000 (what a "
         "WhatsApp template carries)"),
        ((*send, "--text-fr", "Fermeture.", "--text-ar", "يغلق المعرض. " * 100),
         "tadamon: --text-ar: 1299 characters, a broadcast holds at most 1000 (what a "
         "WhatsApp template carries)"),
    ]
    results = tadamon_all(tmp_path, *((args, {}) for args, _ in cases))
    for (args, message), done in zip(cases, results, strict=True):
        lines = done.stderr.splitlines()
        assert (done.returncode, len(lines), done.stdout) == (2, 1, ""), (args, done)
        if "{now}" in message:
            before, _, after = message.partition("{now}")
            assert lines[0].startswith(before) and lines[0].endswith(after), lines
        else:
            assert lines == [message], args
    assert stored(tmp_path, "broadcasts") == 0
    # a minute ago is still now; a real broadcast's status and cancel work
    moment = (dt.datetime.now(ZoneInfo("Africa/Casablanca")) - dt.timedelta(seconds=30))
    done = tadamon(tmp_path, *send, "--at", moment.strftime("%Y-%m-%dT%H:%M:%S"), *texts)
    assert done.returncode == 0, done.stderr
    broadcast_id = done.stdout.strip()
    status = tadamon(tmp_path, "broadcast", "status", broadcast_id)
    assert status.returncode == 0 and status.stdout.startswith(f"broadcast {broadcast_id}: ")
    cancel = tadamon(tmp_path, "broadcast", "cancel", broadcast_id)
    assert cancel.returncode == 0, cancel.stderr


def test_broadcast_at_is_read_in_the_fairs_time_zone(tmp_path: Path) -> None:
    """The sample fair is in Casablanca; TADAMON_TIMEZONE says Tokyo, eight hours away."""
    tokyo = {"TADAMON_TIMEZONE": "Asia/Tokyo"}
    assert tadamon(tmp_path, "import", sample_catalogue(), **tokyo).returncode == 0
    fair_zone = ZoneInfo("Africa/Casablanca")
    day = dt.datetime.now(fair_zone).date() + dt.timedelta(days=2)
    at = dt.datetime.combine(day, dt.time(9, 0))
    texts = ("--text-fr", "Le salon ouvre à 9:00.", "--text-ar", "يفتح المعرض على الساعة 9:00.")
    done = tadamon(tmp_path, "broadcast", "--yes", "--audience", "all", "--at",
                   at.strftime("%Y-%m-%dT%H:%M"), *texts, **tokyo)
    assert done.returncode == 0, done.stderr
    with contextlib.closing(sqlite3.connect(tmp_path / "x.db")) as connection:
        [(scheduled,)] = connection.execute("SELECT scheduled_at FROM broadcasts").fetchall()
    stored_at = dt.datetime.fromisoformat(scheduled).replace(tzinfo=dt.UTC)
    assert stored_at == at.replace(tzinfo=fair_zone).astimezone(dt.UTC)
    # and a time gone by is told in the fair's zone too
    past = tadamon(tmp_path, "broadcast", "--yes", "--audience", "all", "--at",
                   "2020-01-01T09:00", *texts, **tokyo)
    assert past.returncode == 2 and " in Africa/Casablanca; " in past.stderr, past.stderr


def test_read_only_commands_need_no_redis(tmp_path: Path, sample_db: Path) -> None:
    closed = {"TADAMON_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens
    added = tadamon(tmp_path, "organizer", "add", "telegram:42", **closed)
    assert (added.returncode, added.stdout, added.stderr) == (0, "telegram:42 is an organizer\n",
                                                              "")
    queued = tadamon(tmp_path, "broadcast", "--yes", "--audience", "all", "--text-fr",
                     "Le salon ferme à 20:00.", "--text-ar", "يغلق المعرض على الساعة 20:00.",
                     **closed)
    assert queued.returncode == 0, queued.stderr
    assert "redis" not in queued.stderr.lower()
    broadcast_id = queued.stdout.strip()
    runs: list[tuple[tuple[str | Path, ...], dict[str, str]]] = [
        (("export", "contacts", "--out", "contacts.csv"), closed),
        (("organizer", "list"), closed),
        (("broadcast", "status", broadcast_id), closed),
        (("coop-codes",), {**closed, "TADAMON_PUBLIC_URL": "https://salon.example.ma"}),
        (("report", "--out", "report"), closed),
    ]
    # The console script itself, five at once (the other runs fork a warm process).
    exported, organizers, status, codes, report = tadamon_all(tmp_path, *runs, fresh=True)
    for (args, _), done in zip(runs, (exported, organizers, status, codes, report), strict=True):
        assert (done.returncode, done.stderr) == (0, ""), args
    assert exported.stdout == "1 contacts written to contacts.csv\n"
    contacts = (tmp_path / "contacts.csv").read_text(encoding="utf-8").splitlines()
    assert [line.split(",")[:2] for line in contacts[1:]] == [["telegram", "42"]]
    assert organizers.stdout == "telegram:42\ttadamon organizer add\n"
    assert status.stdout.startswith(f"broadcast {broadcast_id}: ")
    assert codes.stdout.splitlines()[0].startswith("exhibitor_id,")
    assert "https://salon.example.ma/?start=coop_" in codes.stdout
    assert report.stdout.startswith("report of khouribga-ess-2026: ")
