"""`tadamon posters`: one printable page per stand, its names in both scripts, and QR codes that
open the stand's card on Telegram and WhatsApp (CONTRACT.md deep links)."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
import segno
import yaml
import zxingcpp

from bot.app import sample_catalogue
from bot.posters import PosterPage, write_posters
from storage.catalogue import normalize_stand_number
from tests.conftest import DatabaseFactory, cli_env, run_tadamon
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.servers import free_port

ARABIC_LETTER = re.compile(r"[\u0621-\u064A]")
LAM_ALEF = re.compile(r"ل[اأإآ]")  # drawn as one ligature glyph, which text extraction reorders


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def fake_whatsapp() -> AsyncIterator[FakeWhatsApp]:
    async with FakeWhatsApp() as fake:
        yield fake


def telegram_env(fake: FakeTelegram) -> dict[str, str]:
    return {"TADAMON_TELEGRAM_TOKEN": fake.token, "TADAMON_TELEGRAM_API_BASE": fake.base_url}


def whatsapp_env(fake: FakeWhatsApp) -> dict[str, str]:
    return {"TADAMON_WHATSAPP_TOKEN": fake.token,
            "TADAMON_WHATSAPP_PHONE_NUMBER_ID": fake.phone_number_id,
            "TADAMON_WHATSAPP_APP_SECRET": fake.app_secret,
            "TADAMON_WHATSAPP_VERIFY_TOKEN": fake.verify_token,
            "TADAMON_WHATSAPP_API_BASE": fake.base_url}


@dataclass(frozen=True)
class Stand:
    number: str
    names: list[dict[str, str]]


def stands_with_exhibitors(catalogue: dict[str, Any]) -> list[Stand]:
    """The catalogue's stands that have an exhibitor, in catalogue order, with their names."""
    names: dict[str, list[dict[str, str]]] = {}
    for exhibitor in catalogue["exhibitors"]:
        if exhibitor.get("stand"):
            number = normalize_stand_number(str(exhibitor["stand"]))
            assert number is not None
            names.setdefault(number, []).append(exhibitor["name"])
    found = []
    for stand in catalogue["stands"]:
        number = normalize_stand_number(str(stand["number"]))
        assert number is not None
        if number in names:
            found.append(Stand(number, names[number]))
    return found


@dataclass(frozen=True)
class Page:
    text: str  # whitespace collapsed: wrapped lines joined by one space
    lines: list[str]
    codes: list[str]
    inside: bool  # every character within the page's width


def read_pdf(path: Path, decode: set[int] | None = None) -> list[Page]:
    """Each page's extracted text, and the QR codes read off a 150 dpi rendering of the pages
    in `decode` (all when None)."""
    pages = []
    document = pdfium.PdfDocument(path)
    try:
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            lines = textpage.get_text_range().splitlines()
            text = " ".join(" ".join(lines).split())
            width = page.get_width()
            inside = all(box[0] >= 0 and box[2] <= width
                         for box in (textpage.get_charbox(i) for i in
                                     range(textpage.count_chars())))
            codes: list[str] = []
            if decode is None or index in decode:
                image = page.render(scale=150 / 72).to_pil()
                codes = sorted(code.text for code in zxingcpp.read_barcodes(image))
            textpage.close()
            page.close()
            pages.append(Page(text, lines, codes, inside))
    finally:
        document.close()
    return pages


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def shows_arabic(text: str, name: str) -> bool:
    """`name` is on the page as Arabic letters in reading order: every word reads whole from
    the extracted text (words with a lam-alef ligature only by their letters, which text
    extraction gives back in another order)."""
    letters = Counter(ARABIC_LETTER.findall(name))
    if not letters or letters - Counter(ARABIC_LETTER.findall(text)):
        return False
    return all(word in text for word in name.split() if not LAM_ALEF.search(word))


