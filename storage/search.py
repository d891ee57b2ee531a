"""The stand finder's search: an in-memory index of every exhibitor, forgiving of how people type.

Visitors write the same thing many ways: French with or without accents, Arabic with or without
diacritics and hamza, Darija in Latin letters with digits for the letters Latin lacks (3 = ع,
7 = ح, 9 = ق), typos, a product or a city rather than a name. So the index and the query go
through the same `fold()`, lose the words that say nothing (coopérative, تعاونية, fin, wach...),
and are compared in tiers, the most certain first:

1. a stand number (`A12`, `a-12`, `A١٢`, `ب ١٩`): that stand's exhibitors;
2. the whole query is an exhibitor's name or alias;
3. fuzzy matching (rapidfuzz) of each query word against the words of every exhibitor's names,
   aliases, products, city, region, category and labels, in both scripts. A name counts more
   than a product, a product more than a city; an exhibitor matching more of the query's words
   ranks higher;
4. for a word whose letters found nothing close, its consonant skeleton, on which "zarbia",
   "zerbiya" and "زربية" (or "l3assal" and "العسل") are one key. Worth less than letters, and
   ranked with tier 3 by score: an exhibitor matching every word, one by its skeleton, beats one
   matching a single word by its letters.

Matching works word by word against the index's vocabulary (each distinct word once, with the
exhibitors and fields it comes from), so the cost of a query grows with the vocabulary rather
than with the number of exhibitors. Everything is prepared by `SearchIndex.build`; the index is
rebuilt whenever the catalogue changes, and is never modified afterwards.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from storage.catalogue import Catalogue, normalize_stand_number, stand_order
from storage.text import fold

# ---------------------------------------------------------------------------------------------
# Folding (`fold` itself is storage.text's, the one every part of the bot compares text in)

# Words that say nothing about which stand is meant, in folded form: French, English, Arabic,
# Darija in both scripts, and the kinds of exhibitor (every name starts with one).
_STOPWORDS = """
    le la les l un une des de du d en et a au aux pour par sur avec chez ou est sont c ce cet
    cette ces qui que quoi quel quelle quels quelles je j me m moi on il elle y se s n ne pas
    cherche chercher trouve trouver trouvez voir veux voudrais acheter achete vend vendent
    vendez vente stand stands salon exposant exposants produit produits svp merci bonjour
    bonsoir salut plait coopérative coopératives cooperative cooperatives coop coops
    association associations assoc asso société sarl groupement institution al el
    where is the a an of from for with which who what find looking want buy please hi hello
    fin fen fine feen fein wach wash ach achno chno kayn kayna kaynin kain kaina bghit bgheet
    bghina dyal dial diyal dyalhom fi f fih mn men m3a ana hna lli li chi shi 3afak afak
    3andkom 3endkom salam slm
    تعاونية تعاونيات التعاونية جمعية جمعيات الجمعية شركة مؤسسة رواق الرواق جناح الجناح معرض
    المعرض فين اين أين اش شنو واش كاين كاينة بغيت ديال في من الى إلى على عن و او أو هل ما
    انا أنا اريد أريد ابحث أبحث عند لدى مع هذا هذه ذلك التي الذي شي فيه السلام عليكم من فضلك
    """
STOPWORDS = frozenset(fold(word) for word in _STOPWORDS.split())

_ARABIC_ARTICLES = ("وال", "بال", "فال", "كال", "ال", "لل")


def _is_arabic(word: str) -> bool:
    return "\u0600" <= word[0] <= "\u06ff"


def _stem(word: str) -> str:
    """An Arabic word without its article and the prepositions glued to it (الزربية, للزربية,
    والزربية -> زربية); other words as they are."""
    if _is_arabic(word):
        for prefix in _ARABIC_ARTICLES:
            if word.startswith(prefix) and len(word) - len(prefix) >= 2:
                return word[len(prefix):]
    return word


def terms(text: str) -> list[str]:
    """The words of `text` that count for search: folded, without stopwords or Arabic article."""
    out: list[str] = []
    for word in fold(text).split():
        if word in STOPWORDS:
            continue
        stem = _stem(word)
        if stem not in STOPWORDS:
            out.append(stem)
    return out


# A message may be 2,000 characters long, and fuzzy matching costs the same for every word of
# it: search reads only the start of a query, and a few distinct words of it, so that the worst
# message costs a few milliseconds of the event loop rather than tens (bench/search.py). The
# longest real queries (a whole sentence about honey in Khouribga) use 77 characters, 4 words.
MAX_QUERY_CHARS = 160
MAX_QUERY_TERMS = 6


def query_head(query: str) -> str:
    """The part of a query that search reads: its first MAX_QUERY_CHARS characters, without
    the word they cut in two."""
    if len(query) <= MAX_QUERY_CHARS:
        return query
    head = query[:MAX_QUERY_CHARS + 1]
    return head.rsplit(None, 1)[0] if not head[-1].isspace() else head


def query_terms(query: str) -> list[str]:
    """The terms search matches for a query: those of its head, each once, at most
    MAX_QUERY_TERMS."""
    return list(dict.fromkeys(terms(query_head(query))))[:MAX_QUERY_TERMS]


# ---------------------------------------------------------------------------------------------
# Consonant skeleton

# Latin, Arabizi digits and Arabic letters to one class per consonant sound; vowels, w/y and
# their Arabic seats (ا و ي) and hamza carry nothing and are left out. g, k, q, c and their
# Arabic letters are one class: Moroccan spellings swap them freely (Agadir, أكادير; Guelmim,
# كلميم). ع keeps a class of its own (3): Arabizi writes it, and dropping it would make short
# words like عسل and سلا the same key.
_ARABIC_CLASS = {
    "ب": "b", "پ": "b", "ت": "t", "ط": "t", "ث": "t", "ج": "j", "چ": "j", "ح": "h", "ه": "h",
    "خ": "x", "د": "d", "ذ": "d", "ض": "d", "ظ": "d", "ر": "r", "ز": "z", "ژ": "z", "س": "s",
    "ص": "s", "ش": "S", "ع": "3", "غ": "k", "ف": "f", "ڤ": "f", "ق": "k", "ك": "k", "گ": "k",
    "ڭ": "k", "ل": "l", "م": "m", "ن": "n",
}
_LATIN_PAIRS = {"ch": "S", "sh": "S", "kh": "x", "gh": "k", "th": "t", "dh": "d", "dj": "j",
                "ph": "f", "qu": "k", "ck": "k"}
_LATIN_CLASS = {
    "b": "b", "p": "b", "t": "t", "6": "t", "j": "j", "h": "h", "7": "h", "8": "h", "x": "x",
    "5": "x", "d": "d", "r": "r", "z": "z", "s": "s", "3": "3", "k": "k", "q": "k", "g": "k",
    "c": "k", "9": "k", "f": "f", "v": "f", "l": "l", "m": "m", "n": "n",
}
_SOFT = "eiy"


def skeleton(word: str) -> str:
    """The consonant key of one folded word: `zarbia`, `zerbiya`, `زربية` -> `zrb`."""
    if not word or word.isdigit():
        return ""
    classes: list[str] = []
    if _is_arabic(word):
        word = _stem(word)
        for index, ch in enumerate(word):
            # A final ه is most often a ta marbuta, which Latin spellings write as a vowel.
            if ch == "ه" and index == len(word) - 1 and index > 0:
                continue
            classes.append(_ARABIC_CLASS.get(ch, ""))
    else:
        # Darija's article glued to the word (l3assal, lbaraka): l then no vowel.
        if len(word) > 3 and word[0] == "l" and word[1] not in "aeiouy":
            word = word[1:]
        index = 0
        while index < len(word):
            pair = word[index:index + 2]
            if pair in _LATIN_PAIRS:
                classes.append(_LATIN_PAIRS[pair])
                index += 2
                continue
            ch = word[index]
            following = word[index + 1:index + 2]
            # French soft c and g: cèdre, zellige.
            if ch == "c" and following and following in _SOFT:
                classes.append("s")
            elif ch == "g" and following and following in _SOFT:
                classes.append("j")
            else:
                classes.append(_LATIN_CLASS.get(ch, ""))
            index += 1
    key: list[str] = []
    for cls in classes:
        if cls and (not key or key[-1] != cls):
            key.append(cls)
    return "".join(key)


# ---------------------------------------------------------------------------------------------
# Entries and hits


@dataclass(frozen=True, slots=True)
class SearchEntry:
    """One exhibitor at one stand, as the search sees it."""

    stand: str
    exhibitor_id: str
    name: Mapping[str, str]
    aliases: tuple[str, ...] = ()
    products: tuple[Mapping[str, str], ...] = ()
    city: Mapping[str, str] = field(default_factory=dict)
    region: Mapping[str, str] = field(default_factory=dict)
    category: str | None = None
    category_name: Mapping[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()


class Tier(enum.IntEnum):
    """How a hit was found, the most certain first."""

    STAND = 0
    NAME = 1
    FUZZY = 2
    SKELETON = 3


@dataclass(frozen=True, slots=True)
class Hit:
    stand: str
    exhibitor_id: str
    score: float
    tier: Tier


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The closest name to a query that found nothing: "did you mean ...?"."""

    stand: str
    exhibitor_id: str
    name: Mapping[str, str]
    score: float


