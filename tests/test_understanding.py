"""The understanding step: intents and entities of what visitors write, in French, Arabic,
Darija (both scripts) and English, on the sample fair and on another fair's catalogue."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.catalogue import load_catalogue_file
from handlers.understanding import Gazetteer, InfoTopic, Intent, info_topics, understand
from handlers.understanding.model import Classifier, char_wb_grams, fit_pipeline, word_grams
from handlers.understanding.understand import train, training_rows, training_set
from storage.catalogue import speaker_names, validate_catalogue, yaml_locator
from storage.repositories import (
    CatalogueSnapshot,
    ExhibitorView,
    FairView,
    StandView,
    WorkshopView,
)
from storage.search import SearchIndex, entries_from_catalogue

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "data" / "sample-fair.yaml"
ZONE = ZoneInfo("Africa/Casablanca")
# Sunday 13 December 2026, 10:00 in Khouribga: the fair's first day.
NOW = dt.datetime(2026, 12, 13, 10, 0, tzinfo=ZONE)
TODAY = NOW.date()
TOMORROW = TODAY + dt.timedelta(days=1)
SATURDAY = dt.date(2026, 12, 19)
HONEY = ("B14", "B20", "B22", "B23", "B25", "B26", "B30", "B32")


@pytest.fixture(scope="module")
def fair() -> Gazetteer:
    return Gazetteer.from_catalogue(load_catalogue_file(SAMPLE).catalogue)


def carpet_stands() -> set[str]:
    """Every stand of the sample fair with a product called a carpet (tapis)."""
    catalogue = load_catalogue_file(SAMPLE).catalogue
    return {exhibitor.stand for exhibitor in catalogue.exhibitors or []
            if exhibitor.stand and any("tapis" in product.fr for product in exhibitor.products)}


# ---------------------------------------------------------------------------------------------
# What the issue saw go wrong


@pytest.mark.parametrize(("text", "intent"), [
    ("Bonjour, je voudrais voir le programme des ateliers", Intent.WORKSHOPS),
    ("salam, bghit nchof les ateliers", Intent.WORKSHOPS),
    # No workshop named: the programme, to choose one from.
    ("bghit ntsjl f atelier", Intent.WORKSHOPS),
    ("je veux m'inscrire", Intent.WORKSHOPS),
    ("merci", Intent.SMALLTALK),
    ("shukran", Intent.SMALLTALK),
    ("wakha", Intent.SMALLTALK),
    ("merci bzaf", Intent.SMALLTALK),
    ("miel", Intent.STANDS),
])
def test_issue_table(fair: Gazetteer, text: str, intent: Intent) -> None:
    assert understand(text, fair, NOW).intent is intent


def test_workshops_tomorrow(fair: Gazetteer) -> None:
    result = understand("ateliers demain", fair, NOW)
    assert result.intent is Intent.WORKSHOPS
    assert result.entities.day == TOMORROW


def test_toilets_is_a_practical_question(fair: Gazetteer) -> None:
    result = understand("où sont les toilettes ?", fair, NOW)
    assert (result.intent, result.entities.info) == (Intent.INFO, "toilets")


@pytest.mark.parametrize("text", ["hello there", "test", "this is a text message"])
def test_chatter_is_not_a_stand_search(fair: Gazetteer, text: str) -> None:
    result = understand(text, fair, NOW)
    assert result.intent in (Intent.SMALLTALK, Intent.UNKNOWN, Intent.WELCOME)
    assert not result.entities.products and not result.entities.exhibitors


def test_zarbia_finds_every_carpet_stand(fair: Gazetteer) -> None:
    result = understand("zarbia", fair, NOW)
    assert result.intent is Intent.STANDS
    found = {stand for product in result.entities.products for stand in product.stands}
    assert len(carpet_stands()) >= 8
    assert found >= carpet_stands()


def test_argan_oil_ranks_argan_before_olive(fair: Gazetteer) -> None:
    result = understand("huile d'argan", fair, NOW)
    assert result.intent is Intent.STANDS
    products = [product.text for product in result.entities.products]
    assert products[0] == "huile d'argan"
    olive = [index for index, text in enumerate(products) if "olive" in text]
    assert all(index > 0 for index in olive)


@pytest.mark.parametrize("text", ["carpets", "where can I find rugs?", "من يبيع الزرابي؟",
                                  "fin kaynin zrabi"])
def test_carpets_in_every_form_find_every_carpet_stand(fair: Gazetteer, text: str) -> None:
    result = understand(text, fair, NOW)
    assert result.intent is Intent.STANDS
    assert {stand for product in result.entities.products
            for stand in product.stands} >= carpet_stands()


def test_honey_lists_every_honey_stand(fair: Gazetteer) -> None:
    result = understand("miel", fair, NOW)
    found = {stand for product in result.entities.products for stand in product.stands}
    assert found == set(HONEY)


def test_cooperatives_of_a_city(fair: Gazetteer) -> None:
    result = understand("coopératives de Fès", fair, NOW)
    assert (result.intent, result.entities.cities) == (Intent.STANDS, ("fes",))


def test_register_for_a_workshop_by_its_topic(fair: Gazetteer) -> None:
    # Given twice: both sessions, each with its register button (the list of workshops).
    result = understand("inscription atelier comptabilité", fair, NOW)
    assert result.intent is Intent.WORKSHOPS
    assert set(result.entities.workshops) == {"coop-finance-1", "coop-finance-2"}
    # ... one of them named by its day: its card.
    result = understand("inscription atelier comptabilité mardi", fair, NOW)
    assert result.intent is Intent.WORKSHOP
    assert result.entities.workshops == ("coop-finance-2",)


# ---------------------------------------------------------------------------------------------
# Each intent, in the four forms of writing

SENTENCES: list[tuple[str, Intent]] = [
    # welcome
    ("bonsoir", Intent.WELCOME), ("السلام عليكم", Intent.WELCOME),
    ("salam alaykoum", Intent.WELCOME), ("good morning", Intent.WELCOME),
    # menu
    ("menu", Intent.MENU), ("القائمة", Intent.MENU), ("lmenu", Intent.MENU),
    ("main menu", Intent.MENU),
    # language
    ("en arabe svp", Intent.LANGUAGE), ("بالفرنسية", Intent.LANGUAGE),
    ("b darija 3afak", Intent.LANGUAGE), ("in english please", Intent.LANGUAGE),
    # help
    ("aide", Intent.HELP), ("مساعدة", Intent.HELP), ("3awni", Intent.HELP),
    ("help", Intent.HELP),
    # info
    ("il y a un parking ?", Intent.INFO), ("أين المرحاض؟", Intent.INFO),
    ("fin nparki tomobil?", Intent.INFO), ("where can I pray?", Intent.INFO),
    ("fin bit lma", Intent.INFO), ("فين المصلى", Intent.INFO),
    # smalltalk
    ("merci beaucoup", Intent.SMALLTALK), ("شكرا جزيلا", Intent.SMALLTALK),
    ("chokran bzaf", Intent.SMALLTALK), ("thanks a lot", Intent.SMALLTALK),
    ("👍", Intent.SMALLTALK), ("ok", Intent.SMALLTALK),
    # workshops
    ("quels ateliers samedi ?", Intent.WORKSHOPS), ("برنامج الورشات", Intent.WORKSHOPS),
    ("chno kayn mn ateliers lyoum", Intent.WORKSHOPS), ("what workshops are there?",
                                                         Intent.WORKSHOPS),
    # workshop
    ("je veux m'inscrire à l'atelier marketing de mardi", Intent.WORKSHOP),
    ("أريد التسجيل في ورشة التسويق يوم الثلاثاء", Intent.WORKSHOP),
    ("bghit ntsjl f atelier marketing dyal tlat", Intent.WORKSHOP),
    ("wach kayn chi atelier 3la tamwil?", Intent.WORKSHOPS),
    ("register me for the marketing workshop on Tuesday", Intent.WORKSHOP),
    ("book the financing workshop on Wednesday", Intent.WORKSHOP),
    ("l'atelier de 10h mardi, c'est en arabe ?", Intent.WORKSHOP),
    ("ورشة الحداش نهار الأربعاء فين كاينة؟", Intent.WORKSHOP),
    # A topic given twice, no day: its sessions, to choose one from.
    ("je veux m'inscrire à l'atelier marketing", Intent.WORKSHOPS),
    ("register me for the marketing workshop", Intent.WORKSHOPS),
    # my_workshops
    ("mes ateliers", Intent.MY_WORKSHOPS), ("ورشاتي", Intent.MY_WORKSHOPS),
    ("my workshops", Intent.MY_WORKSHOPS), ("واش عندي شي ورشة اليوم؟", Intent.MY_WORKSHOPS),
    ("chno 3ndi ghedda mn ateliers", Intent.MY_WORKSHOPS),
    # stands
    ("qui vend du miel ?", Intent.STANDS), ("من يبيع الزرابي؟", Intent.STANDS),
    ("fin nlga l3sel", Intent.STANDS), ("who sells argan oil?", Intent.STANDS),
    ("coopératives de femmes", Intent.STANDS), ("تعاونيات نسائية", Intent.STANDS),
    # stand
    ("A12", Intent.STAND), ("رواق ب ٤", Intent.STAND), ("Coopérative Al Hirafi", Intent.STAND),
    ("تعاونية الحرفي", Intent.STAND), ("stand B4", Intent.STAND),
    # my_list
    ("ma liste", Intent.MY_LIST), ("لائحتي", Intent.MY_LIST), ("my list", Intent.MY_LIST),
    # feedback
    ("je veux donner mon avis", Intent.FEEDBACK), ("تقييم", Intent.FEEDBACK),
    ("bghit n3ti rayi", Intent.FEEDBACK), ("feedback", Intent.FEEDBACK),
    # stop
    ("stop", Intent.STOP), ("توقف", Intent.STOP), ("unsubscribe", Intent.STOP),
    # privacy
    ("supprimer mes données", Intent.PRIVACY), ("delete my data", Intent.PRIVACY),
    # cooperative
    ("coop TIF-2026", Intent.COOPERATIVE), ("je suis une coopérative exposante",
                                            Intent.COOPERATIVE),
    # organizer
    ("stats", Intent.ORGANIZER), ("diffusion", Intent.ORGANIZER),
]


@pytest.mark.parametrize(("text", "intent"), SENTENCES)
def test_sentences_in_four_forms(fair: Gazetteer, text: str, intent: Intent) -> None:
    assert understand(text, fair, NOW).intent is intent


# ---------------------------------------------------------------------------------------------
# Entities


@pytest.mark.parametrize(("text", "day"), [
    ("ateliers aujourd'hui", TODAY), ("ateliers demain", TOMORROW),
    ("ateliers après-demain", TODAY + dt.timedelta(days=2)), ("ateliers samedi", SATURDAY),
    ("ورشات اليوم", TODAY), ("الورشات غدا", TOMORROW), ("ورشات يوم السبت", SATURDAY),
    ("ateliers lyoum", TODAY), ("les ateliers ghda", TOMORROW), ("lworchat nhar sebt", SATURDAY),
    ("workshops today", TODAY), ("workshops tomorrow", TOMORROW),
    ("workshops on saturday", SATURDAY), ("ateliers du 15/12", dt.date(2026, 12, 15)),
    ("ateliers le 16 décembre", dt.date(2026, 12, 16)),
])
def test_days_seen_from_now(fair: Gazetteer, text: str, day: dt.date) -> None:
    assert understand(text, fair, NOW).entities.day == day


def test_day_is_the_fair_s_local_day(fair: Gazetteer) -> None:
    """At 23:30 UTC on the 13th it is already the 14th in Morocco (UTC+1)."""
    late = dt.datetime(2026, 12, 13, 23, 30, tzinfo=dt.UTC)
    assert understand("ateliers demain", fair, late).entities.day == dt.date(2026, 12, 15)


@pytest.mark.parametrize(("text", "language"), [
    ("ateliers en arabe", "ar"), ("الورشات بالفرنسية", "fr"), ("ateliers b darija", "ar"),
    ("workshops in english", "en"), ("بالعربية", "ar"),
])
def test_language_asked_for(fair: Gazetteer, text: str, language: str) -> None:
    assert understand(text, fair, NOW).entities.language == language


@pytest.mark.parametrize(("text", "stand"), [
    ("A12", "A12"), ("a 12", "A12"), ("A١٢", "A12"), ("stand c14", "C14"),
    ("رواق ب ٤", "B4"), ("où est le stand C14 ?", "C14"), ("fin kayn stand a3", "A3"),
    ("STAND A12", "A12"),
])
def test_stand_numbers(fair: Gazetteer, text: str, stand: str) -> None:
    result = understand(text, fair, NOW)
    assert result.entities.stand == stand
    assert result.intent is Intent.STAND


def test_a_time_is_not_a_stand(fair: Gazetteer) -> None:
    assert understand("ateliers le 14 à 10h", fair, NOW).entities.stand is None


# ---------------------------------------------------------------------------------------------
# Another fair: nothing is tied to the sample catalogue

OTHER_FAIR = """
fair:
  id: fes-ess-2027
  name: {fr: Foire solidaire de Fès, ar: المعرض التضامني بفاس}
  city: {fr: Fès, ar: فاس}
  venue: {fr: Bab Boujloud, ar: باب بوجلود}
  timezone: Africa/Casablanca
  opens: 2027-03-05
  closes: 2027-03-07
