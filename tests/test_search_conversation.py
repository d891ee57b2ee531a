"""The stand search in conversation: free text finds the stand at the first answer, in either
language and in Darija; several close answers come as buttons, the best first."""

from __future__ import annotations

from bot.i18n import FSI, PDI
from tests.conftest import Chat


async def _french(chat: Chat, person: str) -> None:
    await chat(person, "bonjour")
    await chat.tap(person, "Français")


async def test_free_text_finds_the_stand(chat: Chat) -> None:
    await _french(chat, "amina")
    carpets = await chat("amina", "zarbia")  # Darija for carpet, in Latin letters
    # Every stand that sells carpets, not only the cooperative with the word in its name.
    assert "8 stands" in carpets.text
    assert "A18 · Coopérative Al Wafae du tapis · tapis" in carpets.text
    typo = await chat("amina", "coopérative Tfawin")  # a letter missing
    assert "Stand A10" in typo.text
    draa = await chat("amina", "poterie draa")  # pottery from Drâa: the one potter from there
    assert "Stand A4" in draa.text and "Coopérative Drâa de poterie verte" in draa.text
    argan = await chat("amina", "huile d'argan essaouira")  # argan oil from Essaouira: one
    assert "Stand B19" in argan.text
    nothing = await chat("amina", "qwxz")
    assert "Stand" not in nothing.text


async def test_arabic_search(chat: Chat) -> None:
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    found = await chat("karim", "تعاونية تيفاوين")
    assert f"الرواق {FSI}A10{PDI}" in found.text
    carpets = await chat("karim", "زربية")  # carpet: every stand that sells carpets
    assert f"{FSI}A18{PDI} · تعاونية الوفاء للزربية · الزرابي" in carpets.text
    assert f"{FSI}A27{PDI}" in carpets.text


async def test_browse_by_category_region_label_and_neighbours(chat: Chat) -> None:
    await _french(chat, "amina")
    stands = await chat("amina", "stands")
    assert {"Par catégorie", "Par région", "Par label"} <= set(stands.labels)
    categories = await chat.tap("amina", "Par catégorie")
    assert "Choisissez une catégorie" in categories.text
    crafts = next(label for label in categories.labels if label.startswith("Artisanat"))
    listed = await chat.tap("amina", crafts)
    assert "Artisanat\u202f: stands 1 à 8 sur" in listed.text
    assert sum(" · " in label for label in listed.labels) == 8 and "Suite" in listed.labels
    second = await chat.tap("amina", "Suite")
    assert "Artisanat\u202f: stands 9 à" in second.text

    await chat("amina", "stands")
    regions = await chat.tap("amina", "Par région")
    souss = next(label for label in regions.labels if label.startswith("Souss-Massa"))
    in_souss = await chat.tap("amina", souss)
    assert "A10 · Coopérative Tifawin" in in_souss.labels  # Tiznit is in Souss-Massa

    await chat("amina", "stands")
    labels = await chat.tap("amina", "Par label")
    women = next(label for label in labels.labels if label.startswith("Dirigée par des femmes"))
    led = await chat.tap("amina", women)
    assert "Dirigée par des femmes\u202f: stands 1 à" in led.text

    card = await chat("amina", "A12")
    assert "Stands voisins" in card.labels
    near = await chat.tap("amina", "Stands voisins")
    assert "Près du stand A12" in near.text
    assert len(near.labels) == 6 and not any(label.startswith("A12 ·") for label in near.labels)


async def test_my_list_of_saved_stands(chat: Chat) -> None:
    await _french(chat, "amina")
    empty = await chat("amina", "ma liste")
    assert "Votre liste est vide" in empty.text
    await chat("amina", "A12")
    saved = await chat.tap("amina", "Ajouter à ma liste")
    assert "Le stand A12 est dans votre liste." in saved.text
    await chat("amina", "Coopérative Al Wafae du tapis")
    await chat.tap("amina", "Ajouter à ma liste")
    await chat("amina", "A12")
    again = await chat.tap("amina", "Ajouter à ma liste")
    assert "Le stand A12 est déjà dans votre liste." in again.text
    mine = await chat.tap("amina", "Ma liste")
    assert "Votre liste\u202f: 2 stands." in mine.text
    assert [label.split(" · ")[0] for label in mine.labels[:2]] == ["A12", "A18"]
    fewer = await chat.tap("amina", "Retirer A12")
    assert "Votre liste\u202f: 1 stand." in fewer.text
    # someone else's list is their own
    await _french(chat, "karim")
    assert "Votre liste est vide" in (await chat("karim", "ma liste")).text


async def test_no_result_offers_did_you_mean_and_the_closest_categories(chat: Chat) -> None:
    await _french(chat, "amina")
    glued = await chat("amina", "cooperativetifawin")  # no space: no word matches
    assert "Vouliez-vous dire Coopérative Tifawin, stand A10" in glued.text
    assert glued.labels[0] == "A10 · Coopérative Tifawin"
    assert any(label.startswith("Artisanat (") for label in glued.labels[1:])
    card = await chat.tap("amina", glued.labels[0])
    assert "Stand A10" in card.text
    lost = await chat("amina", "je cherche le stand xkcdqwv")
    assert "Vérifiez l'orthographe, ou cherchez dans une catégorie" in lost.text
    category = lost.labels[0]
    listed = await chat.tap("amina", category)
    assert f"{category.split(' (')[0]}\u202f: stands 1 à" in listed.text


async def test_many_results_come_five_at_a_time_with_more(chat: Chat) -> None:
    await _french(chat, "amina")
    oils = await chat("amina", "huile")
    first = [label for label in oils.labels if " · " in label]
    assert len(first) == 5 and "Suite" in oils.labels
    second = await chat.tap("amina", "Suite")
    assert "Résultats 6 à 10 sur" in second.text
    shown = [label for label in second.labels if " · " in label]
    assert shown and not set(shown) & set(first)
    total = int(second.text.splitlines()[0].split(" sur ")[1].rstrip(" :"))
    seen = first + shown
    page = second
    while "Suite" in page.labels:
        page = await chat.tap("amina", "Suite")
        seen += [label for label in page.labels if " · " in label]
    assert len(seen) == len(set(seen)) == total
