"""The intent classifier answers without NumPy (about 12 MB in every process that imports it),
with the predictions NumPy's arithmetic gave: same intents, same ranking, same scores."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from handlers.understanding.model import TEMPERATURE, Classifier
from handlers.understanding.understand import classifier, training_set

ROOT = Path(__file__).resolve().parents[1]
# What people write, as tests/test_understanding.py has them, in the four forms.
SENTENCES = [
    "Bonjour, je voudrais voir le programme des ateliers", "salam, bghit nchof les ateliers",
    "bghit ntsjl f atelier", "je veux m'inscrire", "merci", "shukran", "fin kayn l3sel",
    "où sont les toilettes ?", "فين كاين العسل", "what workshops are there tomorrow?",
    "ou sont les INFO", "bghit ntsjl f WORKSHOP", "PRODUCT", "xyz", "", "a  b",
    "qu'est-ce que c'est ?", "زيت الأركان", "argan oil please", "n'importe quoi",
]


def _numpy_margins(model: Classifier, text: str) -> list[float]:
    """The margins as the classifier computed them with NumPy, from the same fitted numbers."""
    labels = len(model.labels)
    weights = numpy.frombuffer(model._weights, dtype=float).reshape(labels, -1).T
    scores = numpy.frombuffer(model._intercept, dtype=float).copy()
    for analyze, vocabulary, idf, offset in model._parts:
        counts: dict[int, int] = {}
        for gram in analyze(text):
            index = vocabulary.get(gram)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        if not counts:
            continue
        indexes = numpy.fromiter(counts, dtype=numpy.intp, count=len(counts))
        values = (numpy.log(numpy.fromiter(counts.values(), dtype=float, count=len(counts)))
                  + 1.0) * numpy.frombuffer(idf, dtype=float)[indexes]
        values /= numpy.sqrt(values @ values)
        scores += values @ weights[indexes + offset]
    return [float(value) for value in scores]


def _probabilities(labels: tuple[str, ...], margins: list[float]) -> list[tuple[str, float]]:
    top = max(margins)
    weights = [math.exp((margin - top) * TEMPERATURE) for margin in margins]
    pairs = [(label, weight / sum(weights)) for label, weight in zip(labels, weights, strict=True)]
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))


def test_predictions_are_numpys_over_the_whole_training_set() -> None:
    """Every training utterance and every test sentence: the same intents in the same order,
    with scores equal to NumPy's (to the last bits a different order of additions changes)."""
    model = classifier()
    texts, _labels = training_set()
    for text in [*texts, *SENTENCES]:
        ours = model.probabilities(text)
        theirs = _probabilities(model.labels, _numpy_margins(model, text))
        assert [label for label, _ in ours] == [label for label, _ in theirs], text
        assert [score for _, score in ours] == pytest.approx(
            [score for _, score in theirs], rel=0, abs=1e-12), text


def test_the_cached_file_is_an_npz_numpy_reads(tmp_path: Path) -> None:
    """The fitted numbers are kept as NumPy would keep them (an .npz of plain arrays)."""
    model = classifier()
    path = tmp_path / "model.npz"
    model.save(path)
    with numpy.load(path, allow_pickle=False) as stored:
        header = json.loads(str(stored["header"]))
        assert header["labels"] == list(model.labels)
        assert stored["weights"].shape == (len(model.labels), len(model._weights)
                                           // len(model.labels))
        assert stored["weights"].ravel().tolist() == model._weights.tolist()
    again = Classifier.load(path)
    for text in SENTENCES:
        assert again.probabilities(text) == model.probabilities(text)


def test_a_serving_process_never_imports_numpy() -> None:
    """Loading the classifier and understanding messages in French, Darija, Arabic and English
    on the sample fair's gazetteer leaves NumPy out of the process."""
    code = ("import datetime as dt, sys\n"
            "from zoneinfo import ZoneInfo\n"
            "import bot.app\n"
            "from handlers.understanding.understand import classifier, training_gazetteer\n"
            "from handlers.understanding import understand\n"
            "now = dt.datetime(2026, 12, 13, 10, tzinfo=ZoneInfo('Africa/Casablanca'))\n"
            "found = [understand(text, training_gazetteer(), now, classifier()).intent\n"
            "         for text in ('je cherche du miel', 'fin kayn l3sel', 'أبحث عن العسل',\n"
            "                      'where are the workshops')]\n"
            "print([str(intent) for intent in found], 'numpy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False", done.stdout