categories:
  - {id: beauty, name: {fr: Cosmétiques naturels, ar: مستحضرات طبيعية}}
  - {id: leather, name: {fr: Maroquinerie, ar: الجلد}}
stands:
  - {number: K1, zone: {fr: Nord, ar: الشمال}, x: 1, y: 1}
  - {number: K2, zone: {fr: Nord, ar: الشمال}, x: 2, y: 1}
  - {number: K3, zone: {fr: Nord, ar: الشمال}, x: 3, y: 1}
  - {number: M7, zone: {fr: Sud, ar: الجنوب}, x: 1, y: 9}
exhibitors:
  - id: coop-nour-saboun
    name: {fr: Coopérative Nour, ar: تعاونية نور}
    category: beauty
    city: {fr: Sefrou, ar: صفرو}
    region: {fr: Fès-Meknès, ar: فاس مكناس}
    products: [{fr: savon noir, ar: الصابون البلدي}, {fr: ghassoul, ar: الغاسول}]
    stand: K1
  - id: coop-warda
    name: {fr: Coopérative Warda, ar: تعاونية وردة}
    category: beauty
    city: {fr: Kelaat M'Gouna, ar: قلعة مكونة}
    region: {fr: Drâa-Tafilalet, ar: درعة تافيلالت}
    products: [{fr: eau de rose, ar: ماء الورد}, {fr: savon à la rose, ar: صابون الورد}]
    stand: K2
    labels: [organic]
  - id: tannerie-chouara
    name: {fr: Association Chouara, ar: جمعية الشوارة}
    category: leather
    city: {fr: Fès, ar: فاس}
    region: {fr: Fès-Meknès, ar: فاس مكناس}
    products: [{fr: babouches, ar: البلاغي}, {fr: sacs en cuir, ar: حقائب جلدية}]
    stand: M7
workshops:
  - id: photo-produits
    title: {fr: Photographier ses produits, ar: تصوير المنتوجات}
    room: {fr: Salle Atlas, ar: قاعة الأطلس}
    starts: 2027-03-06T11:00
    ends: 2027-03-06T12:30
    capacity: 20
"""
FES_NOW = dt.datetime(2027, 3, 5, 9, 0, tzinfo=ZONE)


@pytest.fixture(scope="module")
def other() -> Gazetteer:
    catalogue = validate_catalogue(yaml.safe_load(OTHER_FAIR), yaml_locator("fes.yaml"))
    shuttle = InfoTopic("shuttle", {"fr": "Navette", "ar": "الحافلة"},
                        ("navette", "bus", "حافلة", "tobis"))
    return Gazetteer.from_catalogue(catalogue, [shuttle])


def test_another_fair_products_rank_the_closest_first(other: Gazetteer) -> None:
    result = understand("savon noir", other, FES_NOW)
    assert result.intent is Intent.STANDS
    assert [product.text for product in result.entities.products][:1] == ["savon noir"]
    assert result.entities.products[0].stands == ("K1",)
    assert {stand for product in result.entities.products for stand in product.stands} \
        <= {"K1", "K2"}


def test_another_fair_in_english(other: Gazetteer) -> None:
    """The glossary's words for what fairs sell: "soap" is this catalogue's "savon"."""
    result = understand("who sells soap?", other, FES_NOW)
    assert result.intent is Intent.STANDS
    assert {stand for product in result.entities.products for stand in product.stands} == {
        "K1", "K2"}


def test_another_fair_darija_and_arabic(other: Gazetteer) -> None:
    result = understand("fin nlga lbelgha", other, FES_NOW)
    assert result.intent is Intent.STANDS
    assert [product.stands for product in result.entities.products] == [("M7",)]
    result = understand("من يبيع ماء الورد؟", other, FES_NOW)
    assert result.entities.products[0].stands == ("K2",)


def test_another_fair_workshop_and_exhibitor(other: Gazetteer) -> None:
    result = understand("je veux m'inscrire à l'atelier photographie", other, FES_NOW)
    assert (result.intent, result.entities.workshops) == (Intent.WORKSHOP, ("photo-produits",))
    result = understand("cooperative warda", other, FES_NOW)
    assert result.intent is Intent.STAND
    assert [(found.id, found.stand) for found in result.entities.exhibitors] == [
        ("coop-warda", "K2")]


def test_info_topics_of_the_catalogue_section() -> None:
    """The catalogue's `info:` section as CONTRACT writes it; known topics need no words."""
    section = yaml.safe_load("""
    - id: toilets
      answer: {fr: "Près de l'entrée", ar: قرب المدخل}
    - id: shuttle
      topic: {fr: Navette, ar: الحافلة}
      keywords: [navette, bus, حافلة, tobis]
      answer: {fr: "Toutes les heures", ar: كل ساعة}
    - not a topic
    """)
    found = info_topics(section)
    assert [(topic.id, topic.keywords) for topic in found] == [
        ("toilets", ()), ("shuttle", ("navette", "bus", "حافلة", "tobis"))]
    catalogue = validate_catalogue(yaml.safe_load(OTHER_FAIR), yaml_locator("fes.yaml"))
    gazetteer = Gazetteer.from_catalogue(catalogue, found)
    assert understand("c'est où la navette ?", gazetteer, FES_NOW).entities.info == "shuttle"
    assert understand("où sont les toilettes ?", gazetteer, FES_NOW).entities.info == "toilets"


def test_another_fair_custom_topic_category_and_stand(other: Gazetteer) -> None:
    result = understand("fin kayn tobis ?", other, FES_NOW)
    assert (result.intent, result.entities.info) == (Intent.INFO, "shuttle")
    result = understand("maroquinerie", other, FES_NOW)
    assert (result.intent, result.entities.categories) == (Intent.STANDS, ("leather",))
    assert understand("k 3", other, FES_NOW).entities.stand == "K3"
    assert understand("ateliers demain", other, FES_NOW).entities.day == dt.date(2027, 3, 6)


# ---------------------------------------------------------------------------------------------
# The classifier


# Training takes seconds: the full training set and the classifiers fitted on it are made once
# for this module and compared here, each of them fitted from scratch.


@pytest.fixture(scope="module")
def training() -> tuple[list[str], list[str]]:
    """The training utterances as masked for the classifier, and their intents."""
    return training_set()


@pytest.fixture(scope="module")
def trained() -> Classifier:
    """The classifier as the app trains it (`train()`: in a child process)."""
    return train()


@pytest.fixture(scope="module")
def fitted_here(training: tuple[list[str], list[str]]) -> Classifier:
    """The same utterances fitted in this process."""
    texts, labels = training
    return Classifier.fit(texts, labels, in_process=True)


def test_two_trainings_give_the_same_predictions(trained: Classifier,
                                                 fitted_here: Classifier) -> None:
    texts = [text for text, _ in training_rows()[::7]] + ["n'importe quoi", "PRODUCT DAY"]
    first, second = trained, fitted_here
    assert [first.margins(text) for text in texts] == [second.margins(text) for text in texts]


def test_fast_path_computes_what_the_pipeline_does(
        training: tuple[list[str], list[str]], trained: Classifier) -> None:
    """The serving process computes, without scikit-learn, the margins its pipeline gives."""
    texts, labels = training
    model, pipeline = trained, fit_pipeline(texts, labels)
    for text in ("ou sont les INFO", "bghit ntsjl f WORKSHOP", "PRODUCT", "xyz", "",
                 "a  b", "فين كاين العسل", "qu'est-ce que c'est ?", texts[0], texts[-1]):
        assert model.margins(text) == pytest.approx(
            [float(value) for value in pipeline.decision_function([text])[0]], abs=1e-9), text


@pytest.mark.parametrize("text", ["ou sont les toilettes", "a", "ab  cd\tefg", "",
                                  "فين كاين العسل", "bghit ntsjl f WORKSHOP DAY"])
def test_our_n_grams_are_scikit_learns(text: str) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False)
    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=False,
                            token_pattern=r"\S+")
    assert char_wb_grams(text) == chars.build_analyzer()(text)
    assert word_grams(text) == words.build_analyzer()(text)