async def test_one_poster_per_stand_with_both_codes(
    tmp_path: Path, make_database: DatabaseFactory, fake_telegram: FakeTelegram,
    fake_whatsapp: FakeWhatsApp,
) -> None:
    catalogue = yaml.safe_load(sample_catalogue().read_text(encoding="utf-8"))
    expected = stands_with_exhibitors(catalogue)
    folder = tmp_path / "print"
    folder.mkdir()
    out = folder / "posters.pdf"
    env = cli_env(TADAMON_DATABASE_URL=await make_database("sqlite"),
                  **telegram_env(fake_telegram), **whatsapp_env(fake_whatsapp))

    # The console script itself (the other tests fork a warm process: tests/commands.py).
    code, stdout, stderr = await run_tadamon("posters", "--out", str(out), env=env,
                                             cwd=tmp_path, fresh=True)

    assert code == 0, stderr
    skipped = len(catalogue["stands"]) - len(expected)
    assert stdout.strip() == (f"{len(expected)} posters written to {out} ({skipped} stands "
                              f"without an exhibitor skipped)")
    assert files_in(folder) == ["posters.pdf"]  # no temporary file left behind
    two_names = next(index for index, stand in enumerate(expected) if len(stand.names) > 1)
    decoded = {0, two_names, len(expected) - 1}
    pages = read_pdf(out, decode=decoded)
    assert len(pages) == len(expected)
    for index, (page, stand) in enumerate(zip(pages, expected, strict=True)):
        assert stand.number in page.text.split()
        for name in stand.names:
            assert name["fr"] in page.text
            assert shows_arabic(page.text, name["ar"]), (name["ar"], page.text)
        assert page.inside
        if index in decoded:
            assert page.codes == [
                f"https://t.me/{fake_telegram.username}?start=stand_{stand.number}",
                f"https://wa.me/{fake_whatsapp.display_phone_number}?text=STAND%20{stand.number}",
            ]


@pytest.fixture(scope="module")
async def small_fair_imported(tmp_path_factory: pytest.TempPathFactory,
                              ) -> tuple[dict[str, Any], Path]:
    """The sample fair cut to five stands, three with exhibitors, imported by `tadamon import`
    once for this module: its catalogue and the database file."""
    tmp_path = tmp_path_factory.mktemp("small-fair")
    sample = yaml.safe_load(sample_catalogue().read_text(encoding="utf-8"))
    stands = sample["stands"][:5]
    numbers = {stand["number"] for stand in stands[:3]}  # the last two stay empty
    catalogue = {**sample, "stands": stands, "workshops": [], "reminders": [],
                 "exhibitors": [exhibitor for exhibitor in sample["exhibitors"]
                                if exhibitor.get("stand") in numbers]}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
    database = f"sqlite+aiosqlite:///{tmp_path}/small.db"
    imported = await run_tadamon("import", str(path), env=cli_env(TADAMON_DATABASE_URL=database),
                                 cwd=tmp_path)
    assert imported[0] == 0, imported[2]
    return catalogue, tmp_path / "small.db"


@pytest.fixture
def small_fair(tmp_path: Path, small_fair_imported: tuple[dict[str, Any], Path],
               ) -> tuple[dict[str, Any], str]:
    """A copy of the small fair's database for one test: its catalogue and the database URL."""
    catalogue, imported = small_fair_imported
    shutil.copy(imported, tmp_path / "small.db")
    return catalogue, f"sqlite+aiosqlite:///{tmp_path}/small.db"


async def test_telegram_alone_gives_one_code_and_empty_stands_are_skipped(
    tmp_path: Path, fake_telegram: FakeTelegram, small_fair: tuple[dict[str, Any], str],
) -> None:
    catalogue, database = small_fair
    out = tmp_path / "posters.pdf"
    env = cli_env(TADAMON_DATABASE_URL=database, **telegram_env(fake_telegram))

    code, stdout, stderr = await run_tadamon("posters", "--out", str(out), env=env,
                                             cwd=tmp_path)

    assert code == 0, stderr
    assert stdout.strip() == (f"3 posters written to {out} (2 stands without an exhibitor "
                              f"skipped)")
    pages = read_pdf(out)
    assert [page.codes for page in pages] == [
        [f"https://t.me/{fake_telegram.username}?start=stand_{stand.number}"]
        for stand in stands_with_exhibitors(catalogue)]
    assert all("WhatsApp" not in page.text and "Telegram" in page.text for page in pages)


