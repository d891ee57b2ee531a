"""The language a person writes in, guessed from their words: Arabic script, Darija in Latin
letters (Arabizi), English or French."""

from __future__ import annotations

import re

ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_WORD = re.compile(r"[a-z0-9\u00e0-\u00ff']+")
_STAND_LIKE = re.compile(r"[a-z]{1,2}\d+")

# Darija written in Latin letters (Arabizi): words and the digit-letters 3, 7, 9 inside words.
_DARIJA = {
    "salam", "slm", "salamo", "salamu", "labas", "lbas", "wach", "wash", "bghit", "bghina",
    "kifach", "kifash", "fin", "fen", "chno", "achno", "ashno", "chnou", "smhli", "smhlia",
    "shukran", "chokran", "choukran", "chukran", "mrhba", "marhba", "wa", "3afak", "afak",
    "safi", "bzaf", "bezaf", "daba", "wakha", "iyeh", "ewa", "hadchi", "had", "dyal", "dial",
    "l3arbia", "3arbia", "3arabiya", "mzyan", "mezyan", "kayn", "kayna", "khoya", "khti",
}
_ENGLISH = {
    "hello", "hi", "hey", "the", "please", "thanks", "thank", "you", "what", "where", "when",
    "english", "how", "is", "are", "my", "good", "morning", "evening", "want", "find", "need",
    "i", "i'm", "can", "do", "there", "which", "with", "for", "today", "tomorrow", "workshop",
    "workshops", "register",
}
_FRENCH = {
    "bonjour", "bonsoir", "salut", "merci", "je", "le", "la", "les", "des", "du", "ou", "où",
    "est", "atelier", "ateliers", "stand", "stands", "aide", "français", "francais", "voudrais",
    "veux", "cherche", "coopérative", "cooperative", "svp", "oui", "non", "quand", "comment",
}
_ARABIZI_DIGIT = re.compile(r"[a-z][379]|[379][a-z]")


def _arabizi(word: str) -> bool:
    """`n3ref`, `3la`, `sa7a`: a digit-letter inside a word, but not a stand code like `b7`."""
    return (sum(char.isalpha() for char in word) >= 2 and _ARABIZI_DIGIT.search(word) is not None
            and _STAND_LIKE.fullmatch(word) is None)


def detect_language(text: str, default: str = "fr") -> str:
    """First-message guess: Arabic script or Darija in Latin -> ar; English -> en; French
    words -> fr; nothing telling (a stand number, a name) -> `default` (the platform's hint)."""
    # Anyone who types Arabic script reads it; Latin letters beside it are codes and names.
    if ARABIC.search(text):
        return "ar"
    lowered = text.lower()
    words = _WORD.findall(lowered)
    # Whole words only: a code such as `coop_WA5KFIN` holds "wa" and "fin" but says nothing.
    darija = sum(word in _DARIJA or _arabizi(word) for word in words)
    english = sum(word in _ENGLISH for word in words)
    french = sum(word in _FRENCH for word in words)
    if darija and darija >= english and darija >= french:
        return "ar"
    if english > french:
        return "en"
    if french:
        return "fr"
    return default
