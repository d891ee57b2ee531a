"""The console's catalogue page: a file uploaded, checked by the import's dry run (errors named
as the command line names them; what would be created, updated, removed and cancelled, and who
would be told), then applied by the same import; roles, CSRF, limits and the audit log."""

from __future__ import annotations

import copy
import datetime as dt
import html
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import FormData
from sqlalchemy import func, select

from bot.app import App, sample_catalogue
from bot.catalogue import FAST_SAFE_LOADER
from storage import keys
from storage.catalogue import UPLOAD_LIMIT, CatalogueUploads
from storage.console import AuditLog
from storage.models import OutboxMessage, Registration, RegistrationStatus, Workshop
from tests.conftest import ChatFactory
from tests.console import ConsoleClient, ConsoleFactory

pytestmark = pytest.mark.timeout(180)

CASABLANCA = dt.timezone(dt.timedelta(hours=1))
BEFORE_THE_FAIR = dt.datetime(2026, 12, 11, 10, 0, tzinfo=CASABLANCA)
UPLOAD_ID = re.compile(r'name="upload" value="([A-Za-z0-9_-]+)"')
ERROR = re.compile(r'<p id="import-error" class="error"[^>]*>.*?<bdi>(.*?)</bdi></p>', re.S)

BOTH = pytest.mark.parametrize("database", ["sqlite", "postgres"])


def sample() -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(sample_catalogue().read_text(encoding="utf-8"),
                                     Loader=FAST_SAFE_LOADER)
    return data


def as_yaml(data: dict[str, Any]) -> bytes:
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                     allow_unicode=True, sort_keys=False).encode()


async def check(console: ConsoleClient, name: str | None, data: bytes, *,
                csrf: bool = True, field: str = "file") -> tuple[int, str]:
    """Send a file with the upload form, as a browser does (the token in the query string)."""
    form = FormData()
    form.add_field("csrf", console.csrf)
    if name is None:
        form.add_field(field, data.decode())
    else:
        form.add_field(field, io.BytesIO(data), filename=name,
                       content_type="application/octet-stream")
    path = "/admin/catalogue/check" + (f"?csrf={console.csrf}" if csrf else "")
    response = await console.client.post(path, data=form)
    text = await response.text()
    console._remember(text)
    return response.status, text


async def apply(console: ConsoleClient, page: str) -> tuple[int, str]:
    found = UPLOAD_ID.search(page)
    assert found is not None, page
    return await console.post("/admin/catalogue/apply", {"upload": found.group(1)})


def error_of(page: str) -> str:
    found = ERROR.search(page)
    assert found is not None, page
    return html.unescape(found.group(1))


async def audit(app: App) -> list[tuple[str, str, str]]:
    return [(entry.action, entry.subject, entry.detail)
            for entry in await AuditLog(app.sessions).recent()]


async def workshops(app: App) -> dict[str, Workshop]:
    async with app.sessions() as session:
        return {row.key: row for row in await session.scalars(select(Workshop))}


async def notices(app: App) -> list[OutboxMessage]:
    async with app.sessions() as session:
        return list(await session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "workshop_cancelled")))


async def test_the_page_shows_the_fair_and_viewers_cannot_upload(
        make_console: ConsoleFactory) -> None:
    console = await make_console(login=None)
    response = await console.client.get("/admin/catalogue", allow_redirects=False)
    assert response.status == 303 and "/admin/login" in response.headers["Location"]

    viewer = await make_console(app=console.app, login="lecteur@fair.ma", role="viewer")
    status, page = await viewer.get("/admin/catalogue")
    assert status == 200
    assert "Salon provincial" in page and "khouribga-ess-2026" in page
    assert 'data-kind="workshops"' in page and "Dernier import" in page
    assert 'id="catalogue-upload"' not in page
    assert "Seuls les organisateurs peuvent importer un catalogue." in page

    data = sample()
    data["workshops"] = data["workshops"][1:]
    status, page = await check(viewer, "salon.yaml", as_yaml(data))
    assert status == 403 and "Seuls les organisateurs" in page
    assert 'id="import-result"' not in page

    organizer = await make_console(app=console.app)
    _status, checked = await check(organizer, "salon.yaml", as_yaml(data))
    upload = UPLOAD_ID.search(checked)
    assert upload is not None
    status, page = await viewer.post("/admin/catalogue/apply", {"upload": upload.group(1)})
    assert status == 403 and 'id="import-done"' not in page
    assert not (await workshops(console.app))["coop-finance-1"].cancelled
    assert [action for action, _subject, _detail in await audit(console.app)
            if action == "catalogue imported"] == []


