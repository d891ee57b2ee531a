"""The understanding step: what a free text asks for (its intent) and what it names (its
entities), in French, Arabic, Darija in either script, and English.

Rules first where they are surer than any model (a stand number alone, a command word, only
greetings or thanks, an exhibitor's name, a product alone), then a linear classifier over the
folded text in which the catalogue's names, days and stand numbers are placeholders (so that it
serves any fair's catalogue), then rules that weigh the entities found against it. In doubt
(two close intents, or a bare name both a workshop and stands answer to), the answer says so
with the next likely intents. Synchronous and without side effects but memory: the classifier
is trained once per process from the files in data/ (`warm()` at start), and the near
spellings of the words people repeat are remembered."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from rapidfuzz import fuzz

from handlers.understanding.entities import (
    Span,
    bare_stand_number,
    closest,
    find_day,
    find_hour,
    find_info_topic,
    find_language,
    find_stand,
    matcher,
)
from handlers.understanding.gazetteer import IGNORED, Gazetteer, Kind, Lookup, WorkshopEntry
from handlers.understanding.lexicon import (
    GLOSSARY_FILE,
    LEXICON_FILE,
    TRAIN_FILE,
    YAML_LOADER,
    load_lexicon,
)
from handlers.understanding.model import Classifier
from handlers.understanding.types import Entities, ExhibitorMatch, Intent, Understanding
from storage.catalogue import validate_catalogue, yaml_locator
from storage.search import STOPWORDS, skeleton
from storage.text import fold

# What the step reads of a message: its start (a message may be 2,000 characters long).
MAX_CHARS = 300
MAX_TOKENS = 32
# Below this probability the classifier's choice is put as a question, with the next ones...
DOUBT_BELOW = 0.5
# ... those at least this share of the first one's probability...
CLOSE_TO_FIRST = 0.4
# ... and below this, nothing is credible: not understood.
UNKNOWN_BELOW = 0.3
# The least quality (0-100, gazetteer.Match) for a catalogue entity to be kept: a place,
# category or label; a workshop (its description's words count 0.7); an exhibitor.
ENTITY_QUALITY = 75.0
WORKSHOP_QUALITY = 55.0
EXHIBITOR_QUALITY = 80.0
# ... and for one asked for after a greeting ("salam, bghit 3sel lkhzama").
NAMED_WELL = 85.0

# The catalogue the training utterances were written against: its names are masked in them
# the way a live message's names are masked with the served fair's.
TRAINING_CATALOGUE = Path(__file__).resolve().parents[2] / "bot" / "data" / "sample-fair.yaml"
# The day train.csv resolves its days from (its sentences say "demain", "samedi"...).
TRAINING_NOW = dt.datetime(2026, 12, 14, 9, 0, tzinfo=dt.UTC)


def _folded(words: Iterable[str]) -> set[str]:
    return {fold(word) or word.strip() for word in words}


# The router's words for its commands (handlers/router.py WORDS), each a whole message.
COMMAND_WORDS: dict[str, Intent] = {
    word: intent
    for intent, words in {
        Intent.MENU: ["menu", "القائمة", "قائمة", "المنيو", "lmenu", "0"],
        Intent.LANGUAGE: ["lang", "langue", "language", "langues", "اللغة", "لغة", "lugha",
                          "lougha"],
        Intent.WORKSHOPS: ["workshops", "workshop", "ateliers", "atelier", "ورشات", "الورشات",
                           "ورشة", "الورشة", "formations", "formation", "تكوين", "programme",
                           "برنامج"],
        Intent.MY_WORKSHOPS: ["my", "mes ateliers", "mes inscriptions", "ورشاتي", "تسجيلاتي"],
        Intent.MY_LIST: ["ma liste", "my list", "liste", "قائمتي", "لائحتي"],
        Intent.STANDS: ["stands", "exposants", "exposant", "الأروقة", "أروقة", "الاروقة",
                        "اروقة", "رواق", "العارضين", "العارضون", "plan"],
        Intent.FEEDBACK: ["feedback", "avis", "rating", "رأي", "رايي", "تقييم", "رأيي", "noter"],
        Intent.STOP: ["stop", "arret", "arrete", "توقف", "وقف", "unsubscribe", "desabonner"],
        Intent.HELP: ["help", "aide", "مساعدة", "المساعدة", "3awni", "?", "عاوني"],
        Intent.INFO: ["info", "infos", "information", "informations", "معلومات", "horaires",
                      "المعلومات", "pratique"],
        Intent.ORGANIZER: ["broadcast", "diffusion", "annonce", "بث", "stats", "statistiques",
                           "إحصائيات", "احصائيات"],
    }.items()
    for word in _folded(words)
}
# Words that say "workshop" in any form: with a day or a language they ask for the programme.
WORKSHOP_WORDS = _folded((
    "atelier", "ateliers", "workshop", "workshops", "formation", "formations", "programme",
    "program", "programme", "ورشة", "ورشات", "الورشة", "الورشات", "ورشه", "البرنامج", "برنامج",
    "lworcha", "worcha", "lworchat", "worchat", "barnamaj", "lbarnamaj", "tkwin", "تكوين",
    "conference", "conferences", "session", "sessions",
))
WORKSHOPS_PLURAL = _folded((
    "ateliers", "workshops", "formations", "sessions", "conferences", "ورشات", "الورشات",
    "lworchat", "worchat", "l'ateliers", "seminars", "trainings", "programme", "program",
    "برنامج", "البرنامج", "barnamaj", "lbarnamaj", "schedule",
))
# Words that make a list one's own: "mes ateliers", "3ndi", "ديالي".
POSSESSIVE_WORDS = _folded((
    "mes", "my", "mine", "dyali", "dyal i", "ديالي", "3ndi", "3andi", "3endi", "عندي",
    "tsjlt", "tsajalt", "تسجلت", "سجلت", "inscrit", "inscrite", "registered",
    # Darija "I registered / booked" and "registered" as people type them.
    "tsjelt", "tsajelt", "sjelt", "7jzt", "7jezt", "حجزت", "msjel", "msajjal", "مسجل", "مسجلة",
))
# A cooperative member asking for their own stand's figures, each a whole message.
OWN_STAND = _folded((
    "mon stand", "notre stand", "ma cooperative", "notre cooperative", "ma coop",
    "mon stand aujourd'hui", "les chiffres de mon stand", "رواقي", "رواقنا", "الرواق ديالي",
    "رواق ديالي", "تعاونيتي", "تعاونيتنا", "stand dyali", "l stand dyali", "stand dyalna",
    "cooperative dyali", "my stand", "our stand", "my cooperative",
))
# An exhibitor's code, and the words that say one speaks of exhibitors.
CODE_WORDS = _folded(("code", "codes", "كود", "الكود", "lcode", "lkod", "kod", "رمز"))
EXHIBITOR_WORDS = _folded((
    "cooperative", "coop", "coopérative", "association", "exposant", "exposante", "exhibitor",
    "تعاونية", "جمعية", "عارض", "عارضة", "t3awniya", "ta3awniya", "jam3iya", "stand", "جناح",
    "رواق", "الستاند", "standna", "hna", "حنا", "nous", "we",
))
EXHIBITORS_PLURAL = _folded((
    "coops", "cooperatives", "coopératives", "associations", "exposants", "exhibitors",
    "تعاونيات", "التعاونيات", "جمعيات", "العارضين", "t3awniyat", "ta3awniyat", "les coops",
    "kaynin", "كاينين",
))
# A list of one's own, and what is done to it.
LIST_WORDS = _folded((
    "liste", "list", "lista", "favoris", "favourites", "favorites", "favourite", "favorite",
    "لائحة", "اللائحة", "للائحة", "لائحتي", "قائمتي", "لقائمتي", "المفضلة", "lmofadala",
))
LIST_EDIT_WORDS = _folded((
    "ajoute", "ajouter", "ajoutez", "enleve", "enlever", "retire", "retirer", "supprime",
    "add", "remove", "delete", "save", "zid", "ms7", "mse7", "7yed", "زيد", "امسح", "حيد",
    "سجل", "احفظ", "garde", "garder", "7fed", "7fd",
))
# What a price is asked with, and the words that say it is the fair's.
PRICE_WORDS = _folded((
    "coute", "coutent", "cout", "prix", "price", "cost", "costs", "fare", "ثمن", "taman",
    "bch7al", "بشحال", "kaydi", "tarif",
))
BUDGET_WORDS = _folded((
    "budget", "depense", "depenses", "spent", "spend", "ميزانية", "الميزانية", "sarfo", "صرفو",
    "salaire", "salary", "payes", "paid",
))
FAIR_WORDS = _folded((
    "salon", "fair", "exhibition", "foire", "معرض", "المعرض", "للمعرض", "lma3rid", "ma3rid",
    "lsalon", "entree", "entry", "دخول", "الدخول", "dkhoul",
))
# Words of buying and selling: what they name is sold, not a practical topic.
BUY_WORDS = _folded((
    "acheter", "achete", "acheté", "vend", "vendent", "vendre", "buy", "buying", "sell", "sells",
    "selling", "sold", "nchri", "nechri", "nchriw", "نشري", "نشريو", "شراء", "kaybi3", "kayb3",
    "kaybi3o", "كيبيع", "كيبيعو", "يبيع", "تبيع", "بيع",
))
# Words that take back a registration: "annuler", "الغي", "7yed", "cancel".
CANCEL_WORDS = _folded((
    "annuler", "annule", "annulez", "annulation", "desinscrire", "desinscris", "desinscription",
    "cancel", "unregister", "unbook", "الغي", "ألغي", "الغ", "ألغ", "الغاء", "إلغاء", "امسح",
    "حيدني", "حيد", "7yed", "7ayed", "7yedni", "7aydni", "nlghi", "lghi", "annuli",
))
# Words that introduce a workshop's topic: "un atelier sur le financement".
ABOUT_WORDS = _folded(("sur", "about", "on", "3la", "3lach", "على", "حول", "concernant"))
REGISTER_WORDS = _folded((
    "inscrire", "inscription", "inscris", "inscrit", "reserver", "reservation", "participer",
    "register", "registration", "sign", "book", "التسجيل", "تسجيل", "نسجل", "اسجل", "أسجل",
    "ntsjl", "nsjl", "nsjel", "ntsejel", "tsjil", "tasjil", "حجز", "نحجز",
))
# The little words between catalogue names: "huile d'argan de Fès", "زيت الأركان ديال سوس".
LINKING_WORDS = _folded((
    "le", "la", "les", "l", "de", "du", "des", "d", "un", "une", "et", "a", "au", "aux", "en",
    "the", "of", "and", "an", "from", "with", "fi", "f", "dyal", "dial", "d", "w", "mn", "m3a",
    "ديال", "من", "في", "و", "مع", "ب", "cooperatives", "تعاونيات", "t3awniyat",
))
# The words of "how are you?" that follow a greeting: "salam, labas 3lik?".
HOW_ARE_YOU = frozenset(_folded((
    "ca", "va", "comment", "labas", "lbas", "3lik", "3likom", "عليك", "عليكم", "لاباس", "كيف",
    "حالك", "حالكم", "كي", "داير", "دايرة", "كيداير", "كيدايرة", "kidayr", "kidayra",
    "kidayrin", "kif", "halek", "how", "are", "you", "u", "r", "doing", "what's", "up", "cv",
    "bien", "et", "toi", "vous", "w", "nta", "nti", "ntoma", "bikhir", "بخير", "hamdollah",
    "الحمد", "لله", "and", "all", "everyone", "tout", "monde", "le", "a", "خويا", "khoya",
)))
_POLITE = _folded(("svp", "stp", "please", "pls", "3afak", "afak", "عافاك", "من فضلك", "merci"))
# Emoji and signs that say "ok" or "thanks" on their own.
_ACKNOWLEDGING = re.compile("[\U0001F44D\U0001F44C\U0001F64F\u2764\U0001F60A\U0001F642"
                            "\U0001F600-\U0001F64F\U0001F490-\U0001F4FF\u2705\u2714\u263A]")
_COOP_CODE = re.compile(r"(?:(?i:coop)[\s_:-]+|تعاونية[\s_:-]*)([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)")
_PLACEHOLDERS = {"DAY", "HOUR", "STANDNO", "INFO", *(kind.value for kind in Kind)}


@dataclass(frozen=True, slots=True)
class _Read:
    """A message as the rules and the classifier see it."""

    tokens: list[str]
    entities: Entities
    lookup: Lookup
    masked: str
    lookup_stands: frozenset[str]
    gazetteer: Gazetteer


def _read(text: str, gazetteer: Gazetteer, now: dt.datetime) -> _Read:
    """The message's words, entities and masked text."""
    tokens = fold(text[:MAX_CHARS]).split()[:MAX_TOKENS]
    today = now.astimezone(gazetteer.calendar.zone).date()
    taken: dict[int, str] = {}
    calendar = gazetteer.calendar
    day = find_day(tokens, today, (calendar.opens, calendar.closes)
                   if calendar.opens and calendar.closes else None)
    if day is not None:
        taken.update(dict.fromkeys(day[1], "DAY"))
    hour = find_hour(tokens)
    if hour is not None:
        taken.update(dict.fromkeys(hour[1], "HOUR"))
    stand = find_stand(tokens, gazetteer.stands)
    if stand is not None:
        taken.update(dict.fromkeys(stand.positions, "STANDNO"))
    language = find_language(tokens)
    info, lookup = _topic(tokens, gazetteer, taken)
    for position, kind in lookup.placeholders.items():
        taken.setdefault(position, kind.value)
    entities = Entities(
        day=day[0] if day else None,
        language=language.value if language else None,
        stand=stand.value if stand else None,
        info=info.value if info else None,
        workshops=_sessions(gazetteer, _kept(lookup, Kind.WORKSHOP, WORKSHOP_QUALITY, 10.0),
                            day[0] if day else None, hour[0] if hour else None,
                            _has(tokens, WORKSHOP_WORDS), today, tokens),
        exhibitors=_exhibitors(gazetteer, lookup),
        products=lookup.products,
        categories=_kept(lookup, Kind.CATEGORY, ENTITY_QUALITY),
        cities=_kept(lookup, Kind.CITY, ENTITY_QUALITY),
        regions=_kept(lookup, Kind.REGION, ENTITY_QUALITY),
        labels=_kept(lookup, Kind.LABEL, ENTITY_QUALITY),
    )
    return _Read(tokens, entities, lookup, _masked(tokens, taken), gazetteer.stands, gazetteer)


