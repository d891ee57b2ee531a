"""The catalogue's entities as the understanding step looks them up: exhibitors, products,
categories, cities, regions, labels, workshops and the fair's own practical topics, every
name folded and matched word by word: as typed, then near spellings (rapidfuzz: typos and
missing accents), the Arabizi consonant skeleton (zarbia, زرابي), the other language's word
for it (a product named by one word in each language: tapis, الزرابي) and the glossary's
(carpets). Built once per catalogue version; lookups only read it."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, process

from handlers.understanding.lexicon import (
    CACHED_WORDS,
    load_glossary,
    load_lexicon,
    min_similarity,
    stem,
)
from handlers.understanding.types import ProductMatch
from storage.catalogue import Catalogue, speaker_names, stand_order
from storage.repositories import CatalogueSnapshot
from storage.search import LABEL_WORDS, STOPWORDS, SearchEntry, entries_from_catalogue, skeleton
from storage.text import fold

# A product, category or place found through its skeleton or another language's word for it
# is less certain than one found by its letters.
SKELETON_FACTOR = 0.8
TRANSLATION_FACTOR = 0.9
# A catalogue word matched this well brings the glossary's other words for it.
GLOSSARY_FROM = 80.0
# Products listed: those within this many points of the closest one.
CLOSE_TO_THE_BEST = 25.0
# Share of an entity's own words a message must name for it to count (a name, a city...).
NAME_COVERAGE = 0.5
# The message's words looked up: the first ones that may name something.
MAX_TERMS = 8
# The words of a workshop's description that count: the long ones.
LONG_WORD = 6
# The least quality of a product match to be listed.
PRODUCT_QUALITY = 55.0
# A word of at most this many exhibitor names tells them apart.
DISTINCTIVE = 3
# A product or category matched this well is what a word means, even when it is in a name.
SOLD_SCORE = 70.0
# From this many distinct words, near spellings are looked for only among the words that share
# enough letter pairs with the message's word (a large fair has tens of thousands of words).
BIGRAM_INDEX_FROM = 3000


# One exhibitor's kind, in the singular: the message names someone ("la coopérative X").
NAME_WORDS = frozenset(fold(word) for word in (
    "cooperative", "coopérative", "coop", "association", "asso", "société", "entreprise",
    "تعاونية", "التعاونية", "جمعية", "الجمعية", "شركة", "الشركة", "t3awniya", "t3awnia",
    "ta3awniya", "jam3iya", "jam3ia", "charika", "cherika", "company"))


class Kind(enum.StrEnum):
    """What a catalogue word belongs to, and the placeholder it becomes for the classifier."""

    EXHIBITOR = "EXHIBITOR"
    PRODUCT = "PRODUCT"
    CATEGORY = "CATEGORY"
    CITY = "CITY"
    REGION = "REGION"
    LABEL = "LABEL"
    WORKSHOP = "WORKSHOP"
    TOPIC = "TOPIC"


_SOLD = frozenset(("PRODUCT", "CATEGORY", "CITY", "REGION", "LABEL"))
# When one word is several things, the placeholder it gets: the most specific first.
_PRECEDENCE = (Kind.WORKSHOP, Kind.TOPIC, Kind.PRODUCT, Kind.EXHIBITOR, Kind.CITY, Kind.LABEL,
               Kind.CATEGORY, Kind.REGION)


@dataclass(frozen=True, slots=True)
class WorkshopEntry:
    """A workshop as the understanding step needs it."""

    id: str
    title: Mapping[str, str]
    description: Mapping[str, str] = field(default_factory=dict)
    starts: dt.datetime | None = None
    language: str = "ar+fr"
    speaker: str = ""  # every script's name of the speaker, one a line


@dataclass(frozen=True, slots=True)
class InfoTopic:
    """A practical topic of the catalogue's `info:` section: its id, its name and the words
    people use for it (known topics need none: the lexicon knows them)."""

    id: str
    topic: Mapping[str, str] = field(default_factory=dict)
    keywords: tuple[str, ...] = ()


def info_topics(section: object) -> list[InfoTopic]:
    """The topics of a catalogue's `info:` section as CONTRACT writes it (a list of `{id,
    topic: {fr, ar}, keywords: [...], answer}`); what is not of that shape is left out."""
    topics: list[InfoTopic] = []
    for item in section if isinstance(section, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        topic = item.get("topic")
        names = {str(key): str(value) for key, value in topic.items()} \
            if isinstance(topic, dict) else {}
        keywords = item.get("keywords")
        words = tuple(str(word) for word in keywords) if isinstance(keywords, list) else ()
        topics.append(InfoTopic(item["id"], names, words))
    return topics


@dataclass(frozen=True, slots=True)
class FairCalendar:
    """When and where the fair is: days are resolved in its time zone."""

    timezone: str = "Africa/Casablanca"
    opens: dt.date | None = None
    closes: dt.date | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(slots=True)
class _Target:
    """One thing a word can name, and the folded words (per text) it is named by."""

    kind: Kind
    key: str
    texts: list[list[str]] = field(default_factory=list)
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Match:
    """A catalogue thing a message names: how well its words are named (quality, 0-100), how
    much of what the message names it is (score: quality times the share of the message's
    catalogue words it takes), and the message positions that name it."""

    kind: Kind
    key: str
    score: float
    terms: frozenset[int]
    quality: float = 0.0


@dataclass(frozen=True, slots=True)
class Lookup:
    """Everything a message names in the catalogue."""

    matches: tuple[Match, ...]
    products: tuple[ProductMatch, ...]
    placeholders: Mapping[int, Kind]

    def of(self, kind: Kind) -> list[Match]:
        return [match for match in self.matches if match.kind is kind]

    def best_quality(self, kind: Kind) -> float:
        return max((match.quality for match in self.matches if match.kind is kind),
                   default=0.0)

    def best(self, kind: Kind) -> float:
        return max((match.score for match in self.matches if match.kind is kind), default=0.0)


def _bigrams(word: str) -> set[str]:
    padded = f" {word} "
    return {padded[index:index + 2] for index in range(len(padded) - 1)}


class _BigramIndex:
    """The words sharing letter pairs with a word: those that can be at least so alike."""

    def __init__(self, words: Sequence[str]) -> None:
        # NumPy (about 12 MB) only in a process serving a fair that large.
        import numpy

        self.words = list(words)
        postings: dict[str, list[int]] = {}
        for index, word in enumerate(self.words):
            for gram in _bigrams(word):
                postings.setdefault(gram, []).append(index)
        self._postings = {gram: numpy.array(items, dtype=numpy.int32)
                          for gram, items in postings.items()}

    def candidates(self, word: str, cutoff: float) -> list[str]:
        """Words that may be `cutoff` alike (fuzz.ratio): an insertion or deletion changes at
        most two of a word's letter pairs, and so many edits are all the cutoff allows."""
        import numpy

        grams = [self._postings[gram] for gram in _bigrams(word) if gram in self._postings]
        edits = math.floor((1.0 - cutoff / 100.0) * (2 * len(word) + 1))
        need = max(1, len(word) + 1 - 2 * edits)
        if len(grams) < need:
            return []
        counts = numpy.bincount(numpy.concatenate(grams), minlength=len(self.words))
        return [self.words[index] for index in numpy.flatnonzero(counts >= need)]


def _with_women_led(entry: SearchEntry, women_led: bool) -> SearchEntry:
    """The entry with the women-led label when the catalogue gives it as a flag."""
    if not women_led or "women-led" in entry.labels:
        return entry
    return replace(entry, labels=("women-led", *entry.labels))


def _label_names(label: str) -> tuple[str, ...]:
    """The lexicon's names for a catalogue label: its own, and its first part (women-led is
    the lexicon's "women")."""
    return (label, label.split("-")[0]) if "-" in label else (label,)


# The kinds of exhibitor in Arabizi, which storage.search's stopwords do not hold.
IGNORED = STOPWORDS | frozenset((
    "t3awniya", "t3awnia", "t3awniyat", "t3awniyate", "ta3awniya", "jam3iya", "jam3ia",
    "jam3iyat", "charika", "cherika", "chirka", "cooperatives", "exposant", "exposants",
    # Words of every chat that sound like a place ("ndir" is not Nador, "robot" not Rabat).
    "ndir", "dir", "kandir", "ndiro", "diri", "robot", "rbot", "robo", "bot"))


def _words(text: str) -> list[str]:
    return [stem(word) for word in fold(text).split()
            if word not in IGNORED and stem(word) not in IGNORED]


class Gazetteer:
    """Every catalogue entity's words, prepared once; lookups only read it."""

    def __init__(self, entries: Sequence[SearchEntry], workshops: Sequence[WorkshopEntry] = (),
                 info_topics: Sequence[InfoTopic] = (),
                 calendar: FairCalendar | None = None) -> None:
        self.calendar = calendar or FairCalendar()
        self.entries = tuple(entries)
        self.stands = frozenset(entry.stand for entry in self.entries)
        self.workshops = tuple(workshops)
        self._workshop = {workshop.id: workshop for workshop in self.workshops}
        self.info_topics = tuple(info_topics)
        self._stand_of = {entry.exhibitor_id: entry.stand for entry in self.entries}
        self._targets: list[_Target] = []
        self._product_text: dict[int, Mapping[str, str]] = {}
        self._product_position: dict[str, int] = {}
        self._sellers: dict[int, list[str]] = {}
        self._sold_at: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._vocabulary: dict[str, list[tuple[int, int]]] = {}  # word -> (target, text) pairs
        self._names: dict[str, list[tuple[int, int]]] = {}  # distinctive word -> (target, text)
        self._rarest: dict[tuple[int, int], str] = {}
        self._skeletons: dict[str, set[str]] = {}
        self._translations: dict[str, set[str]] = {}
        self._build()
        self._words = sorted(self._vocabulary)
        self._grams = _BigramIndex(self._words) if len(self._words) > BIGRAM_INDEX_FROM else None
        # People use the same words again: their matches are remembered, per catalogue.
        self._similar = functools.lru_cache(maxsize=CACHED_WORDS)(self._similar_uncached)
        lexicon = load_lexicon()
        # Words that say what is asked rather than what about: never taken for catalogue names
        # (an exhibitor named "... programme ..." is not the programme), unless a product,
        # category, place, label or workshop is called so.
        named = {word for target in self._targets
                 if target.kind not in (Kind.EXHIBITOR,)
                 for text in target.texts for word in text}
        asking = (lexicon.words("intents", exclude=("stands", "stand", "unknown"))
                  | lexicon.words("info_topics") | lexicon.words("days")
                  | lexicon.words("languages") | lexicon.words("request_words"))
        self._asking = frozenset(stem(word) for word in asking)
        self.function_words = self._asking - named

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue, info_topics: Sequence[InfoTopic] = ()
                       ) -> Gazetteer:
        """From a validated catalogue file (no database needed)."""
        fair = catalogue.fair
        zone = ZoneInfo(fair.timezone) if fair else ZoneInfo("Africa/Casablanca")
        workshops = [WorkshopEntry(
            id=item.id, title=item.title.as_dict(),
            description=item.description.as_dict() if item.description else {},
            starts=item.starts if item.starts.tzinfo else item.starts.replace(tzinfo=zone),
            language=item.language,
            speaker="\n".join(dict.fromkeys(speaker_names(item.speaker).values())))
            for item in catalogue.workshops or []]
        calendar = (FairCalendar(fair.timezone, fair.opens, fair.closes) if fair
                    else FairCalendar())
        women = {item.id for item in catalogue.exhibitors or [] if item.women_led}
        entries = [_with_women_led(entry, entry.exhibitor_id in women)
                   for entry in entries_from_catalogue(catalogue)]
        return cls(entries, workshops, info_topics, calendar)

    @classmethod
    def from_snapshot(cls, snapshot: CatalogueSnapshot, info_topics: Sequence[InfoTopic] = ()
                      ) -> Gazetteer:
        """From the catalogue the bot serves (storage.repositories.CatalogueSnapshot)."""
        workshops = [WorkshopEntry(id=view.key, title=view.title,
                                   description=view.description or {}, starts=view.starts_at,
                                   language=view.language,
                                   speaker="\n".join(dict.fromkeys(view.speaker.values())))
                     for view in snapshot.workshops if not view.cancelled]
        fair = snapshot.fair
        women = {exhibitor.key for stand in snapshot.stands.values()
                 for exhibitor in stand.exhibitors if exhibitor.women_led}
        entries = [_with_women_led(entry, entry.exhibitor_id in women)
                   for entry in snapshot.index.entries]
        return cls(entries, workshops, info_topics,
                   FairCalendar(fair.timezone, fair.opens, fair.closes))

    def _target(self, kind: Kind, key: str, texts: Iterable[str], weight: float = 1.0) -> int:
        position = len(self._targets)
        target = _Target(kind, key, weight=weight)
        for text in texts:
            words = _words(text)
            if weight < 1.0:
                # A description's short words (prix, رقم) say little about what it is about.
                words = [word for word in words if len(word) >= LONG_WORD]
            if not words:
                continue
            target.texts.append(words)
            for word in words:
                postings = self._vocabulary.setdefault(word, [])
                # A name is looked up through its rarest word only (see _index_names).
                if kind is not Kind.EXHIBITOR:
                    postings.append((position, len(target.texts) - 1))
        self._targets.append(target)
        return position

    def _index_names(self) -> None:
        """Each exhibitor name under its distinctive words (those of few names, at least its
        rarest): a name counts only when the message has one, and a word common to thousands
        of names ("poterie") costs nothing."""
        counts: dict[str, int] = {}
        for target in self._targets:
            if target.kind is Kind.EXHIBITOR:
                for text in target.texts:
                    for word in set(text):
                        counts[word] = counts.get(word, 0) + 1
        for position, target in enumerate(self._targets):
            if target.kind is Kind.EXHIBITOR:
                for index, text in enumerate(target.texts):
                    rarest = min(text, key=lambda word: (counts[word], word))
                    self._rarest[(position, index)] = rarest
                    for word in set(text):
                        if word == rarest or counts[word] <= DISTINCTIVE:
                            self._names.setdefault(word, []).append((position, index))

    def _build(self) -> None:
        products: dict[str, int] = {}
        places: dict[tuple[Kind, str], int] = {}
        categories: dict[str, int] = {}
        labels: set[str] = set()
        for entry in self.entries:
            self._target(Kind.EXHIBITOR, entry.exhibitor_id,
                         [*entry.name.values(), *entry.aliases])
            for product in entry.products:
                key = fold(product.get("fr") or next(iter(product.values()), ""))
                position = products.get(key)
                if position is None:
                    position = products[key] = self._target(Kind.PRODUCT, key, product.values())
                    self._product_position[key] = position
                    self._product_text[position] = product
                    self._learn_translation(product)
                sellers = self._sellers.setdefault(position, [])
                if entry.exhibitor_id not in sellers:
                    sellers.append(entry.exhibitor_id)
            for kind, name in ((Kind.CITY, entry.city), (Kind.REGION, entry.region)):
                key = fold(name.get("fr") or name.get("ar") or "")
                if key and (kind, key) not in places:
                    places[(kind, key)] = self._target(kind, key, name.values())
            if entry.category and entry.category not in categories:
                categories[entry.category] = self._target(
                    Kind.CATEGORY, entry.category, entry.category_name.values())
            labels.update(entry.labels)
        lexicon = load_lexicon()
        for label in sorted(labels):
            words = (*LABEL_WORDS.get(label, ()),
                     *(phrase for name in _label_names(label)
                       for phrase in lexicon.section("labels").get(name, ())))
            self._target(Kind.LABEL, label, words)
        for workshop in self.workshops:
            self._target(Kind.WORKSHOP, workshop.id,
                         [*workshop.title.values(), *workshop.speaker.splitlines()])
            if workshop.description:
                self._target(Kind.WORKSHOP, workshop.id, workshop.description.values(), 0.7)
        for topic in self.info_topics:
            self._target(Kind.TOPIC, topic.id, [*topic.topic.values(), *topic.keywords])
        self._index_names()
        self._sold_at = {
            position: (tuple(sellers), tuple(sorted({self._stand_of[seller] for seller in sellers},
                                                    key=stand_order)))
            for position, sellers in self._sellers.items()}
        # Sounds only for what people spell many ways (zarbia, l3sel, tamwil): exhibitors are
        # found by their letters, or "test" would be a cooperative Tassaout.
        sounding = {word for target in self._targets
                    if target.kind is not Kind.EXHIBITOR and target.weight >= 1.0
                    for text in target.texts for word in text}
        for word in sorted(sounding):
            key = skeleton(word)
            if len(key) >= 3:
                self._skeletons.setdefault(key, set()).add(word)

    def _learn_translation(self, product: Mapping[str, str]) -> None:
        """A product named by one word in each language teaches that the words are one thing
        (tapis and الزرابي): a message naming one finds products named by the other."""
        single = [words[0] for words in (_words(text) for text in product.values())
                  if len(words) == 1]
        for word in single:
            self._translations.setdefault(word, set()).update(
                other for other in single if other != word)

    def workshop(self, workshop_id: str) -> WorkshopEntry | None:
        """A workshop, by its id."""
        return self._workshop.get(workshop_id)

    def stand_of(self, exhibitor_id: str) -> str | None:
        """The stand of an exhibitor, by its id."""
        return self._stand_of.get(exhibitor_id)

    # -- lookups ------------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget the words remembered (a benchmark measures the work, not the memory)."""
        self._similar.cache_clear()

    def _similar_uncached(self, word: str) -> dict[str, float]:
        """Catalogue words a message word may stand for, with a similarity (0-100)."""
        found: dict[str, float] = {}
        if word in self._vocabulary:
            found[word] = 100.0
        else:
            cutoff = min_similarity(word)
            if cutoff < 100.0:
                choices = self._grams.candidates(word, cutoff) if self._grams else self._words
                for match, score, _ in process.extract(word, choices, scorer=fuzz.ratio,
                                                       score_cutoff=cutoff, limit=10):
                    found[match] = score
        if len(word) >= 4:
            for match in self._skeletons.get(skeleton(word), ()):
                score = 100.0 * SKELETON_FACTOR
                if found.get(match, 0.0) < score:
                    found[match] = score
        glossary = load_glossary()
        # The glossary's words for the message's word, or for the catalogue words it matched
        # well ("carpets" and "zrabi" are the catalogue's "tapis").
        sources = [(word, 100.0), *((match, score) for match, score in found.items()
                                    if score >= GLOSSARY_FROM)]
        for source, score in sources:
            for other in glossary.get(source, ()):
                if other in self._vocabulary and found.get(other, 0.0) < (
                        score * TRANSLATION_FACTOR):
                    found[other] = score * TRANSLATION_FACTOR
        for match, score in list(found.items()):
            for other in self._translations.get(match, ()):
                if found.get(other, 0.0) < score * TRANSLATION_FACTOR:
                    found[other] = score * TRANSLATION_FACTOR
        return found

    def terms(self, tokens: Sequence[str]) -> list[tuple[int, str]]:
        """The message's words that may name catalogue things, with their position."""
        out: list[tuple[int, str]] = []
        for position, token in enumerate(tokens):
            word = stem(token)
            if (token in IGNORED or word in IGNORED or word in self.function_words
                    or token in self.function_words or word.isdigit()):
                continue
            out.append((position, word))
        return out[:MAX_TERMS]

    def lookup(self, tokens: Sequence[str], skip: frozenset[int] = frozenset()) -> Lookup:
        """What the message's words (folded tokens) name; the positions in `skip` are taken
        (a day, a stand number...). With "coopérative", "جمعية"... (one of them), a word that
        is a name and a product is the name."""
        terms = [(position, word) for position, word in self.terms(tokens)
                 if position not in skip]
        # target -> text -> per target word its best (similarity, message position)
        hits: dict[int, dict[int, dict[str, tuple[float, int]]]] = {}
        similar = [(position, self._similar(word)) for position, word in terms]
        names: set[tuple[int, int]] = set()
        for position, found in similar:
            for match, similarity in found.items():
                for target_index, text in self._vocabulary[match]:
                    best = hits.setdefault(target_index, {}).setdefault(text, {})
                    if best.get(match, (0.0, -1))[0] < similarity:
                        best[match] = (similarity, position)
                names.update(self._names.get(match, ()))
        for target_index, text in names:
            best = hits.setdefault(target_index, {}).setdefault(text, {})
            for word in self._targets[target_index].texts[text]:
                for position, found in similar:
                    alike = found.get(word, 0.0)
                    if alike > best.get(word, (0.0, -1))[0]:
                        best[word] = (alike, position)
        if not hits:
            return Lookup((), (), {})
        asked = {position for by_text in hits.values() for words in by_text.values()
                 for _, position in words.values()}
        matches: list[Match] = []
        for target_index, by_text in hits.items():
            target = self._targets[target_index]
            quality, share, used = self._score(target_index, by_text, len(asked))
            if quality > 0.0:
                matches.append(Match(target.kind, target.key, quality * share, used, quality))
        matches = self._merge(matches)
        products = self._products(matches)
        naming = any(token in NAME_WORDS for token in tokens)
        return Lookup(tuple(sorted(matches, key=lambda m: (-m.score, m.kind, m.key))),
                      products, self._placeholders(matches, naming))

    def _score(self, target_index: int, by_text: dict[int, dict[str, tuple[float, int]]],
               asked: int) -> tuple[float, float, frozenset[int]]:
        """How well the message names a target (quality, 0-100: the words' similarity, a little
        more when it is named whole), the share of the message's catalogue words it takes,
        and those words' positions; through the target's best text."""
        target = self._targets[target_index]
        best = (0.0, 0.0, frozenset[int]())
        for text_index, words in by_text.items():
            own = target.texts[text_index]
            per_position: dict[int, float] = {}
            for similarity, position in words.values():
                per_position[position] = max(per_position.get(position, 0.0), similarity)
            whole = len(words) / len(own)
            # An exhibitor is named by half its name, or by its rarest word ("tamkine").
            rarest = self._rarest.get((target_index, text_index))
            if target.kind is Kind.EXHIBITOR and whole < NAME_COVERAGE and (
                    words.get(rarest or "", (0.0, -1))[0] < 90.0):
                continue
            if target.kind in (Kind.CITY, Kind.REGION, Kind.CATEGORY) and (
                    whole < NAME_COVERAGE):
                continue
            # The lexicon's phrases for labels and the fair's topic words count whole.
            if target.kind in (Kind.LABEL, Kind.TOPIC) and whole < 1.0:
                continue
            # A description is about what it says in so many words ("comptabilité"), not
            # what a near spelling of them means ("change" is not "échange").
            if target.weight < 1.0 and min(per_position.values()) < 95.0:
                continue
            # Words people use to ask (bonne in "bonne journée") name nothing alone.
            if target.kind not in (Kind.LABEL, Kind.TOPIC) and all(
                    word in self._asking for word in words):
                continue
            similarity = sum(per_position.values()) / len(per_position)
            quality = similarity * (0.85 + 0.15 * whole) * target.weight
            share = len(per_position) / max(asked, 1)
            if quality * share > best[0] * best[1]:
                best = (quality, share, frozenset(per_position))
        return best

    @staticmethod
    def _merge(matches: list[Match]) -> list[Match]:
        """One match per (kind, key): a workshop's title and its description are one workshop."""
        merged: dict[tuple[Kind, str], Match] = {}
        for match in matches:
            current = merged.get((match.kind, match.key))
            if current is None or match.score > current.score:
                merged[(match.kind, match.key)] = match
        return list(merged.values())

    def _products(self, matches: list[Match]) -> tuple[ProductMatch, ...]:
        found = [match for match in matches if match.kind is Kind.PRODUCT]
        if not found:
            return ()
        top = max(match.score for match in found)
        positions = {self._product_position[match.key]: match for match in found}
        out: list[ProductMatch] = []
        for position, match in positions.items():
            if match.score < top - CLOSE_TO_THE_BEST or match.quality < PRODUCT_QUALITY:
                continue
            sellers, stands = self._sold_at[position]
            text = self._product_text[position]
            out.append(ProductMatch(text.get("fr") or next(iter(text.values())),
                                    round(match.score, 1), sellers, stands))
        out.sort(key=lambda product: (-product.score, product.text))
        return tuple(out)

    @staticmethod
    def _placeholders(matches: list[Match], naming: bool) -> dict[int, Kind]:
        """Per message position, what the classifier sees instead of the word."""
        out: dict[int, Kind] = {}
        # What is sold (or where from) before who sells it: "zarbia" is an alias of one
        # cooperative and the carpets eight sell; unless the message says it names someone.
        # A name of two words or more written out ("Argane Tamanar") names its exhibitor.
        ranked = sorted(matches, key=lambda m: (
            not (m.kind is Kind.EXHIBITOR and len(m.terms) >= 2 and m.quality >= 95.0),
            naming or not (m.kind in _SOLD and m.quality >= SOLD_SCORE),
            -m.score, _PRECEDENCE.index(m.kind)))
        for match in ranked:
            for position in match.terms:
                out.setdefault(position, match.kind)
        return out