async def test_forms_without_the_token_are_refused(make_console: ConsoleFactory) -> None:
    console = await make_console()
    await console.get("/admin/catalogue")
    data = sample()
    data["workshops"] = data["workshops"][1:]
    status, page = await check(console, "salon.yaml", as_yaml(data), csrf=False)
    assert status == 403 and "Ce formulaire a expiré" in page
    _status, checked = await check(console, "salon.yaml", as_yaml(data))
    upload = UPLOAD_ID.search(checked)
    assert upload is not None
    status, page = await console.post("/admin/catalogue/apply", {"upload": upload.group(1)},
                                      csrf=False)
    assert status == 403 and "Ce formulaire a expiré" in page
    assert not (await workshops(console.app))["coop-finance-1"].cancelled
    assert [entry[0] for entry in await audit(console.app)][:1] == ["catalogue checked"]


async def test_a_broken_yaml_names_the_file_line_and_column(
        make_console: ConsoleFactory) -> None:
    console = await make_console()
    await console.get("/admin/catalogue")
    status, page = await check(console, "salon-2026.yaml",
                               b"fair:\n  id: salon\n  name: {fr: Salon, ar: [\n")
    assert status == 400
    error = error_of(page)
    assert re.match(r"salon-2026\.yaml:\d+:\d+: ", error), error
    assert 'id="catalogue-apply"' not in page and 'id="import-result"' not in page
    assert (await audit(console.app))[0] == ("catalogue checked", "salon-2026.yaml", error)


async def test_a_csv_with_a_bad_capacity_names_its_line(make_console: ConsoleFactory) -> None:
    console = await make_console()
    await console.get("/admin/catalogue")
    sheet = (
        "id,title_fr,title_ar,room_fr,room_ar,starts,ends,capacity\n"
        "tri-1,Tri des déchets,فرز النفايات,Salle 1,القاعة 1,2026-12-13T10:00,"
        "2026-12-13T11:00,30\n"
        "compta-2,Comptabilité,المحاسبة,Salle 2,القاعة 2,2026-12-13T12:00,"
        "2026-12-13T13:00,quarante\n"
    )
    status, page = await check(console, "workshops.csv", sheet.encode())
    assert status == 400
    assert error_of(page) == "workshops.csv:3: capacity must be a whole number"
    assert "tri-1" not in await workshops(console.app)


async def test_an_unknown_stand_is_named_as_the_command_line_names_it(
        make_console: ConsoleFactory) -> None:
    console = await make_console()
    await console.get("/admin/catalogue")
    data = sample()
    data["exhibitors"][12]["stand"] = "Z9"
    status, page = await check(console, "fair.yaml", as_yaml(data))
    assert status == 400
    assert error_of(page) == 'fair.yaml: exhibitors[12].stand: unknown stand "Z9"'


