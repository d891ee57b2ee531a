"""Deep links (CONTRACT.md): one place builds them for coop-codes and posters, and what they
carry is what the chat understands."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from bot import links


def test_a_stand_links_to_its_card_on_both_platforms() -> None:
    link = links.stand("A12")
    assert links.telegram("tadamon_bot", link) == "https://t.me/tadamon_bot?start=stand_A12"
    assert links.whatsapp("212600000000", link) == "https://wa.me/212600000000?text=STAND%20A12"


def test_a_cooperative_code_links_a_chat_on_both_platforms() -> None:
    link = links.cooperative("K7WQ2XMP4RTZH")
    assert links.telegram("tadamon_bot", link) == (
        "https://t.me/tadamon_bot?start=coop_K7WQ2XMP4RTZH")
    assert links.whatsapp("212600000000", link) == (
        "https://wa.me/212600000000?text=COOP%20K7WQ2XMP4RTZH")


def test_the_whatsapp_text_is_read_back_as_written() -> None:
    # Every character that means something in a URL is escaped, so the text arrives whole.
    link = links.DeepLink(start="stand_B7", text="STAND B7 & co?#=+")
    query = parse_qs(urlsplit(links.whatsapp("212600000000", link)).query)
    assert query == {"text": ["STAND B7 & co?#=+"]}