def _topic(tokens: list[str], gazetteer: Gazetteer, taken: dict[int, str]
           ) -> tuple[Span | None, Lookup]:
    """The practical topic a message names, and what it names in the catalogue besides: the
    fair's own topics first (its "navette" is what it answers), then the known ones."""
    lookup = gazetteer.lookup(tokens, frozenset(taken))
    topics = [match for match in lookup.of(Kind.TOPIC) if match.quality >= 80.0]
    info = Span(topics[0].key, topics[0].terms) if topics else find_info_topic(tokens)
    if info is not None and not topics and info.positions & set(lookup.placeholders):
        if info.score < 100.0 or _has(tokens, BUY_WORDS):
            # A near spelling of a topic word that is a catalogue word as typed
            # ("labellisation" is not "localisation"), or one to buy ("where can I buy
            # dates"): the catalogue's.
            return None, lookup
        taken.update(dict.fromkeys(info.positions, "INFO"))
        lookup = gazetteer.lookup(tokens, frozenset(taken))
    if info is not None:
        taken.update(dict.fromkeys(info.positions, "INFO"))
    return info, lookup


def _masked(tokens: list[str], taken: dict[int, str]) -> str:
    """The text the classifier reads: placeholders for what was recognized (one for a run)."""
    masked: list[str] = []
    for position, token in enumerate(tokens):
        word = taken.get(position, token)
        if not (masked and word in _PLACEHOLDERS and masked[-1] == word):
            masked.append(word)
    return " ".join(masked)