def test_training_happens_in_a_child_process(training: tuple[list[str], list[str]],
                                             trained: Classifier,
                                             fitted_here: Classifier) -> None:
    """The classifier comes back from a spawned process with the same numbers as one fitted
    here, so a serving process need not import scikit-learn."""
    texts, _labels = training
    here, there = fitted_here, trained
    assert here.labels == there.labels
    for text in texts[::50]:
        assert here.margins(text) == there.margins(text)


# ---------------------------------------------------------------------------------------------
# Doubt: a small classifier of our own, whose scores these messages split


@pytest.fixture(scope="module")
def small_model() -> Classifier:
    texts = ["alpha one", "beta two", "gamma three", "delta four", "epsilon five", "zeta six"]
    intents = ["help", "feedback", "menu", "privacy", "stop", "my_list"]
    return Classifier.fit(texts, intents, in_process=True)


@pytest.mark.parametrize("text", ["valorisation", "التسويق", "comptabilité"])
def test_a_stand_or_a_workshop_is_asked(fair: Gazetteer, text: str) -> None:
    """A bare word both a workshop and stands answer to: "Un stand ou un atelier ?"."""
    result = understand(text, fair, NOW)
    assert {result.intent, *result.alternatives} == {Intent.STANDS, Intent.WORKSHOP}
    assert result.entities.workshops and result.entities.products


