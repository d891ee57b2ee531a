"""The console's workshops pages: the list, a workshop's registrants and waiting list, the
registrants' CSV, cancelling with its notices, and check-in at the door (by button, by code,
by the QR code's address), with roles, CSRF, audit and languages."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.app import App
from storage.console import AuditLog
from storage.models import (
    Contact,
    OutboxMessage,
    Registration,
    RegistrationStatus,
    Workshop,
    utcnow,
)
from storage.registrations import Outcome
from tests.console import ConsoleFactory

pytestmark = pytest.mark.timeout(180)

DATABASES = [pytest.param("sqlite"), pytest.param("postgres")]
KEY = "marketing-1"


async def workshop_id(app: App, key: str = KEY, capacity: int | None = None) -> int:
    async with app.sessions() as session, session.begin():
        if capacity is not None:
            await session.execute(update(Workshop).where(Workshop.key == key)
                                  .values(capacity=capacity))
        found = await session.scalar(select(Workshop.id).where(Workshop.key == key))
    assert found is not None
    await app.state.bump_catalogue_version()
    return found


async def person(app: App, user_id: str, channel: str = "whatsapp") -> int:
    async with app.sessions() as session, session.begin():
        contact = Contact(channel=channel, user_id=user_id, language="fr")
        session.add(contact)
        await session.flush()
        return contact.id


async def register(app: App, contact_id: int, key: str = KEY) -> Outcome:
    fair = await app.engine.catalogue.fair()
    assert fair is not None
    result = await app.engine.registrations.register(
        fair.id, contact_id, await workshop_id(app, key), utcnow())
    return result.outcome


async def registration(app: App, contact_id: int, key: str = KEY) -> Registration:
    async with app.sessions() as session:
        row = await session.scalar(
            select(Registration).join(Workshop, Workshop.id == Registration.workshop_id)
            .where(Registration.contact_id == contact_id, Workshop.key == key))
    assert row is not None
    return row


async def fill(app: App) -> dict[str, int]:
    """Marketing with 2 seats: Amina and a Telegram id that looks like a formula hold them,
    Karim waits."""
    await workshop_id(app, capacity=2)
    people = {"amina": await person(app, "212600001234"),
              "formula": await person(app, "=2+3", channel="telegram"),
              "karim": await person(app, "212600005678")}
    assert await register(app, people["amina"]) is Outcome.CONFIRMED
    assert await register(app, people["formula"]) is Outcome.CONFIRMED
    assert await register(app, people["karim"]) is Outcome.WAITLISTED
    return people


async def actions(app: App) -> list[str]:
    return [entry.action for entry in await AuditLog(app.sessions).recent()]


def result_of(page: str) -> str:
    found = re.search(r'<p id="checkin-result"[^>]*>(.*?)</p>', page, re.S)
    assert found is not None, page
    return html.unescape(found.group(1))


def row_of(page: str, registration_id: int) -> str:
    found = re.search(rf'<tr data-registration="{registration_id}">(.*?)</tr>', page, re.S)
    assert found is not None, page
    return found.group(1)


async def outbox_kinds(app: App) -> list[str]:
    async with app.sessions() as session:
        return list(await session.scalars(select(OutboxMessage.kind)))


@pytest.mark.parametrize("database", DATABASES)
async def test_the_list_and_a_workshop_with_registrants_and_waiting_list(
        make_console: ConsoleFactory, database: str) -> None:
    console = await make_console(database=database)
    people = await fill(console.app)
    status, page = await console.get("/admin/workshops")
    assert status == 200 and '<table id="workshops">' in page
    links = re.findall(r'<a class="workshop" href="(/admin/workshops/[^"]+)">([^<]+)</a>', page)
    assert ("/admin/workshops/marketing-1", "Techniques de marketing") in links
    assert [href for href, _ in links].index("/admin/workshops/coop-finance-1") < [
        href for href, _ in links].index("/admin/workshops/marketing-1")  # by start time
    marketing = page.split('href="/admin/workshops/marketing-1"')[1].split("</tr>")[0]
    assert "2 sur 2" in marketing and "Salle" in marketing

    status, page = await console.get("/admin/workshops/marketing-1")
    assert status == 200 and '<table id="registrants">' in page
    amina = await registration(console.app, people["amina"])
    karim = await registration(console.app, people["karim"])
    assert amina.checkin_code and karim.checkin_code is None  # codes go with seats only
    row = row_of(page, amina.id)
    assert "WhatsApp ···1234" in row and amina.checkin_code in row
    assert 'class="inline checkin"' in row and "confirmée" in row
    assert "212600001234" not in page  # never the whole number on the page
    waiting = page.split('<table id="waiting-list">')[1].split("</table>")[0]
    assert "WhatsApp ···5678" in waiting and f'data-registration="{karim.id}"' in waiting
    assert 'id="registrants-csv"' in page and 'id="cancel-workshop"' in page
    assert "data-confirm=" in page.split('id="cancel-workshop"')[1].split(">")[0]


@pytest.mark.parametrize("database", DATABASES)
async def test_the_registrants_csv_is_the_organizers_and_escapes_formulas(
        make_console: ConsoleFactory, database: str) -> None:
    console = await make_console(database=database)
    await fill(console.app)
    response = await console.client.get("/admin/workshops/marketing-1/registrants.csv")
    assert response.status == 200 and response.content_type == "text/csv"
    assert "registrants-marketing-1.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert list(rows[0]) == ["workshop_id", "channel", "user_id", "status", "created_at",
                             "checked_in_at"]
    assert [(row["user_id"], row["status"]) for row in rows] == [
        ("212600001234", "confirmed"), ("'=2+3", "confirmed"), ("212600005678", "waitlisted")]
    assert {row["workshop_id"] for row in rows} == {KEY}
    assert "registrants downloaded" in await actions(console.app)

    viewer = await make_console(app=console.app, login="door@fair.ma", role="viewer")
    status, page = await viewer.get("/admin/workshops/marketing-1/registrants.csv")
    assert status == 403 and "Seuls les organisateurs" in page
    status, page = await viewer.get("/admin/workshops/marketing-1")
    assert 'id="registrants-csv"' not in page and 'id="cancel-workshop"' not in page


@pytest.mark.parametrize("database", DATABASES)
async def test_check_in_by_button_by_code_and_undo(make_console: ConsoleFactory,
                                                   database: str) -> None:
    console = await make_console(database=database)
    people = await fill(console.app)
    amina = await registration(console.app, people["amina"])
    formula = await registration(console.app, people["formula"])
    assert amina.checkin_code is not None and formula.checkin_code is not None
    await console.get("/admin/workshops/marketing-1")

    status, page = await console.post("/admin/workshops/marketing-1/checkin",
                                      {"registration": str(amina.id)})
    assert status == 200
    assert "Arrivée enregistrée\u202f: WhatsApp ···1234" in result_of(page)
    assert '<span class="present">' in row_of(page, amina.id)
    assert (await registration(console.app, people["amina"])).checked_in_at is not None

    # The same person's code at the door: already in, at the time of the first check-in.
    await console.get("/admin/checkin")
    status, page = await console.post("/admin/checkin", {"code": amina.checkin_code.lower()})
    assert status == 200 and "était déjà arrivé" in result_of(page)
    assert re.search(r"à \d\d:\d\d\.", result_of(page))

    # Undo the mistaken check-in: the button comes back.
    await console.get("/admin/workshops/marketing-1")
    status, page = await console.post("/admin/workshops/marketing-1/undo",
                                      {"registration": str(amina.id)})
    assert status == 200 and "Arrivée de WhatsApp ···1234" in result_of(page)
    assert 'class="inline checkin"' in row_of(page, amina.id)
    assert (await registration(console.app, people["amina"])).checked_in_at is None

    # The QR code's address, as a camera app opens it: shown, not checked in, until confirmed.
    address = f"https://salon.example/admin/checkin?code={formula.checkin_code}"
    status, page = await console.get(f"/admin/checkin?code={formula.checkin_code}")
    assert status == 200 and 'id="checkin-preview"' in page and "Telegram ···=2+3" in page
    assert f'value="{formula.checkin_code}"' in page
    assert (await registration(console.app, people["formula"])).checked_in_at is None
    status, page = await console.post("/admin/checkin", {"code": address, "workshop": KEY})
    assert status == 200 and "Arrivée enregistrée" in result_of(page)
    assert (await registration(console.app, people["formula"])).checked_in_at is not None

    audit = await actions(console.app)
    assert audit.count("checked in") == 2 and audit.count("check-in undone") == 1


@pytest.mark.parametrize("database", DATABASES)
async def test_codes_without_a_seat_are_refused(make_console: ConsoleFactory,
                                                database: str) -> None:
    console = await make_console(database=database)
    people = await fill(console.app)
    amina = await registration(console.app, people["amina"])
    code = amina.checkin_code
    assert code is not None
    # Amina gives up her seat (it goes to Karim as an offer): her code no longer lets her in.
    fair = await console.app.engine.catalogue.fair()
    assert fair is not None
    await console.app.engine.registrations.cancel(people["amina"], amina.workshop_id, utcnow())
    await console.get("/admin/checkin")
    status, page = await console.post("/admin/checkin", {"code": code})
    assert status == 200 and "a annulé son inscription" in result_of(page)
    # She registers again, the workshop full: on the waiting list, with the same code, refused.
    assert await register(console.app, people["amina"]) is Outcome.WAITLISTED
    status, page = await console.post("/admin/checkin", {"code": code})
    assert "est sur la liste d'attente" in result_of(page) and 'class="error"' in page
    assert (await registration(console.app, people["amina"])).checked_in_at is None

    # A seat at another workshop than the door's.
    other = await person(console.app, "212600009999")
    assert await register(console.app, other, "financing-1") is Outcome.CONFIRMED
    labelling = await registration(console.app, other, "financing-1")
    status, page = await console.post("/admin/checkin", {"code": labelling.checkin_code,
                                                        "workshop": KEY})
    assert "un autre atelier, «\u202fFinancement des projets\u202f»" in result_of(page)
    assert (await registration(console.app, other, "financing-1")).checked_in_at is None

    for wrong in ("ZZZZZZZZZZ", "not a code", "x" * 5000, "https://x/admin/checkin?code="):
        status, page = await console.post("/admin/checkin", {"code": wrong})
        assert status == 400 and "Aucune inscription n'a ce code" in result_of(page)
    status, page = await console.get("/admin/checkin?code=%00%ff")
    assert status == 200 and "Aucune inscription n'a ce code" in result_of(page)
    status, page = await console.post("/admin/workshops/marketing-1/checkin",
                                      {"registration": "12abc"})
    assert status == 400 and "Aucune inscription" in page
    status, page = await console.post("/admin/workshops/marketing-1/checkin",
                                      {"registration": str(labelling.id)})
    assert status == 200 and "un autre atelier" in result_of(page)  # not on this page
    assert (await registration(console.app, other, "financing-1")).checked_in_at is None
    assert "checked in" not in await actions(console.app)


@pytest.mark.parametrize("database", DATABASES)
async def test_cancel_a_workshop_tells_its_registrants_once(make_console: ConsoleFactory,
                                                            database: str) -> None:
    console = await make_console(database=database)
    await fill(console.app)
    viewer = await make_console(app=console.app, login="door@fair.ma", role="viewer")
    await viewer.get("/admin/workshops/marketing-1")
    status, page = await viewer.post("/admin/workshops/marketing-1/cancel")
    assert status == 403 and "Seuls les organisateurs" in page
    await console.get("/admin/workshops/marketing-1")
    status, page = await console.post("/admin/workshops/marketing-1/cancel", csrf=False)
    assert status == 403
    assert "workshop_cancelled" not in await outbox_kinds(console.app)

    status, page = await console.post("/admin/workshops/marketing-1/cancel")
    assert status == 200
    assert "Atelier annulé\u202f: 3 personnes seront prévenues." in page
    assert (await outbox_kinds(console.app)).count("workshop_cancelled") == 3
    assert 'id="cancel-workshop"' not in page and "cancelled-badge" in page
    assert 'class="inline checkin"' not in page  # nobody comes to a cancelled workshop
    status, page = await console.post("/admin/workshops/marketing-1/cancel")
    assert status == 200 and "déjà annulé" in page
    assert (await outbox_kinds(console.app)).count("workshop_cancelled") == 3
    assert (await actions(console.app)).count("workshop cancelled") == 1
    _status, page = await console.get("/admin/workshops")
    assert 'class="cancelled"' in page
    snapshot = await console.app.engine.catalogue.snapshot()
    assert snapshot is not None
    assert all(w.cancelled for w in snapshot.workshops if w.key == KEY)
    _status, audit = await console.get("/admin/audit")
    assert "atelier annulé" in audit


async def test_door_staff_with_a_viewer_account_check_in_but_csrf_is_needed(
        make_console: ConsoleFactory) -> None:
    console = await make_console(login="door@fair.ma", role="viewer")
    people = await fill(console.app)
    amina = await registration(console.app, people["amina"])
    signed_out = await make_console(app=console.app, login=None)
    response = await signed_out.client.get(f"/admin/checkin?code={amina.checkin_code}",
                                           allow_redirects=False)
    assert response.status == 303 and "/admin/login?next=" in response.headers["Location"]
    status, _page = await signed_out.post("/admin/checkin", {"code": amina.checkin_code},
                                          csrf=False)
    assert status == 401

    await console.get("/admin/checkin")
    status, page = await console.post("/admin/checkin", {"code": amina.checkin_code},
                                      csrf=False)
    assert status == 403 and (await registration(console.app, people["amina"])
                              ).checked_in_at is None
    status, page = await console.post("/admin/checkin", {"code": amina.checkin_code})
    assert status == 200 and "Arrivée enregistrée" in result_of(page)
    entries = await AuditLog(console.app.sessions).recent()
    assert (entries[0].actor, entries[0].action, entries[0].subject) == (
        "door@fair.ma", "checked in", KEY)


async def test_arabic_pages_are_right_to_left_and_unknown_keys_are_404(
        make_console: ConsoleFactory) -> None:
    console = await make_console()
    people = await fill(console.app)
    await console.get("/admin/language/ar?next=/admin/workshops")
    pages: dict[str, Any] = {}
    for path in ("/admin/workshops", "/admin/workshops/marketing-1", "/admin/checkin"):
        status, page = await console.get(path)
        assert status == 200 and 'dir="rtl"' in page and 'lang="ar"' in page
        pages[path] = page
    assert "تقنيات التسويق" in pages["/admin/workshops"]
    assert "\u200f\u20682\u2069 من \u20682\u2069" in pages["/admin/workshops"]
    assert "لائحة الانتظار" in pages["/admin/workshops/marketing-1"]
    assert "تسجيل الحضور عند الباب" in pages["/admin/checkin"]
    amina = await registration(console.app, people["amina"])
    status, page = await console.post("/admin/checkin", {"code": amina.checkin_code})
    assert "تم تسجيل حضور" in result_of(page) and "تقنيات التسويق" in result_of(page)

    for path in ("/admin/workshops/nope", "/admin/workshops/" + "k" * 300,
                 "/admin/workshops/nope/registrants.csv"):
        status, page = await console.get(path)
        assert status == 404 and "لا توجد هذه الورشة في هذا المعرض" in page, path
    await console.get("/admin/workshops/marketing-1")
    status, page = await console.post("/admin/workshops/nope/checkin", {"registration": "1"})
    assert status == 404 and 'dir="rtl"' in page
    await console.get("/admin/language/en?next=/admin/")
    status, page = await console.get("/admin/workshops/nope")
    assert status == 404 and "There is no such workshop at this fair." in page


async def test_a_confirmed_seat_without_a_code_gets_one_when_shown(
        make_console: ConsoleFactory) -> None:
    console = await make_console()
    people = await fill(console.app)
    async with console.app.sessions() as session, session.begin():
        await session.execute(update(Registration).values(checkin_code=None))
    _status, page = await console.get("/admin/workshops/marketing-1")
    amina = await registration(console.app, people["amina"])
    karim = await registration(console.app, people["karim"])
    assert amina.checkin_code and len(amina.checkin_code) == 10 and amina.checkin_code in page
    assert karim.checkin_code is None
    async with console.app.sessions() as session:
        codes = await session.scalar(select(func.count(func.distinct(
            Registration.checkin_code))))
    assert codes == 2
    assert amina.status == RegistrationStatus.CONFIRMED