def _sessions(gazetteer: Gazetteer, found: tuple[str, ...], day: dt.date | None,
              hour: int | None, asked: bool, today: dt.date,
              tokens: Sequence[str] = ()) -> tuple[str, ...]:
    """The workshops named, narrowed to the day and hour the message gives when some are then;
    with no title but an hour, the workshops that start then ("l'atelier de 17h demain")."""
    zone = gazetteer.calendar.zone
    if not found and asked and hour is not None:
        # "l'atelier de 10h": at that hour on the day named, or else today, or else any day.
        at_hour = [workshop for workshop in gazetteer.workshops if workshop.starts is not None
                   and workshop.starts.astimezone(zone).hour == hour]
        on_day = [workshop for workshop in at_hour
                  if workshop.starts is not None
                  and workshop.starts.astimezone(zone).date() == (day or today)]
        found = tuple(workshop.id for workshop in (on_day or ([] if day else at_hour)))
        if not found:
            return ()
    elif not found:
        return ()
    sessions = [(key, gazetteer.workshop(key)) for key in found]
    starts = {key: workshop.starts.astimezone(zone) for key, workshop in sessions
              if workshop is not None and workshop.starts is not None}
    narrowed = list(found)
    if day is not None:
        narrowed = [key for key in narrowed if key in starts and starts[key].date() == day] \
            or narrowed
    if hour is not None:
        narrowed = [key for key in narrowed if key in starts and starts[key].hour == hour] \
            or narrowed
        # "10h" is the one at 10:00 rather than the one at 10:30.
        narrowed = [key for key in narrowed if key in starts and starts[key].hour == hour
                    and starts[key].minute == 0] or narrowed
    if narrowed == list(found) and len(found) == len(gazetteer.workshops) and len(found) > 1:
        return ()
    if len(narrowed) > 1 and tokens:
        # "l'atelier de Mme Tazi", "ورشة التسويق ديال يوسف بناني": the speaker's sessions.
        by_speaker = [key for key in narrowed
                      if _speaker_named(gazetteer.workshop(key), tokens)]
        narrowed = by_speaker or narrowed
    return tuple(narrowed)


