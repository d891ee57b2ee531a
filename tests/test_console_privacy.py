"""The console's personal data page: an organizer sees what is kept about a person, then erases
them (their seat goes to the next person waiting); the audit log says so without their id;
viewers, forged forms and unknown ids are refused."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from storage.models import AuditEntry, Contact, Registration, RegistrationStatus
from tests.console import ConsoleFactory
from tests.test_console_workshops import person, register, workshop_id

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_an_organizer_erases_a_person_and_the_log_keeps_no_id(
        make_console: ConsoleFactory, database: str) -> None:
    console = await make_console(database=database)
    app = console.app
    await workshop_id(app, capacity=1)
    fatima = await person(app, "212611112222")
    karim = await person(app, "212633334444")
    await register(app, fatima)
    await register(app, karim)  # waits for Fatima's seat

    status, page = await console.get("/admin/privacy")
    assert status == 200 and 'id="privacy-form"' in page

    status, page = await console.post("/admin/privacy/check", {"who": "whatsapp:+212 611112222"})
    assert status == 200, page
    text = html.unescape(page)
    assert "WhatsApp ···2222" in text and "1 inscription" in text
    assert "212611112222" not in text.replace('value="whatsapp:212611112222"', "")
    async with app.sessions() as session:  # looking erased nothing
        assert await session.get(Contact, fatima) is not None

    status, page = await console.post("/admin/privacy/erase", {"who": "whatsapp:212611112222"})
    assert status == 200, page
    text = html.unescape(page)
    assert 'id="privacy-done"' in page
    assert "1 inscription supprimée" in text
    assert "1 place proposée à la personne suivante" in text
    async with app.sessions() as session:
        assert await session.get(Contact, fatima) is None
        assert await session.scalar(select(Registration.status).where(
            Registration.contact_id == karim)) is RegistrationStatus.OFFERED
        audit = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action == "person erased"))).all()
    assert [(entry.actor, entry.subject) for entry in audit] == [("org@fair.ma", "whatsapp")]
    assert "2222" not in audit[0].detail
    status, page = await console.get("/admin/audit")
    assert "personne effacée" in page and "212611112222" not in page

    # Again: nobody by that id any more.
    status, page = await console.post("/admin/privacy/erase", {"who": "whatsapp:212611112222"})
    assert status == 404 and 'id="privacy-error"' in page


async def test_viewers_forged_forms_and_bad_ids_are_refused(
        make_console: ConsoleFactory) -> None:
    organizer = await make_console()
    app = organizer.app
    await person(app, "212655556666")
    viewer = await make_console(app=app, login="door@fair.ma", role="viewer")

    status, page = await viewer.get("/admin/privacy")
    assert status == 200 and 'id="privacy-organizers-only"' in page
    for path in ("/admin/privacy/check", "/admin/privacy/erase"):
        status, _page = await viewer.post(path, {"who": "whatsapp:212655556666"})
        assert status == 403
    status, _page = await organizer.post("/admin/privacy/erase",
                                         {"who": "whatsapp:212655556666"}, csrf=False)
    assert status == 403
    for typed in ("", "212655556666", "signal:1", "telegram:"):
        status, page = await organizer.post("/admin/privacy/check", {"who": typed})
        assert status == 400 and 'id="privacy-error"' in page, typed
    status, page = await organizer.post("/admin/privacy/check", {"who": "telegram:999"})
    assert status == 404
    async with app.sessions() as session:
        assert await session.scalar(select(Contact.id).where(
            Contact.user_id == "212655556666")) is not None


async def test_the_page_reads_in_arabic(make_console: ConsoleFactory) -> None:
    console = await make_console()
    await console.get("/admin/language/ar?next=/admin/privacy")
    status, page = await console.get("/admin/privacy")
    assert status == 200 and 'dir="rtl"' in page
    assert "البيانات الشخصية" in page
