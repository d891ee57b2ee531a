"""The words people use, as translators keep them (data/lexicon.yaml), folded once, and the
phrase matcher that finds them in a message despite typos and glued Arabic prefixes."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process

from storage.text import fold

DATA = Path(__file__).resolve().parent / "data"
LEXICON_FILE = DATA / "lexicon.yaml"
TRAIN_FILE = DATA / "train.csv"
GLOSSARY_FILE = DATA / "glossary.yaml"
# Words whose near spellings are remembered, per vocabulary.
CACHED_WORDS = 4096
# libyaml's loader when PyYAML has it: the pure Python one takes seconds on a large catalogue.
YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Sections of the lexicon: each `{name: {fr: [...], ar: [...], latin: [...], en: [...]}}`.
SECTIONS = ("intents", "info_topics", "days", "languages", "labels", "request_words")

# The article and the letters glued before it (والزربية, بالعربية, فالورشة, للتعاونية); not a
# lone و, ب, ف or ل, which begin too many words (ورشة, بركان).
_ARABIC_PREFIXES = ("وبال", "وال", "بال", "فال", "كال", "لل", "ال")


def stem(word: str) -> str:
    """An Arabic word without the prefixes glued to it (بالعربية -> عربيه); others as they are."""
    if word and "\u0600" <= word[0] <= "\u06ff":
        for prefix in _ARABIC_PREFIXES:
            if word.startswith(prefix) and len(word) - len(prefix) >= 3:
                return word[len(prefix):]
    return word


def min_similarity(word: str) -> float:
    """How alike (0-100) a word must be to another to be taken for it: exact when short, about
    one edit in five or six otherwise."""
    if len(word) <= 4:
        return 100.0
    if len(word) <= 6:
        return 84.0
    return 80.0


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Every section, each name with its folded phrases."""

    sections: Mapping[str, Mapping[str, tuple[str, ...]]]
    digest: str

    def section(self, name: str) -> Mapping[str, tuple[str, ...]]:
        return self.sections.get(name, {})

    def words(self, section: str, exclude: Iterable[str] = ()) -> set[str]:
        """Every folded word of a section's phrases (but those of the excluded names)."""
        skip = set(exclude)
        return {word for name, phrases in self.section(section).items() if name not in skip
                for phrase in phrases for word in phrase.split()}


def _folded_section(raw: object) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    if not isinstance(raw, dict):
        return out
    for name, forms in raw.items():
        phrases: list[str] = []
        # {name: {fr: [...], ar: [...]}}, or a section of plain lists ({fr: [...]}).
        groups = forms.values() if isinstance(forms, dict) else [forms]
        for items in groups:
            for item in items if isinstance(items, list) else ():
                phrase = fold(str(item))
                if phrase and phrase not in phrases:
                    phrases.append(phrase)
        out[str(name)] = tuple(phrases)
    return out


@functools.cache
def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    """The lexicon file, folded (read once per process)."""
    data = path.read_bytes()
    raw = yaml.load(data, Loader=YAML_LOADER) or {}
    return Lexicon({section: _folded_section(raw.get(section)) for section in SECTIONS},
                   hashlib.sha256(data).hexdigest())


@functools.cache
def load_glossary(path: Path = GLOSSARY_FILE) -> dict[str, frozenset[str]]:
    """Each word of the glossary (folded, one word) with the other words of its group."""
    raw = yaml.load(path.read_bytes(), Loader=YAML_LOADER) if path.exists() else None
    out: dict[str, set[str]] = {}
    for group in (raw or {}).get("groups") or []:
        words = {stem(fold(str(item))) for item in group if len(fold(str(item)).split()) == 1}
        for word in words:
            out.setdefault(word, set()).update(words - {word})
    return {word: frozenset(others) for word, others in out.items()}


@dataclass(frozen=True, slots=True)
class Found:
    """A phrase found in a message: its name, the token span it covers, how alike (0-100)."""

    name: str
    start: int
    end: int
    score: float


class Closest:
    """The words of a vocabulary a message's word may stand for, with their similarity
    (0-100): the same word, the same without glued Arabic prefixes, or (long words) a near
    spelling. Remembered for the most recent words: people use the same ones again."""

    def __init__(self, words: Iterable[str]) -> None:
        self._known = frozenset(words)
        self._words = sorted(self._known)
        self.lookup = functools.lru_cache(maxsize=CACHED_WORDS)(self._compute)

    def _compute(self, token: str) -> dict[str, float]:
        word = stem(token)
        if word in self._known:
            return {word: 100.0}
        cutoff = min_similarity(word)
        if cutoff >= 100.0:
            return {}
        return {match: score for match, score, _ in process.extract(
            word, self._words, scorer=fuzz.ratio, score_cutoff=cutoff, limit=None)}

    def clear(self) -> None:
        """Forget the words remembered (a benchmark measures the work, not the memory)."""
        self.lookup.cache_clear()


class PhraseMatcher:
    """Finds named phrases in a tokenized message: every word of a phrase in order and
    adjacent, each word exact, the same without glued Arabic prefixes, or (long words) a near
    spelling."""

    def __init__(self, phrases: Mapping[str, Iterable[str]],
                 closest: Closest | None = None) -> None:
        self._phrases: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        vocabulary: set[str] = set()
        for name, items in phrases.items():
            for phrase in items:
                words = tuple(stem(word) for word in phrase.split())
                if words:
                    self._phrases.setdefault(words[0], []).append((name, words))
                    vocabulary.update(words)
        self._closest = closest or Closest(vocabulary)

    def find(self, tokens: list[str]) -> list[Found]:
        """Every phrase found, the longest and closest first; spans may overlap."""
        close = [self._closest.lookup(token) for token in tokens]
        found: list[Found] = []
        for start, candidates in enumerate(close):
            for first in candidates:
                for name, words in self._phrases.get(first, ()):
                    end = start + len(words)
                    if end > len(tokens):
                        continue
                    scores = [close[start + offset].get(word)
                              for offset, word in enumerate(words)]
                    if all(score is not None for score in scores):
                        total = sum(score or 0.0 for score in scores) / len(words)
                        found.append(Found(name, start, end, total))
        found.sort(key=lambda item: (-(item.end - item.start), -item.score, item.start))
        return found

    def best(self, tokens: list[str]) -> dict[str, Found]:
        """Per name, its best phrase found."""
        out: dict[str, Found] = {}
        for item in self.find(tokens):
            current = out.get(item.name)
            if current is None or item.score > current.score:
                out[item.name] = item
        return out