def test_close_intents_are_asked_about(fair: Gazetteer, small_model: Classifier) -> None:
    result = understand("alpha beta gamma", fair, NOW, small_model)
    assert result.in_doubt and result.confidence < 0.5
    assert {result.intent, *result.alternatives} == {Intent.HELP, Intent.FEEDBACK, Intent.MENU}


def test_nothing_credible_is_unknown(fair: Gazetteer, small_model: Classifier) -> None:
    result = understand("xyzzy plugh", fair, NOW, small_model)
    assert result.intent is Intent.UNKNOWN
    assert result.confidence < 0.2


def test_a_clear_message_is_not_in_doubt(fair: Gazetteer, small_model: Classifier) -> None:
    result = understand("gamma three", fair, NOW, small_model)
    assert (result.intent, result.alternatives) == (Intent.MENU, ())


def test_gazetteer_of_the_served_catalogue() -> None:
    """The bot's catalogue snapshot (what storage serves) gives the same understanding."""
    catalogue = validate_catalogue(yaml.safe_load(OTHER_FAIR), yaml_locator("fes.yaml"))
    fair_in = catalogue.fair
    assert fair_in is not None
    fair = FairView(1, fair_in.id, fair_in.name.as_dict(), fair_in.city.as_dict(),
                    fair_in.venue.as_dict(), None, fair_in.timezone, fair_in.opens,
                    fair_in.closes, fair_in.hours)
    stands = {
        stand.number: StandView(stand.number, stand.zone.as_dict(), stand.x, stand.y, tuple(
            ExhibitorView(item.id, item.kind, item.name.as_dict(), None, item.city.as_dict(),
                          item.region.as_dict(), [p.as_dict() for p in item.products],
                          item.women_led, list(item.labels), None)
            for item in catalogue.exhibitors or [] if item.stand == stand.number))
        for stand in catalogue.stands or []}
    workshop = (catalogue.workshops or [])[0]
    views = (WorkshopView(7, workshop.id, workshop.title.as_dict(), None,
                          speaker_names(workshop.speaker),
                          workshop.room.as_dict(), workshop.starts.replace(tzinfo=ZONE),
                          workshop.ends.replace(tzinfo=ZONE), workshop.capacity, 0,
                          workshop.language, workshop.audience, False),)
    entries = entries_from_catalogue(catalogue)
    snapshot = CatalogueSnapshot(1, fair, stands, (), (), SearchIndex.build(entries),
                                 {entry.exhibitor_id: dict(entry.name) for entry in entries},
                                 views)
    served = Gazetteer.from_snapshot(snapshot)
    result = understand("savon noir", served, FES_NOW)
    assert (result.intent, result.entities.products[0].stands) == (Intent.STANDS, ("K1",))
    result = understand("atelier photographie demain", served, FES_NOW)
    assert result.entities.workshops == ("photo-produits",)
    assert result.entities.day == dt.date(2027, 3, 6)


