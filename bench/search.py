"""Search benchmark: index build time and query latency of the stand finder's search.

Builds the index twice: on the sample fair (its 120 stands), and on --exhibitors synthetic
exhibitors made from the sample's vocabulary (names combined from two sample names plus an
invented proper name in both scripts, so the vocabulary grows with the catalogue as a real one
would; one to three sample products; a sample city with its region; stands A1..Z400). Each index
then answers a mixed query list --rounds times (the test query set: names, aliases, products,
cities, Arabic with and without diacritics, Darija in both scripts, typos, stand numbers; plus
sentences, nonsense and, on the synthetic index, its own names with a typo). Prints the build
time, p50 and p99 latency of one `search` call, the worst case of a message (2,000 characters
of mixed words, the longest text the router lets through: search, "did you mean" and the closest
categories, as the stand finder asks them of a text, median of --long-runs), the time to draw a
floor map of the sample fair (drawn once per stand, language and catalogue version, then kept)
and the process's peak RSS.

    .venv/bin/python bench/search.py [--exhibitors 10000] [--rounds 5] [--seed 1] [--long-runs 200]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.catalogue import load_catalogue_file  # noqa: E402
from bot.floormap import PlanStand, draw_floor_map  # noqa: E402
from storage.search import SearchEntry, SearchIndex, entries_from_catalogue  # noqa: E402
from tests.test_search import QUERIES  # noqa: E402

SAMPLE = ROOT / "bot" / "data" / "sample-fair.yaml"
GOALS_MS = {"sample": 5.0, "synthetic": 50.0}

EXTRA_QUERIES = [
    "bonjour je cherche une cooperative de femmes qui vend du miel bio a khouribga",
    "wach kayn chi cooperative dyal zit l3oud f had salon",
    "فين كاينة التعاونية ديال الزربية ديال وادي زم",
    "xqzvw", "qwerty uiop", "???", "K 120", "z٤٠٠",
]

# Syllables in Latin letters and in Arabic, for invented proper names.
SYLLABLES = [
    ("ta", "تا"), ("ma", "ما"), ("zi", "زي"), ("ri", "ري"), ("ka", "كا"), ("lou", "لو"),
    ("da", "دا"), ("sa", "سا"), ("mi", "مي"), ("ra", "را"), ("bou", "بو"), ("fa", "فا"),
    ("ha", "ها"), ("ya", "يا"), ("wa", "وا"), ("ji", "جي"), ("nou", "نو"), ("ti", "تي"),
    ("gha", "غا"), ("kha", "خا"), ("che", "ش"), ("dou", "دو"), ("ni", "ني"), ("sou", "سو"),
]
ENDINGS = [("", ""), ("t", "ت"), ("n", "ن"), ("r", "ر"), ("l", "ل"), ("ne", "ين")]
PREFIXES = {"cooperative": ("Coopérative", "تعاونية"), "association": ("Association", "جمعية"),
            "company": ("", "شركة"), "institution": ("", "")}


def _core(text: str, prefix: str) -> str:
    return text.removeprefix(prefix).strip() if prefix else text


def synthetic(sample: Sequence[SearchEntry], count: int, rng: random.Random
              ) -> tuple[list[SearchEntry], list[str]]:
    """`count` exhibitors made from the sample's words, and queries for some of their names."""
    entries: list[SearchEntry] = []
    queries: list[str] = []
    products = [product for entry in sample for product in entry.products]
    aliases = [alias for entry in sample for alias in entry.aliases]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for index in range(count):
        first, second, place = rng.choice(sample), rng.choice(sample), rng.choice(sample)
        parts = [rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))]
        ending = rng.choice(ENDINGS)
        latin = ("".join(part[0] for part in parts) + ending[0]).capitalize()
        arabic = "".join(part[1] for part in parts) + ending[1]
        name = {
            "fr": f"Coopérative {latin} {_core(first.name['fr'], 'Coopérative')} "
                  f"{_core(second.name['fr'], 'Coopérative')}",
            "ar": f"تعاونية {arabic} {_core(first.name['ar'], 'تعاونية')} "
                  f"{_core(second.name['ar'], 'تعاونية')}",
        }
        entries.append(SearchEntry(
            stand=f"{letters[index // 400]}{index % 400 + 1}",
            exhibitor_id=f"synthetic-{index}",
            name=name,
            aliases=tuple(rng.sample(aliases, rng.randint(0, 1))),
            products=tuple(rng.sample(products, rng.randint(1, 3))),
            city=place.city, region=place.region,
            category=first.category, category_name=first.category_name,
            labels=first.labels,
        ))
        if index % 250 == 0:
            typo = latin[:2] + latin[3:] if len(latin) > 5 else latin + "e"
            queries += [latin.lower(), f"{typo.lower()} {place.city['fr']}", arabic]
    return entries, queries


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(label: str, entries: Sequence[SearchEntry], queries: Sequence[str], rounds: int,
            goal_ms: float) -> SearchIndex:
    started = time.perf_counter()
    index = SearchIndex.build(entries)
    build = time.perf_counter() - started
    for query in queries:
        index.search(query)
    latencies: list[float] = []
    for _ in range(rounds):
        for query in queries:
            started = time.perf_counter()
            index.search(query)
            latencies.append((time.perf_counter() - started) * 1000)
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    met = "met" if p99 < goal_ms else "NOT met"
    print(f"{label:<10} {len(entries):>6,} exhibitors  build {build * 1000:8.1f} ms  "
          f"{len(latencies):>5} queries  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
          f"max {max(latencies):6.2f} ms  (goal p99 < {goal_ms:.0f} ms: {met})", flush=True)
    return index