def entries_from_catalogue(catalogue: Catalogue) -> list[SearchEntry]:
    """Every exhibitor with a stand, from a validated catalogue file (no database needed)."""
    categories = {category.id: category.name.as_dict() for category in catalogue.categories or []}
    return [
        SearchEntry(
            stand=exhibitor.stand, exhibitor_id=exhibitor.id, name=exhibitor.name.as_dict(),
            aliases=tuple(exhibitor.aliases),
            products=tuple(product.as_dict() for product in exhibitor.products),
            city=exhibitor.city.as_dict(), region=exhibitor.region.as_dict(),
            category=exhibitor.category,
            category_name=categories.get(exhibitor.category or "", {}),
            labels=tuple(exhibitor.labels),
        )
        for exhibitor in catalogue.exhibitors or []
        if exhibitor.stand is not None
    ]


# ---------------------------------------------------------------------------------------------
# The index

# How much a perfect match in each field is worth: the name says who, a product what they sell,
# the city where they come from; region, category and labels are shared by many.
NAME_WEIGHT = 1.0
PRODUCT_WEIGHT = 0.9
CITY_WEIGHT = 0.85
CATEGORY_WEIGHT = 0.7
REGION_WEIGHT = 0.6
LABEL_WEIGHT = 0.6
# The skeleton throws information away: a match on it is worth less than the same on letters.
SKELETON_WEIGHT = 0.8
# A word whose letters match this well (0-100) is not looked up by its skeleton.
SKELETON_BELOW = 90.0
# When a query word is in the catalogue as typed, how alike another word must be to count too.
SPELT_RIGHT_KEEPS = 88.0
# Below this score (0-100) an exhibitor is not a result.
THRESHOLD = 60.0
SUGGESTION_THRESHOLD = 70.0

