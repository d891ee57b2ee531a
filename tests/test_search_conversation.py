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
    assert "Stand A18" in carpets.text and "Coopérative Al Wafae du tapis" in carpets.text
    typo = await chat("amina", "coopérative Tfawin")  # a letter missing
    assert "Stand A10" in typo.text
    draa = await chat("amina", "poterie draa")  # the potters come as buttons, Drâa first
    assert draa.labels[0] == "A4 · Coopérative Drâa de poterie verte"
    assert "A2 · Coopérative Al Ajyal de poterie" in draa.labels
    argan = await chat("amina", "huile d'argan essaouira")
    assert argan.labels[0].startswith("B19 · ")
    card = await chat.tap("amina", argan.labels[0])
    assert "Stand B19" in card.text
    nothing = await chat("amina", "qwxz")
    assert "Stand" not in nothing.text


async def test_arabic_search(chat: Chat) -> None:
    await chat("karim", "السلام عليكم")
    await chat.tap("karim", "العربية")
    found = await chat("karim", "تعاونية تيفاوين")
    assert f"الرواق {FSI}A10{PDI}" in found.text
    carpets = await chat("karim", "زربية")  # carpet: one cooperative has it in its name
    assert f"الرواق {FSI}A18{PDI}" in carpets.text