def test_a_serving_process_never_imports_scikit_learn() -> None:
    """Trained in a child, the classifier leaves scikit-learn and SciPy (about 80 MiB) out of
    the process that answers."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from handlers.understanding.understand import classifier\n"
            "assert classifier().labels\n"
            "print(sorted(name for name in ('sklearn', 'scipy') if name in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_training_falls_back_to_this_process_when_no_child_can_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    training: tuple[list[str], list[str]],
) -> None:
    texts, labels = training
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    model = Classifier.fit(texts[:200], labels[:200])
    assert model.labels and model.margins(texts[0])
    assert "training it here" in caplog.text


def test_the_fitted_classifier_is_read_back_from_the_cache_instead_of_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, training: tuple[list[str], list[str]],
) -> None:
    """A restarted process answers at once: the fitted numbers come back from the cache
    folder, with the same answers, and a damaged file is refused rather than half read."""
    from handlers.understanding.understand import _cached_or_trained, _code_key

    texts, labels = training
    model = Classifier.fit(texts[:300], labels[:300], in_process=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    key = "0" * 64
    path = tmp_path / "tadamon" / f"intents-{_code_key()[:16]}-{key[:16]}.npz"
    model.save(path)
    cached = _cached_or_trained(key)
    assert cached.labels == model.labels
    for text in ("fin kayn l3sel", "où sont les toilettes ?", "merci", "فين كاين العسل",
                 "what workshops are there tomorrow?"):
        assert cached.probabilities(text) == model.probabilities(text)
    path.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ValueError, match="not a fitted classifier"):
        Classifier.load(path)