async def test_what_is_not_a_catalogue_is_refused_clearly(make_console: ConsoleFactory) -> None:
    console = await make_console()
    await console.get("/admin/catalogue")
    status, page = await check(console, "programme.pdf", b"%PDF-1.7 ...")
    assert status == 415
    assert "programme.pdf n’est pas un fichier de catalogue" in error_of(page)
    body = (b'--xyz\r\nContent-Disposition: form-data; name="file"; '
            b"filename*=utf-8''notes%01%00.txt\r\n\r\nhello\r\n--xyz--\r\n")
    response = await console.client.post(
        f"/admin/catalogue/check?csrf={console.csrf}", data=body,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert response.status == 415
    assert error_of(await response.text()).startswith("notes__.txt n’est pas")
    status, page = await check(console, "salon.yaml", b"")
    assert status == 400 and error_of(page) == "salon.yaml est vide."
    status, page = await check(console, "", b"")
    assert status == 400 and "Choisissez un fichier de catalogue" in error_of(page)
    status, page = await check(console, None, b"fair: {}", field="other")
    assert status == 400 and "Choisissez un fichier de catalogue" in error_of(page)
    status, page = await console.post(f"/admin/catalogue/check?csrf={console.csrf}",
                                      {"file": "fair: {}"})
    assert status == 400 and "Choisissez un fichier de catalogue" in error_of(page)
    # A name with folders (as some browsers send it) is written as its last part only.
    body = (b'--xyz\r\nContent-Disposition: form-data; name="file"; '
            b'filename="../../etc/salon.yml"\r\nContent-Type: application/octet-stream'
            b'\r\n\r\n- not a mapping\n\r\n--xyz--\r\n')
    response = await console.client.post(
        f"/admin/catalogue/check?csrf={console.csrf}", data=body,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert response.status == 400
    assert error_of(await response.text()).startswith(
        "salon.yml: the file must hold a mapping")
    # A body that is not the multipart it says it is.
    response = await console.client.post(
        f"/admin/catalogue/check?csrf={console.csrf}", data=b"garbage",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert response.status == 400
    assert "Le fichier envoyé n’a pas pu être lu" in await response.text()
    assert 'name="upload"' not in page
    refused = [(subject, detail) for action, subject, detail in await audit(console.app)
               if action == "catalogue checked"]
    assert ("programme.pdf", "programme.pdf n’est pas un fichier de catalogue\u202f: envoyez "
            "l’un de ces types\u202f: .yaml, .yml, .csv, .xlsx.") in refused


async def test_a_small_yaml_standing_for_billions_of_items_is_refused(
        make_console: ConsoleFactory) -> None:
    console = await make_console()
    await console.get("/admin/catalogue")
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]"
              for level in range(1, 10)]
    lines.append("stands: *a9")
    status, page = await check(console, "rires.yaml", "\n".join(lines).encode())
    assert status == 400
    assert error_of(page).startswith("rires.yaml: holds more than 2000000 items")


async def test_an_oversized_upload_is_refused_without_being_kept(
        make_console: ConsoleFactory) -> None:
    console = await make_console()
    await console.get("/admin/catalogue")
    too_big = b"# " + b"x" * UPLOAD_LIMIT + b"\n"
    status, page = await check(console, "salon.yaml", too_big)
    assert status == 413
    assert error_of(page) == "Ce fichier est trop volumineux\u202f: 10\u00a0Mo au plus."
    # Sent in chunks, without a length announced: refused once the limit is passed.

    async def chunks() -> Any:
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    form = FormData()
    form.add_field("file", chunks(), filename="salon.yaml",
                   content_type="application/octet-stream")
    response = await console.client.post(f"/admin/catalogue/check?csrf={console.csrf}",
                                         data=form)
    assert response.status == 413


@BOTH
async def test_a_good_yaml_is_checked_then_applied(
        make_console: ConsoleFactory, make_chat: ChatFactory, database: str) -> None:
    console = await make_console(database=database)
    app = console.app
    app.engine.clock = lambda: BEFORE_THE_FAIR
    chat = await make_chat(app=app)
    await chat("amina", "Bonjour, je voudrais m'inscrire à un atelier")
    await chat.tap("amina", "Français")
    await chat("amina", "/start ws_marketing-1")
    registered = await chat.tap("amina", "S'inscrire")
    assert "Inscription confirmée" in registered.text
    version = await app.state.catalogue_version()

    data = sample()
    data["workshops"] = [item for item in data["workshops"] if item["id"] != "marketing-1"]
    legal = next(item for item in data["workshops"] if item["id"] == "legal-framework-1")
    legal["title"] = {"fr": "Le statut juridique des coopératives",
                      "ar": "النظام القانوني للتعاونيات"}
    await console.get("/admin/catalogue")
    status, page = await check(console, "salon-2026.yaml", as_yaml(data))
    assert status == 200, error_of(page)
    assert 'id="import-result"' in page and 'id="import-error"' not in page
    assert "salon-2026.yaml est valide" in page
    row = re.search(r'<tr data-changes="workshops">.*?</tr>', page, re.S)
    assert row is not None
    assert 'data-created="0"' in row.group(0) and 'data-updated="1"' in row.group(0)
    cancelled = re.search(r'<tr data-workshop="marketing-1">.*?</tr>', page, re.S)
    assert cancelled is not None
    assert 'data-told="1"' in cancelled.group(0)
    assert "1 personne sera prévenue" in cancelled.group(0)
    assert "Techniques de marketing" in cancelled.group(0)
    assert 'id="catalogue-apply"' in page and "data-confirm=" in page
    # The dry run stored nothing.
    stored = await workshops(app)
    assert not stored["marketing-1"].cancelled
    assert stored["legal-framework-1"].title["fr"] == "Cadre juridique de la coopérative"
    assert await notices(app) == []
    assert await app.state.catalogue_version() == version

    # Another process of the deployment applies it: the file waits in Redis, not here.
    other = await make_console(app=app)
    status, done = await apply(other, page)
    assert status == 200, done
    assert 'id="import-done"' in done
    assert "Catalogue salon-2026.yaml importé" in done
    assert "1 personne prévenue" in done
    stored = await workshops(app)
    assert stored["marketing-1"].cancelled
    assert stored["legal-framework-1"].title["fr"] == "Le statut juridique des coopératives"
    told = await notices(app)
    assert [notice.payload["workshop"] for notice in told] == ["marketing-1"]
    async with app.sessions() as session:
        kept = await session.scalar(select(func.count()).select_from(Registration).where(
            Registration.status == RegistrationStatus.CONFIRMED))
    assert kept == 1  # the registration is kept, as history
    assert await app.state.catalogue_version() > version
    # The chat sees the new title at once.
    answer = await chat("amina", "/start ws_legal-framework-1")
    assert "Le statut juridique des coopératives" in answer.text

    # Applying the same upload again is harmless, and the page says so.
    status, again = await apply(other, page)
    assert status == 200
    assert "Ce fichier avait déjà été importé" in again
    assert "Créés\u202f: 0, mis à jour\u202f: 0, supprimés\u202f: 0." in again
    assert len(await notices(app)) == 1

    actions = [(action, subject) for action, subject, _detail in await audit(app)
               if action.startswith("catalogue")]
    assert actions == [("catalogue imported", "salon-2026.yaml"),
                           ("catalogue imported", "salon-2026.yaml"),
                           ("catalogue checked", "salon-2026.yaml")]
    detail = (await audit(app))[1][2]
    assert "cancelled workshops with registrants: marketing-1" in detail


async def test_a_capacity_below_the_confirmed_seats_is_a_warning(
        make_console: ConsoleFactory, make_chat: ChatFactory) -> None:
    console = await make_console()
    app = console.app
    app.engine.clock = lambda: BEFORE_THE_FAIR
    chat = await make_chat(app=app)
    await chat("karim", "Hello, I would like to join a workshop please")
    await chat.tap("karim", "English")
    await chat("karim", "/start ws_marketing-1")
    await chat.tap("karim", "Register")
    data = sample()
    next(item for item in data["workshops"] if item["id"] == "marketing-1")["capacity"] = 0
    await console.get("/admin/catalogue")
    status, page = await check(console, "salon.yaml", as_yaml(data))
    assert status == 200, error_of(page)
    warning = re.search(r'<li data-workshop="marketing-1">(.*?)</li>', page, re.S)
    assert warning is not None
    assert "capacité 0, en dessous des 1 places déjà confirmées" in warning.group(1)


@BOTH
async def test_a_good_xlsx_is_checked_then_applied(
        make_console: ConsoleFactory, database: str, tmp_path: Path) -> None:
    from openpyxl import Workbook

    console = await make_console(database=database)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "workshops"
    sheet.append(["id", "title_fr", "title_ar", "room_fr", "room_ar", "starts", "ends",
                  "capacity", "language", "audience"])
    for item in sample()["workshops"]:
        if item["id"] == "marketing-1":
            item["capacity"] = 70
        room = item["room"] if isinstance(item["room"], dict) else {"fr": "Salle", "ar": "قاعة"}
        sheet.append([item["id"], item["title"]["fr"], item["title"]["ar"], room["fr"],
                      room["ar"], str(item["starts"]), str(item["ends"]), item["capacity"],
                      item["language"], item["audience"]])
    sheet.append(["recyclage-1", "Recycler les déchets de l'artisanat", "تدوير نفايات الصناعة",
                  "Salle 3", "القاعة 3", "2026-12-14T10:00", "2026-12-14T11:30", 25, "ar+fr",
                  "all"])
    path = tmp_path / "ateliers.xlsx"
    workbook.save(path)

    await console.get("/admin/catalogue")
    status, page = await check(console, "ateliers.xlsx", path.read_bytes())
    assert status == 200, error_of(page)
    row = re.search(r'<tr data-changes="workshops">.*?</tr>', page, re.S)
    assert row is not None and 'data-created="1"' in row.group(0)
    assert re.search(r'<p class="created">[^<]*<bdi>recyclage-1</bdi></p>', page)
    assert "recyclage-1" not in await workshops(console.app)

    status, done = await apply(console, page)
    assert status == 200 and 'id="import-done"' in done
    stored = await workshops(console.app)
    assert stored["recyclage-1"].capacity == 25 and stored["marketing-1"].capacity == 70


async def test_a_forged_or_expired_upload_gets_a_clear_answer(
        make_console: ConsoleFactory) -> None:
    console = await make_console()
    await console.get("/admin/catalogue")
    for forged in ("forged", "A" * 32, "../../x", "", "é" * 300):
        status, page = await console.post("/admin/catalogue/apply", {"upload": forged})
        assert status == 400
        assert "Ce fichier envoyé est inconnu ou a expiré" in error_of(page)
    # The one of a real upload, once it has expired.
    upload_id = await CatalogueUploads(console.app.redis).keep(
        "salon.yaml", as_yaml(sample()), "org@fair.ma", dt.datetime.now(dt.UTC))
    assert await CatalogueUploads(console.app.redis).get(upload_id) is not None
    assert 0 < await console.app.redis.ttl(keys.catalogue_upload(upload_id)) <= 3600
    await console.app.redis.delete(keys.catalogue_upload(upload_id))
    status, page = await console.post("/admin/catalogue/apply", {"upload": upload_id})
    assert status == 400 and "inconnu ou a expiré" in error_of(page)
    assert [entry for entry in await audit(console.app) if entry[0] == "catalogue imported"] == []


@pytest.mark.parametrize(("language", "words"), [
    ("ar", ['lang="ar" dir="rtl"', "الدليل", "فحص هذا الملف"]),
    ("en", ['lang="en" dir="ltr"', "Check this file", "Last imported"]),
    ("fr", ['lang="fr" dir="ltr"', "Vérifier ce fichier", "Dernier import"]),
])
async def test_each_language_renders(make_console: ConsoleFactory, language: str,
                                     words: list[str]) -> None:
    console = await make_console()
    await console.client.get(f"/admin/language/{language}?next=/admin/catalogue")
    status, page = await console.get("/admin/catalogue")
    assert status == 200
    for word in words:
        assert word in page, word
    data = copy.deepcopy(sample())
    data["workshops"][0]["capacity"] = "quarante"
    status, page = await check(console, "salon.yaml", as_yaml(data))
    assert status == 400 and "salon.yaml: workshops[0].capacity" in error_of(page)