def long_message(rng: random.Random, size: int = 2000) -> str:
    """`size` characters of words from the query set (names, products, cities, both scripts,
    Darija) and nonsense, in random order: the longest text a message may be."""
    words = [word for query, _ in QUERIES for word in query.split()]
    words += [word for query in EXTRA_QUERIES for word in query.split()]
    text = ""
    while len(text) < size:
        text += rng.choice(words) + " "
    return text[:size]


def worst_case(label: str, index: SearchIndex, rng: random.Random, runs: int) -> None:
    """Median time of what the stand finder asks of the longest message."""
    text = long_message(rng)
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        index.search(text, 40)
        index.did_you_mean(text)
        index.categories_like(text)
        times.append((time.perf_counter() - started) * 1000)
    print(f"{label:<10} worst case: a {len(text):,}-character message, search + did you mean + "
          f"categories  median {statistics.median(times):6.2f} ms  max {max(times):6.2f} ms  "
          f"({runs} runs)", flush=True)


def maps(rounds: int) -> None:
    """Median time to draw the sample fair's map for a stand, in French and in Arabic."""
    catalogue = load_catalogue_file(SAMPLE).catalogue
    for language in ("fr", "ar"):
        plan = [PlanStand(stand.number, stand.zone.as_dict()[language], stand.x, stand.y)
                for stand in catalogue.stands]
        times, sizes = [], []
        for stand in plan[:: max(1, len(plan) // (4 * rounds))]:
            started = time.perf_counter()
            png = draw_floor_map(plan, highlight=stand.number, title=stand.number,
                                 entrance="Entrance", language=language)
            times.append((time.perf_counter() - started) * 1000)
            sizes.append(len(png))
        print(f"map ({language})  {len(plan)} stands  draw p50 {statistics.median(times):6.1f} ms"
              f"  max {max(times):6.1f} ms  PNG {statistics.median(sizes) / 1024:5.1f} KiB "
              f"({len(times)} stands)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exhibitors", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--long-runs", type=int, default=200)
    args = parser.parse_args()
    if not 0 < args.exhibitors <= 26 * 400:
        parser.error("--exhibitors must be between 1 and 10400 (stands A1..Z400)")
    print(f"search bench: sample fair and {args.exhibitors:,} synthetic exhibitors, "
          f"{args.rounds} rounds of the query list, {os.cpu_count()} cores", flush=True)
    sample = entries_from_catalogue(load_catalogue_file(SAMPLE).catalogue)
    queries = [query for query, _ in QUERIES] + EXTRA_QUERIES
    index = measure("sample", sample, queries, args.rounds, GOALS_MS["sample"])
    worst_case("sample", index, random.Random(args.seed), args.long_runs)
    maps(args.rounds)
    entries, own = synthetic(sample, args.exhibitors, random.Random(args.seed))
    index = measure("synthetic", entries, queries + own, args.rounds, GOALS_MS["synthetic"])
    worst_case("synthetic", index, random.Random(args.seed), args.long_runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS   {peak:8.1f} MB (the whole process: interpreter, libraries, both indexes)",
          flush=True)


if __name__ == "__main__":
    main()