# Titles before a speaker's name, which name no one.
_SPEAKER_TITLES = frozenset(("dr", "pr", "prof", "m", "mme", "mlle", "me", "mr", "mrs", "ms"))


def read_workshop(read: _Read, key: str) -> WorkshopEntry | None:
    """A workshop of the message's fair, by its id."""
    return read.gazetteer.workshop(key)


def _speaker_named(workshop: WorkshopEntry | None, tokens: Sequence[str]) -> bool:
    """Whether the message names the workshop's speaker by one of their names (four letters
    or more), as written, nearly, or in the other script ("بنجلون" for Benjelloun)."""
    if workshop is None or not workshop.speaker:
        return False
    names = [word for word in fold(workshop.speaker).split()
             if len(word) >= 4 and word not in _SPEAKER_TITLES]
    for token in tokens:
        if len(token) < 4:
            continue
        for name in names:
            if token == name or fuzz.ratio(token, name) >= 85.0:
                return True
            key = skeleton(token)
            if len(key) >= 2 and key == skeleton(name) and len(skeleton(name)) >= 2:
                return True
    return False


def _exhibitors(gazetteer: Gazetteer, lookup: Lookup) -> tuple[ExhibitorMatch, ...]:
    """Exhibitors named by a word that is not rather something sold (zarbia, z3afran)."""
    kept = set(_kept(lookup, Kind.EXHIBITOR, EXHIBITOR_QUALITY, 10.0))
    return tuple(ExhibitorMatch(match.key, gazetteer.stand_of(match.key) or "")
                 for match in lookup.matches
                 if match.key in kept and match.kind is Kind.EXHIBITOR
                 and any(lookup.placeholders.get(position) is Kind.EXHIBITOR
                         for position in match.terms))


def _kept(lookup: Lookup, kind: Kind, least: float, within: float = 100.0) -> tuple[str, ...]:
    """The keys of one kind of match, named well enough (quality) and close enough to the
    best of them (score)."""
    best = lookup.best(kind)
    return tuple(match.key for match in lookup.of(kind)
                 if match.quality >= least and match.score >= best - within)


# ---------------------------------------------------------------------------------------------
# The classifier, trained once per process (per version of the data files)

log = logging.getLogger(__name__)
_lock = threading.Lock()
_models: dict[str, Classifier] = {}