# Words visitors use for the catalogue's labels.
LABEL_WORDS: dict[str, tuple[str, ...]] = {
    "organic": ("bio", "biologique", "organic", "عضوي", "بيو"),
    "women-led": ("femmes", "femme", "feminine", "women", "نساء", "نسائيه", "نسويه"),
    "handmade": ("artisanal", "artisanale", "handmade", "يدوي", "يدويه"),
    "fair-trade": ("equitable", "عادله"),
    "certified-origin": ("igp", "aop", "terroir", "منشا"),
}

_STAND_IN_QUERY = re.compile(r"(?<![^\W\d_])([a-d]|[a-z]{1,3}|[ابجد])\s?(\d{1,4})(?!\w)")
# Stand letters written in Arabic, in abjad order (أ ب ج د), as the sample fair's halls are.
_ABJAD = {"ا": "A", "ب": "B", "ج": "C", "د": "D"}

Postings = dict[int, float]


def _min_similarity(term: str) -> float:
    """How alike a word must be to count: exact when short (one letter changes a short word
    into another), about one edit in five otherwise."""
    if len(term) <= 3:
        return 100.0
    if len(term) <= 5:
        return 75.0
    return 72.0


def _skeleton_similarity(key: str) -> float:
    """Skeletons are short and already forgive vowels and spelling: they must be equal, but
    for long ones, which may still lose a consonant to a typo."""
    return 100.0 if len(key) <= 4 else 85.0


def _field_texts(entry: SearchEntry) -> Iterable[tuple[str, float]]:
    for text in (*entry.name.values(), *entry.aliases):
        yield text, NAME_WEIGHT
    for product in entry.products:
        for text in product.values():
            yield text, PRODUCT_WEIGHT
    for text in entry.city.values():
        yield text, CITY_WEIGHT
    for text in entry.region.values():
        yield text, REGION_WEIGHT
    for text in entry.category_name.values():
        yield text, CATEGORY_WEIGHT
    for label in entry.labels:
        for text in LABEL_WORDS.get(label, ()):
            yield text, LABEL_WEIGHT