async def test_posters_need_no_redis(tmp_path: Path, fake_whatsapp: FakeWhatsApp,
                                     small_fair: tuple[dict[str, Any], str]) -> None:
    catalogue, database = small_fair
    out = tmp_path / "posters.pdf"
    env = cli_env(TADAMON_DATABASE_URL=database, **whatsapp_env(fake_whatsapp),
                  TADAMON_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens

    code, stdout, stderr = await run_tadamon("posters", "--out", str(out), env=env,
                                             cwd=tmp_path)

    assert (code, stderr) == (0, "")
    assert stdout.strip() == (f"3 posters written to {out} (2 stands without an exhibitor "
                              f"skipped)")
    assert [page.codes for page in read_pdf(out)] == [
        [f"https://wa.me/{fake_whatsapp.display_phone_number}?text=STAND%20{stand.number}"]
        for stand in stands_with_exhibitors(catalogue)]


async def test_no_poster_without_a_channel_to_link_to(tmp_path: Path,
                                                      make_database: DatabaseFactory) -> None:
    out = tmp_path / "posters.pdf"
    env = cli_env(TADAMON_DATABASE_URL=await make_database("sqlite"))

    code, stdout, stderr = await run_tadamon("posters", "--out", str(out), env=env,
                                             cwd=tmp_path)

    assert (code, stdout) == (2, "")
    assert len(stderr.strip().splitlines()) == 1
    assert "TADAMON_TELEGRAM_TOKEN" in stderr and "TADAMON_WHATSAPP_TOKEN" in stderr
    assert not out.exists()


async def test_a_platform_that_does_not_answer_stops_the_posters(
    tmp_path: Path, make_database: DatabaseFactory, fake_telegram: FakeTelegram,
    fake_whatsapp: FakeWhatsApp,
) -> None:
    fake_telegram.fail("getMe", status=500)
    out = tmp_path / "posters.pdf"
    env = cli_env(TADAMON_DATABASE_URL=await make_database("sqlite"),
                  **telegram_env(fake_telegram), **whatsapp_env(fake_whatsapp))

    code, stdout, stderr = await run_tadamon("posters", "--out", str(out), env=env,
                                             cwd=tmp_path)

    assert (code, stdout) == (1, "")
    assert len(stderr.strip().splitlines()) == 1
    assert "Telegram" in stderr and "WhatsApp" not in stderr
    assert not out.exists()


async def test_no_poster_without_a_fair(tmp_path: Path, make_database: DatabaseFactory,
                                        fake_telegram: FakeTelegram) -> None:
    out = tmp_path / "posters.pdf"
    env = cli_env(TADAMON_DATABASE_URL=await make_database("sqlite", sample=False),
                  **telegram_env(fake_telegram))

    code, stdout, stderr = await run_tadamon("posters", "--out", str(out), env=env,
                                             cwd=tmp_path)

    assert (code, stdout) == (2, "")
    assert stderr.strip().splitlines() == [
        "tadamon: no fair is loaded: import a catalogue first (tadamon import PATH)"]
    assert not out.exists()


FAIR = {"fr": "Salon de l'économie sociale et solidaire", "ar": "معرض الاقتصاد الاجتماعي والتضامني"}
LONG_NAME = {
    "fr": "Coopérative agricole féminine des productrices d'huile d'argan et de plantes "
          "aromatiques et médicinales de la région de Souss-Massa",
    "ar": "التعاونية الفلاحية النسوية لمنتجات زيت الأركان والنباتات العطرية والطبية بجهة "
          "سوس ماسة ودرعة تافيلالت",
}


def poster(**fields: Any) -> PosterPage:
    values: dict[str, Any] = {
        "stand": "B7", "zone": {"fr": "Hall B", "ar": "الرواق ب"},
        "exhibitors": (LONG_NAME,), "fair": FAIR,
        "telegram": "https://t.me/tadamon_bot?start=stand_B7",
        "whatsapp": "https://wa.me/212500000000?text=STAND%20B7",
        "instruction": {"fr": "Scannez pour ouvrir la fiche du stand",
                        "ar": "امسح الرمز لفتح بطاقة الجناح"},
    }
    values.update(fields)
    return PosterPage(**values)


def test_long_names_wrap_on_one_page(tmp_path: Path) -> None:
    out = tmp_path / "long.pdf"
    seen: list[tuple[int, int]] = []

    assert write_posters([poster()], out, lambda done, total: seen.append((done, total))) == 1

    assert seen == [(1, 1)]
    [page] = read_pdf(out)
    assert LONG_NAME["fr"] in page.text
    assert shows_arabic(page.text, LONG_NAME["ar"])
    assert page.inside
    assert len(page.codes) == 2
    # Wrapped: neither name is on one line of its own.
    assert LONG_NAME["fr"] not in page.lines
    assert LONG_NAME["ar"] not in page.lines


def test_a_failed_run_leaves_the_previous_file_alone(tmp_path: Path) -> None:
    out = tmp_path / "posters.pdf"
    out.write_bytes(b"the posters printed yesterday")
    too_long_for_a_code = "https://t.me/tadamon_bot?start=" + "x" * 3000

    with pytest.raises(segno.DataOverflowError):
        write_posters([poster(), poster(telegram=too_long_for_a_code)], out)

    assert out.read_bytes() == b"the posters printed yesterday"
    assert files_in(tmp_path) == ["posters.pdf"]


async def test_a_fair_without_a_platform_prints_codes_to_the_web_chat(
    tmp_path: Path, small_fair: tuple[dict[str, Any], str],
) -> None:
    catalogue, database = small_fair
    out = tmp_path / "posters.pdf"
    env = cli_env(TADAMON_DATABASE_URL=database,
                  TADAMON_PUBLIC_URL="https://salon.example/tadamon/")

    code, stdout, stderr = await run_tadamon("posters", "--out", str(out), env=env,
                                             cwd=tmp_path)

    assert (code, stderr) == (0, "")
    assert stdout.strip() == (f"3 posters written to {out} (2 stands without an exhibitor "
                              f"skipped)")
    pages = read_pdf(out)
    assert [page.codes for page in pages] == [
        [f"https://salon.example/tadamon/?start=stand_{stand.number}"]
        for stand in stands_with_exhibitors(catalogue)]
    assert all("Chat web" in page.text and "المحادثة على الموقع" in page.text
               and "Telegram" not in page.text for page in pages)


async def test_three_codes_side_by_side_when_every_channel_is_set(
    tmp_path: Path, fake_telegram: FakeTelegram, fake_whatsapp: FakeWhatsApp,
    small_fair: tuple[dict[str, Any], str],
) -> None:
    catalogue, database = small_fair
    out = tmp_path / "posters.pdf"
    env = cli_env(TADAMON_DATABASE_URL=database, TADAMON_PUBLIC_URL="https://salon.example",
                  **telegram_env(fake_telegram), **whatsapp_env(fake_whatsapp))

    code, _stdout, stderr = await run_tadamon("posters", "--out", str(out), env=env,
                                              cwd=tmp_path)

    assert code == 0, stderr
    pages = read_pdf(out)
    for page, stand in zip(pages, stands_with_exhibitors(catalogue), strict=True):
        assert page.codes == sorted([
            f"https://salon.example/?start=stand_{stand.number}",
            f"https://t.me/{fake_telegram.username}?start=stand_{stand.number}",
            f"https://wa.me/{fake_whatsapp.display_phone_number}?text=STAND%20{stand.number}",
        ])
        assert page.inside