def _digest(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def training_rows(path: Path = TRAIN_FILE) -> list[tuple[str, str]]:
    """(text, intent) of the training utterances: train.csv, then every lexicon phrase of an
    intent, of a practical topic (info), of a language (language) and of a label (stands)."""
    rows: list[tuple[str, str]] = []
    if path.exists():
        with path.open(newline="", encoding="utf-8") as file:
            rows += [(row["text"], row["intent"]) for row in csv.DictReader(file)
                     if row.get("text") and row.get("intent") in Intent.__members__.values()]
    lexicon = load_lexicon()
    for intent, phrases in lexicon.section("intents").items():
        if intent in Intent.__members__.values():
            rows += [(phrase, intent) for phrase in phrases]
    for section, intent in (("info_topics", Intent.INFO), ("languages", Intent.LANGUAGE),
                            ("labels", Intent.STANDS)):
        for phrases in lexicon.section(section).values():
            rows += [(phrase, intent.value) for phrase in phrases]
    return rows


@functools.cache
def training_gazetteer() -> Gazetteer:
    """The gazetteer of the catalogue the training utterances were written against."""
    if not TRAINING_CATALOGUE.exists():
        return Gazetteer([])
    data = yaml.load(TRAINING_CATALOGUE.read_bytes(), Loader=YAML_LOADER)
    catalogue = validate_catalogue(data, yaml_locator(TRAINING_CATALOGUE.name))
    return Gazetteer.from_catalogue(catalogue)


def training_set(path: Path = TRAIN_FILE) -> tuple[list[str], list[str]]:
    """The training utterances masked as live messages are, and their intents."""
    gazetteer = training_gazetteer()
    rows = training_rows(path)
    return ([_read(text, gazetteer, TRAINING_NOW).masked for text, _ in rows],
            [intent for _, intent in rows])


def train(path: Path = TRAIN_FILE, *, in_process: bool = False) -> Classifier:
    """A classifier trained on the training utterances (in a child process, unless
    `in_process`: see handlers/understanding/model.py)."""
    texts, labels = training_set(path)
    return Classifier.fit(texts, labels, in_process=in_process)


def _data_key() -> str:
    """The data files' hash, computed again only when one of them changed on disk."""
    files = (TRAIN_FILE, LEXICON_FILE, GLOSSARY_FILE, TRAINING_CATALOGUE)
    stamps = tuple((path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None
                   for path in files)
    return _hash_of(files, stamps)


@functools.lru_cache(maxsize=4)
def _hash_of(files: tuple[Path, ...], stamps: tuple[tuple[int, int] | None, ...]) -> str:
    return _digest(files)


def classifier() -> Classifier:
    """The process's classifier, trained on first use (and again when the data files change),
    or read from the cache a process on this machine wrote for the same data and code."""
    key = _data_key()
    model = _models.get(key)
    if model is None:
        with _lock:
            model = _models.get(key)
            if model is None:
                model = _models[key] = _cached_or_trained(key)
    return model


def _cached_or_trained(key: str) -> Classifier:
    """Training takes seconds at every start (a restarted process answers that much later):
    the fitted numbers are kept in the user's cache folder, named after the training data and
    this package's code. Any trouble with the cache only means training."""
    try:
        path = _cache_folder() / f"intents-{_code_key()[:16]}-{key[:16]}.npz"
    except RuntimeError:  # no home folder to find
        return train()
    try:
        return Classifier.load(path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("the cached intent classifier %s is unreadable (%s); training", path, exc)
    model = train()
    try:
        model.save(path)
    except OSError as exc:
        log.info("the intent classifier is not cached (%s)", exc)
    return model


def _cache_folder() -> Path:
    """$XDG_CACHE_HOME/tadamon, else ~/.cache/tadamon."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tadamon"


@functools.cache
def _code_key() -> str:
    """The hash of the understanding's code: a change to how texts are read or the model is
    fitted makes a new cache entry."""
    return _digest(sorted(Path(__file__).parent.glob("*.py")))


def clear_caches(gazetteer: Gazetteer) -> None:
    """Forget the words remembered by the lexicon and the gazetteer."""
    closest().clear()
    gazetteer.clear()


def warm() -> None:
    """Import scikit-learn and train the classifier now (at start), not on the first message."""
    classifier()


# ---------------------------------------------------------------------------------------------
# Understanding a message


def _sure(intent: Intent, entities: Entities) -> Understanding:
    return Understanding(intent, 1.0, entities)


def _covered_by(tokens: list[str], intents: set[str], also: frozenset[str] = frozenset()
                ) -> bool:
    """Whether every word of the message belongs to a lexicon phrase of these intents (or is
    one of `also`)."""
    covered = {index for index, token in enumerate(tokens) if token in also}
    for item in matcher("intents").find(tokens):
        if item.name in intents:
            covered.update(range(item.start, item.end))
    return len(covered) == len(tokens)


def _only_catalogue(read: _Read) -> bool:
    """Whether the message is nothing but products, categories, places or labels (and the
    little words between them)."""
    kinds = (Kind.PRODUCT, Kind.CATEGORY, Kind.CITY, Kind.REGION, Kind.LABEL)
    named = {position for position, kind in read.lookup.placeholders.items() if kind in kinds}
    rest = {index for index, token in enumerate(read.tokens) if token not in LINKING_WORDS}
    return bool(named) and rest <= named and read.entities.catalogue_stands()


def _exhibitor_named(read: _Read) -> bool:
    """Whether the message is an exhibitor's name (or alias), and nothing else."""
    content = {index for index, token in enumerate(read.tokens) if token not in IGNORED}
    return bool(read.entities.exhibitors) and any(
        match.kind is Kind.EXHIBITOR and match.quality >= 90.0 and content <= match.terms
        for match in read.lookup.matches)


def _one_exhibitor_named(read: _Read) -> bool:
    """Whether the message names one exhibitor by two words or more of its name or by an
    alias, closely, and no product apart from its name."""
    names = [match for match in read.lookup.matches
             if match.kind is Kind.EXHIBITOR and match.quality >= 90.0 and len(match.terms) >= 2]
    if len({match.key for match in names}) != 1:
        return False
    own = names[0].terms
    return all(position in own for position, kind in read.lookup.placeholders.items()
               if kind in (Kind.PRODUCT, Kind.CATEGORY, Kind.LABEL))


def _stand_or_workshop(read: _Read) -> Understanding | None:
    """A message that is only a name both a workshop and stands answer to ("marketing",
    "التسويق", "tamwil"): the likelier first, and the question "a stand or a workshop?"."""
    entities = read.entities
    if not entities.workshops or not (entities.catalogue_stands() or entities.exhibitors):
        return None
    rest = {index for index, token in enumerate(read.tokens)
            if token not in LINKING_WORDS and token not in IGNORED}
    if not rest <= set(read.lookup.placeholders):
        return None
    workshop = read.lookup.best_quality(Kind.WORKSHOP)
    stands = max(read.lookup.best_quality(kind) for kind in Kind if kind is not Kind.WORKSHOP)
    stand = Intent.STANDS if entities.catalogue_stands() else Intent.STAND
    first, other = (Intent.WORKSHOP, stand) if workshop >= stands else (stand, Intent.WORKSHOP)
    return Understanding(first, DOUBT_BELOW, entities, (other,))


def _without_requests(tokens: list[str]) -> str:
    """The message without its request words and little words (bghit, je veux le, svp...)."""
    dropped: set[int] = set()
    for item in matcher("request_words").find(tokens):
        dropped.update(range(item.start, item.end))
    return " ".join(token for index, token in enumerate(tokens)
                    if index not in dropped and token not in LINKING_WORDS
                    and token not in _POLITE)


def _has(tokens: list[str], words: set[str]) -> bool:
    return any(token in words for token in tokens)


def _asks(tokens: list[str]) -> bool:
    """Whether the message holds a question or request word (où, fin, wach, أين, bghit...)."""
    return bool(matcher("request_words").find(tokens)) or len(tokens) <= 2


def asks(text: str) -> bool:
    """Whether a text asks for something: a question or request word (où, fin, wach, أين,
    bghit...), or no more than two words ("miel", "stand A12")."""
    return _asks(fold(text).split())


def _stand_like(number: str, read: _Read) -> bool:
    """Whether a message shaped as a stand number is one: a number of the fair, or one
    letter and its digits ("Z99" gets "no such stand"); "rjo3" is a word of Darija."""
    letters = number.rstrip("0123456789")
    return number in read.lookup_stands or len(letters) <= 1


def _rules_before(text: str, read: _Read) -> Understanding | None:
    tokens, entities = read.tokens, read.entities
    whole = " ".join(tokens) or text.strip()
    if whole in COMMAND_WORDS:
        return _sure(COMMAND_WORDS[whole], entities)
    asked = _without_requests(tokens)
    if asked in COMMAND_WORDS and asked != whole:
        # "بغيت المساعدة", "je veux le menu svp": a command word asked for.
        return _sure(COMMAND_WORDS[asked], entities)
    number = bare_stand_number(text)
    if number is not None and _stand_like(number, read):
        return _sure(Intent.STAND, Entities(stand=number))
    if _COOP_CODE.fullmatch(text.strip()) or fold(text) in OWN_STAND:
        return _sure(Intent.COOPERATIVE, entities)
    if not tokens:
        acknowledging = _ACKNOWLEDGING.search(text) is not None
        return _sure(Intent.SMALLTALK if acknowledging else Intent.UNKNOWN, entities)
    if _covered_by(tokens, {"welcome"}):
        return _sure(Intent.WELCOME, entities)
    if _covered_by(tokens, {"smalltalk", "welcome"}):
        # "salam labas ?", "hello, how are you": a greeting; "ça va ?" alone: small talk.
        greeting = _covered_by(tokens, {"welcome"}, HOW_ARE_YOU) and any(
            item.name == "welcome" for item in matcher("intents").find(tokens))
        return _sure(Intent.WELCOME if greeting else Intent.SMALLTALK, entities)
    if entities.language and _covered_by(tokens, {"language"}, _language_words(tokens)):
        # "en arabe svp", "b darija 3afak": a language, and nothing else asked.
        return _sure(Intent.LANGUAGE, entities)
    doubt = _stand_or_workshop(read)
    if doubt is not None:
        return doubt
    if _exhibitor_named(read):
        return _sure(Intent.STAND, entities)
    if _only_catalogue(read):
        return _sure(Intent.STANDS, entities)
    return None


def _language_words(tokens: list[str]) -> frozenset[str]:
    """The words of a message that name a language or only make a request polite."""
    found = find_language(tokens)
    named = {tokens[index] for index in found.positions} if found else set()
    return frozenset(named | {token for token in tokens
                              if token in STOPWORDS or token in LINKING_WORDS
                              or token in _POLITE})


# Practical topics people state rather than ask ("j'ai perdu mon téléphone", "urgence,
# quelqu'un a fait un malaise"): the statement is the request.
STATED_TOPICS = frozenset(("lost_found", "first_aid"))
_SOCIAL = (Intent.WELCOME, Intent.SMALLTALK, Intent.UNKNOWN, Intent.HELP, Intent.MENU)
_CATALOGUE_INTENTS = (Intent.STAND, Intent.STANDS, Intent.WORKSHOP, Intent.WORKSHOPS)
# Verbs of the feedback phrases that other requests use as much ("donner", "give").
_GENERIC_VERBS = frozenset(("donner", "give", "laisser", "leave", "n3ti", "نعطي"))


@functools.cache
def markers(intent: str) -> frozenset[str]:
    """Words only the lexicon phrases of one intent hold (exposants, exhibitors for stands)."""
    lexicon = load_lexicon()
    own = lexicon.words("intents", exclude=[name for name in lexicon.section("intents")
                                            if name != intent])
    others = lexicon.words("intents", exclude=[intent])
    return frozenset(own - others)


def _named_well(read: _Read) -> bool:
    """Whether the message names a product, category, place or label closely (not "robot"
    for Rabat)."""
    return read.entities.catalogue_stands() and max(
        read.lookup.best_quality(kind) for kind in (Kind.PRODUCT, Kind.CATEGORY, Kind.CITY,
                                                    Kind.REGION, Kind.LABEL)) >= NAMED_WELL


def _rules_after(read: _Read, ranked: list[tuple[Intent, float]]) -> Intent | None:
    """An intent the entities make surer than the classifier's first choice, if any."""
    tokens, entities = read.tokens, read.entities
    first = ranked[0][0]
    plural = _has(tokens, WORKSHOPS_PLURAL)
    singular = _has(tokens, WORKSHOP_WORDS - WORKSHOPS_PLURAL)
    register = _has(tokens, REGISTER_WORDS)
    rating = _has(tokens, set(markers("feedback") - _GENERIC_VERBS))
    if first in _CATALOGUE_INTENTS and rating:
        # "noter le stand A12", "rate yesterday's marketing workshop": a rating of it.
        return Intent.FEEDBACK
    if first is Intent.FEEDBACK and rating:
        # "évaluer l'atelier d'hier": the workshop and the day are what is rated.
        return None
    if first in (Intent.INFO, Intent.UNKNOWN) and (_has(tokens, BUDGET_WORDS) or (
            _has(tokens, PRICE_WORDS) and (entities.info is None or (
                entities.info == "transport" and not _has(tokens, FAIR_WORDS))))):
        # "combien coûte un taxi pour l'aéroport", "le budget des organisateurs": a price
        # the fair does not know (the entry's price is the entry topic).
        return Intent.UNKNOWN
    if entities.info and (_asks(tokens) or first is Intent.INFO
                          or entities.info in STATED_TOPICS) and (
            first in _SOCIAL or ranked[0][1] < DOUBT_BELOW):
        # A practical topic asked about, over a greeting or a thanks around it.
        return Intent.INFO
    if _has(tokens, CODE_WORDS) and first in (Intent.STAND, Intent.STANDS, Intent.INFO) and (
            _has(tokens, EXHIBITOR_WORDS) or entities.exhibitors or entities.stand):
        # "coopérative Nour stand A13, on a un code, on le met où ?": the exhibitor's account.
        return Intent.COOPERATIVE
    if first is Intent.STAND and _has(tokens, EXHIBITORS_PLURAL) and not entities.stand and (
            entities.cities or entities.regions or entities.categories or entities.labels):
        # "les coops dyal l'oriental fin kaynin": every stand of a place, not one.
        return Intent.STANDS
    if _has(tokens, LIST_WORDS) and first in (Intent.STAND, Intent.STANDS, Intent.MY_LIST) and (
            _has(tokens, POSSESSIVE_WORDS) or _has(tokens, LIST_EDIT_WORDS)):
        # "ajoute le stand B14 à ma liste", "mse7 Chorouk mn la liste": one's own list.
        return Intent.MY_LIST
    if (singular or plural or entities.workshops) and _has(tokens, CANCEL_WORDS) and first in (
            Intent.WORKSHOP, Intent.WORKSHOPS, Intent.MY_WORKSHOPS, Intent.STOP):
        # "annule mon inscription à l'atelier marketing": one's own registration.
        return Intent.MY_WORKSHOPS
    if first is Intent.STANDS and _one_exhibitor_named(read):
        # "où est Atlas Terroir ?": its name also holds a category's or a product's word.
        return Intent.STAND
    if len(entities.workshops) == 1 and first is Intent.WORKSHOPS and not plural and (
            _speaker_named(read_workshop(read, entities.workshops[0]), tokens)):
        # "Leila Berrada, son atelier sur le financement": one session, by its speaker.
        return Intent.WORKSHOP
    if entities.workshops and first is not Intent.MY_WORKSHOPS:
        if plural and not singular and not register:
            return Intent.WORKSHOPS
        # "wach kayn chi atelier 3la tamwil?" asks for the workshops about a topic: the
        # classifier knows that better than the words do.
        about = _has(tokens, ABOUT_WORDS) and not register
        if not about and (singular or register or first in (Intent.WORKSHOP,
                                                                Intent.WORKSHOPS)):
            return Intent.WORKSHOP
        if about and (singular or plural) and first in (Intent.STAND, Intent.STANDS):
            # The topic's word is also in a name ("tamwil"): the workshop word says which.
            return Intent.WORKSHOPS
    mine = _has(tokens, POSSESSIVE_WORDS)
    if mine and (singular or plural) and not entities.workshops and first in (
            Intent.WORKSHOP, Intent.WORKSHOPS):
        # "chno 3ndi ghedda mn ateliers", "واش عندي شي ورشة اليوم؟": my own workshops.
        return Intent.MY_WORKSHOPS
    if (singular or plural) and register and first is not Intent.MY_WORKSHOPS:
        # "inscrit", "book" also say what one has booked: "à quels ateliers je suis inscrit ?".
        return Intent.WORKSHOP
    if plural and not singular and first is Intent.WORKSHOP:
        return Intent.WORKSHOPS
    if (singular or plural) and (entities.day or entities.language) and first not in (
            Intent.WORKSHOP, Intent.INFO, Intent.MY_WORKSHOPS):
        return Intent.WORKSHOPS
    if first in (Intent.WELCOME, Intent.SMALLTALK, Intent.UNKNOWN) and (
            any(product.score >= 90.0 for product in entities.products)
            or (_named_well(read) and matcher("request_words").find(tokens))):
        # "salam, bghit 3sel lkhzama": a product (or a place, a label) asked for after a
        # greeting.
        return Intent.STANDS
    if (singular or plural) and first in (Intent.STANDS, Intent.STAND) and not (
            entities.catalogue_stands() or entities.exhibitors or entities.stand):
        return Intent.WORKSHOPS if plural else Intent.WORKSHOP
    if first in (Intent.WORKSHOP, Intent.WORKSHOPS) and ranked[0][1] < DOUBT_BELOW and not (
            singular or plural or register or entities.workshops or entities.day):
        # A workshop asked for in no word about one ("bla bla bla", "who won the game"):
        # the classifier's guess, not a request.
        return Intent.UNKNOWN
    if first in (Intent.STANDS, Intent.STAND) and ranked[0][1] < DOUBT_BELOW and not (
            entities.catalogue_stands() or entities.exhibitors or entities.stand
            or _has(tokens, set(markers("stands") | markers("stand")))):
        # A stand search needs something to search for: "hello there" and "test" are not one.
        for intent, probability in ranked[1:3]:
            if intent not in (Intent.STANDS, Intent.STAND):
                return intent if probability >= UNKNOWN_BELOW else Intent.UNKNOWN
    return None


def understand(text: str, gazetteer: Gazetteer, now: dt.datetime,
               model: Classifier | None = None) -> Understanding:
    """What a free text asks for and names; `now` (aware) resolves days such as "demain".
    `model` is the process's classifier unless given (a bench trains its own)."""
    return _shaped(_understand(text, gazetteer, now, model))


def _shaped(understood: Understanding) -> Understanding:
    """`workshop` is one workshop's card: a workshop asked for when the message points to
    several sessions ("quand a lieu l'atelier marketing ?", given on two days) or to none the
    catalogue knows is answered with a list, so it is understood as `workshops`."""
    if understood.intent is Intent.WORKSHOP and not understood.in_doubt and len(
            understood.entities.workshops) != 1:
        return dataclasses.replace(understood, intent=Intent.WORKSHOPS)
    return understood


def _understand(text: str, gazetteer: Gazetteer, now: dt.datetime,
                model: Classifier | None) -> Understanding:
    read = _read(text, gazetteer, now)
    ruled = _rules_before(text, read)
    if ruled is not None:
        return ruled
    model = model or classifier()
    ranked = [(Intent(label), probability)
              for label, probability in model.probabilities(read.masked)]
    chosen = _rules_after(read, ranked)
    if chosen is Intent.UNKNOWN:
        # Not understood; the classifier's guesses are the ways on to offer.
        return Understanding(chosen, dict(ranked).get(chosen, 0.0), read.entities, tuple(
            intent for intent, share in ranked[:3]
            if intent is not Intent.UNKNOWN and share >= UNKNOWN_BELOW / 2)[:2])
    if chosen is not None:
        probability = dict(ranked).get(chosen, 0.0)
        return Understanding(chosen, max(probability, DOUBT_BELOW), read.entities)
    first, probability = ranked[0]
    if probability < UNKNOWN_BELOW:
        return Understanding(Intent.UNKNOWN, probability, read.entities,
                             tuple(intent for intent, _ in ranked[:2]
                                   if intent is not Intent.UNKNOWN))
    if probability < DOUBT_BELOW:
        close = tuple(intent for intent, share in ranked[1:3]
                      if share >= probability * CLOSE_TO_FIRST and intent is not Intent.UNKNOWN)
        if close:
            return Understanding(first, probability, read.entities, close)
    return Understanding(first, probability, read.entities)