class _Vocabulary:
    """Distinct words (or skeletons) and, for each, the exhibitors with the best field weight."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.postings: list[Postings] = []
        self._position: dict[str, int] = {}

    def add(self, word: str, entry: int, weight: float) -> None:
        position = self._position.get(word)
        if position is None:
            position = self._position[word] = len(self.words)
            self.words.append(word)
            self.postings.append({})
        postings = self.postings[position]
        if postings.get(entry, 0.0) < weight:
            postings[entry] = weight

    def exact(self, word: str) -> Postings:
        position = self._position.get(word)
        return self.postings[position] if position is not None else {}

    def matches(self, word: str, cutoff: float) -> list[tuple[float, Postings]]:
        """The postings of every word at least `cutoff` alike, with that similarity."""
        if cutoff >= 100.0:
            postings = self.exact(word)
            return [(100.0, postings)] if postings else []
        found = process.extract(word, self.words, scorer=fuzz.ratio, score_cutoff=cutoff,
                                limit=None)
        if found and found[0][1] >= 100.0:
            # The word is in the catalogue as typed, so it is not a typo: other words merely
            # like it (tiznit, tizi) are other things. Plurals and one-letter variants stay.
            found = [item for item in found if item[1] >= SPELT_RIGHT_KEEPS]
        # A near spelling is a weaker sign than the same word: half as much again off the score
        # (so "tizi" does not pass for "tiznit" as easily as a typo in a long word does).
        return [(score - (100.0 - score) / 2, self.postings[position])
                for _, score, position in found]


def _best(matches: list[tuple[float, Postings]], factor: float = 1.0) -> dict[int, float]:
    """Per exhibitor, its best similarity times field weight over the matched words."""
    best: dict[int, float] = {}
    for similarity, postings in matches:
        scale = similarity * factor
        if not best:
            best = {entry: weight * scale for entry, weight in postings.items()}
            continue
        for entry, weight in postings.items():
            score = weight * scale
            if score > best.get(entry, 0.0):
                best[entry] = score
    return best


def _combine(per_term: list[dict[int, float]], count: int) -> dict[int, float]:
    """One score per exhibitor from its per-word scores: half its best word, half the average
    over the `count` words of the query that match anything at all (a word the catalogue does
    not know says nothing for or against anyone), so matching more of them ranks higher."""
    totals: dict[int, float] = {}
    tops: dict[int, float] = {}
    for scores in per_term:
        for entry, score in scores.items():
            totals[entry] = totals.get(entry, 0.0) + score
            if score > tops.get(entry, 0.0):
                tops[entry] = score
    return {entry: (tops[entry] + totals[entry] / count) / 2 for entry in totals}


@dataclass(frozen=True, slots=True)
class _Scored:
    fuzzy: dict[int, float]
    combined: dict[int, float]


class SearchIndex:
    """Every exhibitor's searchable words, prepared once; queries only read it."""

    def __init__(self, entries: Sequence[SearchEntry]) -> None:
        self.entries = tuple(entries)
        self._words = _Vocabulary()
        self._skeletons = _Vocabulary()
        self._names: dict[str, list[int]] = {}
        self._stands: dict[str, list[int]] = {}
        self._name_choices: list[str] = []
        self._name_owner: list[int] = []
        self._categories: dict[str, Mapping[str, str]] = {}
        # Products, cities and regions repeat across exhibitors: fold each text, and take each
        # word's skeleton, once.
        folded: dict[str, list[str]] = {}
        keys: dict[str, str] = {}
        for position, entry in enumerate(self.entries):
            self._add(position, entry, folded, keys)

    @classmethod
    def build(cls, entries: Iterable[SearchEntry]) -> SearchIndex:
        return cls(list(entries))

    def _add(self, position: int, entry: SearchEntry, folded: dict[str, list[str]],
             keys: dict[str, str]) -> None:
        self._stands.setdefault(entry.stand, []).append(position)
        if entry.category is not None:
            self._categories.setdefault(entry.category, entry.category_name)
        for text in (*entry.name.values(), *entry.aliases):
            key = " ".join(terms(text))
            if key:
                self._names.setdefault(key, []).append(position)
                self._name_choices.append(key)
                self._name_owner.append(position)
        for text, weight in _field_texts(entry):
            words = folded.get(text)
            if words is None:
                words = folded[text] = terms(text)
            for word in words:
                self._words.add(word, position, weight)
                sound = keys.get(word)
                if sound is None:
                    sound = keys[word] = skeleton(word)
                if len(sound) >= 2:
                    self._skeletons.add(sound, position, weight)

    # -- queries ------------------------------------------------------------------------------

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """The best exhibitors for `query`, the most certain tier first, then by score, then
        by stand number."""
        found: dict[int, Hit] = {}
        for position in self._stand_matches(query):
            entry = self.entries[position]
            found[position] = Hit(entry.stand, entry.exhibitor_id, 100.0, Tier.STAND)
        words = query_terms(query)
        if words:
            for position in self._names.get(" ".join(words), ()):
                entry = self.entries[position]
                found.setdefault(position, Hit(entry.stand, entry.exhibitor_id, 100.0,
                                               Tier.NAME))
            scored = self._score(words)
            for position, score in scored.combined.items():
                if position in found:
                    continue
                fuzzy = scored.fuzzy.get(position, 0.0)
                if fuzzy >= THRESHOLD:
                    hit = Hit(self.entries[position].stand, self.entries[position].exhibitor_id,
                              round(score, 1), Tier.FUZZY)
                elif score >= THRESHOLD:
                    hit = Hit(self.entries[position].stand, self.entries[position].exhibitor_id,
                              round(score, 1), Tier.SKELETON)
                else:
                    continue
                found[position] = hit
        # Past the exact tiers, the score decides: an exhibitor matching every word, one of them
        # only by its skeleton, beats one matching a single word by its letters.
        ranked = sorted(found.values(), key=lambda hit: (
            min(hit.tier, Tier.FUZZY), -hit.score, stand_order(hit.stand), hit.exhibitor_id))
        return ranked[:limit]

    def categories_like(self, query: str, limit: int = 3) -> list[str]:
        """Category ids to offer when a search found nothing: those whose exhibitors came
        closest to the query, or every category (in the order the entries first name them)
        when nothing did."""
        best: dict[str, float] = {}
        words = query_terms(query)
        if words:
            for position, score in self._score(words).combined.items():
                category = self.entries[position].category
                if category is not None and score > best.get(category, 0.0):
                    best[category] = score
        if not best:
            return list(self._categories)[:limit]
        ranked = sorted(best, key=lambda category: -best[category])
        return ranked[:limit]

    def category_name(self, category: str) -> Mapping[str, str]:
        """A category's name, by its id."""
        return self._categories.get(category, {})

    def did_you_mean(self, query: str) -> Suggestion | None:
        """The exhibitor name (or alias) closest to the query, when one is close enough."""
        key = " ".join(query_terms(query))
        if not key or not self._name_choices:
            return None
        found = process.extractOne(key, self._name_choices, scorer=fuzz.WRatio,
                                   score_cutoff=SUGGESTION_THRESHOLD)
        if found is None:
            return None
        _, score, choice = found
        entry = self.entries[self._name_owner[choice]]
        return Suggestion(entry.stand, entry.exhibitor_id, entry.name, round(score, 1))

    # -- internals ----------------------------------------------------------------------------

    def _stand_matches(self, query: str) -> list[int]:
        positions: list[int] = []
        for letters, digits in _STAND_IN_QUERY.findall(fold(query_head(query))):
            number = normalize_stand_number(_ABJAD.get(letters, letters) + digits)
            if number is not None:
                positions += self._stands.get(number, [])
        return positions

    def _score(self, words: list[str]) -> _Scored:
        fuzzy_terms: list[dict[int, float]] = []
        combined_terms: list[dict[int, float]] = []
        for word in words:
            matches = self._words.matches(word, _min_similarity(word))
            by_letters = _best(matches)
            both = by_letters
            # The skeleton is the last resort: only for a word whose letters found nothing
            # close, or a word spelt well would also pull in every other word of its sound.
            if max((similarity for similarity, _ in matches), default=0.0) < SKELETON_BELOW:
                key = skeleton(word)
                by_sound = _best(self._skeletons.matches(key, _skeleton_similarity(key)),
                                 SKELETON_WEIGHT) if len(key) >= 2 else {}
                both = {**by_sound, **{entry: score for entry, score in by_letters.items()
                                       if score > by_sound.get(entry, 0.0)}}
            fuzzy_terms.append(by_letters)
            combined_terms.append(both)
        count = sum(1 for scores in combined_terms if scores)
        if not count:
            return _Scored({}, {})
        return _Scored(_combine(fuzzy_terms, count), _combine(combined_terms, count))
