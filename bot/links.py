"""Deep links (CONTRACT.md): what opens a stand's card or links a cooperative's chat, as a
Telegram `/start` payload and as a WhatsApp pre-filled text, built here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class DeepLink:
    """One thing a link opens: its Telegram `/start` payload and its WhatsApp text."""

    start: str
    text: str


def stand(number: str) -> DeepLink:
    """A stand's card: `stand_A12` on Telegram, `STAND A12` on WhatsApp."""
    return DeepLink(f"stand_{number}", f"STAND {number}")


def cooperative(code: str) -> DeepLink:
    """A cooperative's link code: `coop_CODE` on Telegram, `COOP CODE` on WhatsApp."""
    return DeepLink(f"coop_{code}", f"COOP {code}")


def transfer(code: str) -> DeepLink:
    """A web chat person's transfer code: `link_CODE` on Telegram, `LINK CODE` on WhatsApp."""
    return DeepLink(f"link_{code}", f"LINK {code}")


def telegram(bot: str, link: DeepLink) -> str:
    """`https://t.me/<bot>?start=stand_A12`."""
    return f"https://t.me/{bot}?start={link.start}"


def web(public_url: str, link: DeepLink) -> str:
    """`<public url>/?start=stand_A12`: the web chat, for a phone without either app."""
    return f"{public_url.rstrip('/')}/?start={quote(link.start, safe='')}"


def whatsapp(number: str, link: DeepLink) -> str:
    """`https://wa.me/<number>?text=STAND%20A12`."""
    return f"https://wa.me/{number}?text={quote(link.text, safe='')}"
