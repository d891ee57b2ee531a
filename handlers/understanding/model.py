"""The intent classifier: character n-grams (2-5, within words) and word uni- and bigrams of the
masked, folded text, and a linear support vector machine (one against the rest).

scikit-learn fits it, in a child Python process (`python -m handlers.understanding.model`):
scikit-learn and SciPy under it are untyped, slow to import and cost about 80 MiB in every
process that imports them, while answering needs only the fitted numbers (vocabularies, inverse
document frequencies, weights), which come back to the serving process. This module is the only
one that touches scikit-learn."""

from __future__ import annotations

import ast
import json
import logging
import math
import operator
import os
import pickle
import re
import subprocess
import sys
import zipfile
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Fixed, so that two trainings on the same data give the same model.
RANDOM_STATE = 0
C = 1.0
# Intents have from tens to hundreds of utterances: each weighs as much in the training, or
# the rare ones (unknown, privacy) lose every close call.
CLASS_WEIGHT = "balanced"
CHAR_MIN, CHAR_MAX = 2, 5
WORD_MIN, WORD_MAX = 1, 2
# The margins become probabilities through a softmax at this temperature: a margin ahead by
# 0.5 is about 7 to 1.
TEMPERATURE = 4.0
# The .npy format of NumPy's .npz archives, written and read here without NumPy (about 12 MB
# in every process that imports it, for a few thousand multiplications a message).
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_FLOAT = "<f8" if sys.byteorder == "little" else ">f8"
_SPACES = re.compile(r"\s\s+")


def char_wb_grams(text: str, low: int = CHAR_MIN, high: int = CHAR_MAX) -> list[str]:
    """The character n-grams of each word padded with a space, as scikit-learn's `char_wb`
    analyzer makes them (a word shorter than n gives itself once)."""
    grams: list[str] = []
    for word in _SPACES.sub(" ", text).split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            offset = 0
            grams.append(padded[offset:offset + n])
            while offset + n < length:
                offset += 1
                grams.append(padded[offset:offset + n])
            if offset == 0:
                break
    return grams


def word_grams(text: str, low: int = WORD_MIN, high: int = WORD_MAX) -> list[str]:
    """The word n-grams (words are runs of non-spaces), as scikit-learn's `word` analyzer
    makes them with a token pattern of runs of non-spaces."""
    words = text.split()
    grams = list(words) if low == 1 else []
    for n in range(max(low, 2), min(high, len(words)) + 1):
        grams.extend(" ".join(words[index:index + n]) for index in range(len(words) - n + 1))
    return grams


_ANALYZERS = {"char_wb": char_wb_grams, "word": word_grams}


@dataclass(frozen=True, slots=True)
class _Part:
    """One vectorizer's fitted numbers: its vocabulary, the inverse document frequencies and
    where its columns start among the weights."""

    analyzer: str
    vocabulary: dict[str, int]
    idf: array[float]
    offset: int


def fit_pipeline(texts: Sequence[str], labels: Sequence[str]) -> Any:
    """scikit-learn's fitted pipeline (vectorizers, then the SVM)."""
    # A linear SVM trains in a tenth of a second where a logistic regression's solver takes
    # seconds (and more when other processes hold the cores): the app starts faster.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.svm import LinearSVC

    vectorizers = [
        TfidfVectorizer(analyzer="char_wb", ngram_range=(CHAR_MIN, CHAR_MAX), lowercase=False,
                        sublinear_tf=True),
        TfidfVectorizer(analyzer="word", ngram_range=(WORD_MIN, WORD_MAX), lowercase=False,
                        token_pattern=r"\S+", sublinear_tf=True),
    ]
    pipeline = make_pipeline(
        FeatureUnion([(f"part{index}", vectorizer)
                      for index, vectorizer in enumerate(vectorizers)]),
        LinearSVC(C=C, random_state=RANDOM_STATE, class_weight=CLASS_WEIGHT))
    pipeline.fit(list(texts), list(labels))
    return pipeline


def _fit(texts: list[str], labels: list[str]) -> tuple[Any, ...]:
    """The fitted numbers, as plain values that travel between processes."""
    pipeline = fit_pipeline(texts, labels)
    svm: Any = pipeline[-1]
    parts: list[_Part] = []
    offset = 0
    for _name, vectorizer in pipeline[0].transformer_list:
        vocabulary = {str(gram): int(index) for gram, index in vectorizer.vocabulary_.items()}
        parts.append(_Part(str(vectorizer.analyzer), vocabulary,
                           array("d", vectorizer.idf_.tolist()), offset))
        offset += len(vocabulary)
    # Plain arrays (the weights of each label, one after the other): the serving process
    # unpickles them without importing NumPy.
    return (tuple(str(label) for label in svm.classes_), parts,
            array("d", svm.coef_.ravel().tolist()), array("d", svm.intercept_.tolist()))


def _fit_in_child(texts: list[str], labels: list[str]) -> tuple[Any, ...]:
    """`_fit` in a new Python process, which alone imports scikit-learn."""
    path = os.pathsep.join(entry for entry in sys.path if entry)
    done = subprocess.run([sys.executable, "-m", __name__], input=pickle.dumps((texts, labels)),
                          capture_output=True, check=False, timeout=600,
                          env={**os.environ, "PYTHONPATH": path})
    if done.returncode != 0:
        raise subprocess.SubprocessError(done.stderr.decode("utf-8", "replace")[-500:])
    fitted = pickle.loads(done.stdout)  # our own child's answer
    if not isinstance(fitted, tuple):
        raise pickle.UnpicklingError("the child's answer is not a fitted model")
    return fitted


class Classifier:
    """Scores of each intent for a masked, folded text."""

    def __init__(self, labels: tuple[str, ...], parts: list[_Part], weights: array[float],
                 intercept: array[float]) -> None:
        """`weights`: each label's weights of every feature, label after label."""
        self.labels = labels
        self._parts = [(_ANALYZERS[part.analyzer], part.vocabulary, part.idf, part.offset)
                       for part in parts]
        self._weights = weights
        self._intercept = intercept
        features = len(weights) // max(len(labels), 1)
        view = memoryview(weights)
        self._columns = [view[start:start + features]
                         for start in range(0, features * len(labels), features)]

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], *,
            in_process: bool = False) -> Classifier:
        """Train on these texts, in a child process unless `in_process` (or the child cannot
        run: then here, and said in the log)."""
        if not in_process:
            try:
                return cls(*_fit_in_child(list(texts), list(labels)))
            except (OSError, subprocess.SubprocessError, pickle.UnpicklingError,
                    EOFError) as exc:
                log.warning("training the intent classifier in a child process failed (%s); "
                            "training it here", exc)
        return cls(*_fit(list(texts), list(labels)))

    def save(self, path: Path) -> None:
        """Write the fitted numbers to `path` (an .npz of plain arrays and one JSON text: no
        pickle, so reading a file back runs no code), through a temporary file."""
        header = {"labels": list(self.labels),
                  "parts": [{"analyzer": _analyzer_name(analyze), "vocabulary": vocabulary,
                             "offset": offset}
                            for analyze, vocabulary, _idf, offset in self._parts]}
        width = len(self.labels)
        arrays = {"weights": (self._weights, (width, len(self._weights) // max(width, 1))),
                  "intercept": (self._intercept, (width,))}
        for index, (_a, _v, idf, _o) in enumerate(self._parts):
            arrays[f"idf{index}"] = (idf, (len(idf),))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
            text = json.dumps(header)
            archive.writestr("header.npy", _npy(f"<U{len(text)}", (), text.encode("utf-32-le")))
            for name, (values, shape) in arrays.items():
                archive.writestr(f"{name}.npy", _npy(_FLOAT, shape, values.tobytes()))
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> Classifier:
        """The classifier `save` wrote to `path`; ValueError when the file is not one."""
        try:
            with zipfile.ZipFile(path) as archive:
                header = json.loads(_read_npy(archive, "header", "<U")[0].decode("utf-32-le"))
                parts = [_Part(part["analyzer"], part["vocabulary"],
                               _floats(archive, f"idf{index}"), int(part["offset"]))
                         for index, part in enumerate(header["parts"])]
                return cls(tuple(header["labels"]), parts, _floats(archive, "weights"),
                           _floats(archive, "intercept"))
        except (KeyError, TypeError, EOFError, SyntaxError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path.name} is not a fitted classifier: {exc}") from exc

    def margins(self, text: str) -> list[float]:
        """Each intent's margin (in the order of `labels`), as the fitted pipeline computes it."""
        values: list[float] = []
        rows: list[int] = []
        for analyze, vocabulary, idf, offset in self._parts:
            counts: dict[int, int] = {}
            for gram in analyze(text):
                index = vocabulary.get(gram)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
            if not counts:
                continue
            # Sublinear term frequencies times the inverse document frequencies, normalised.
            part = [(math.log(count) + 1.0) * idf[index] for index, count in counts.items()]
            norm = math.sqrt(sum(value * value for value in part))
            values += [value / norm for value in part]
            rows += [index + offset for index in counts]
        # Each label's weights of the features present, in C (a few thousand products).
        return [intercept + sum(map(operator.mul, values, map(column.__getitem__, rows)))
                for intercept, column in zip(self._intercept, self._columns, strict=True)]

    def probabilities(self, text: str) -> list[tuple[str, float]]:
        """Every intent with a probability (a softmax of the margins), the most likely first."""
        margins = self.margins(text)
        top = max(margins)
        weights = [math.exp((margin - top) * TEMPERATURE) for margin in margins]
        total = sum(weights)
        pairs = [(label, weight / total)
                 for label, weight in zip(self.labels, weights, strict=True)]
        pairs.sort(key=lambda pair: (-pair[1], pair[0]))
        return pairs


def _npy(descr: str, shape: tuple[int, ...], data: bytes) -> bytes:
    """An .npy file (format 1.0) of these bytes."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    padding = -(len(_NPY_MAGIC) + 2 + len(header) + 1) % 64
    header += " " * padding + "\n"
    return _NPY_MAGIC + len(header).to_bytes(2, "little") + header.encode("latin-1") + data


def _read_npy(archive: zipfile.ZipFile, name: str, kind: str) -> tuple[bytes, tuple[int, ...]]:
    """The data and shape of an .npy member written by `_npy` (or NumPy, format 1.0)."""
    content = archive.read(f"{name}.npy")
    if not content.startswith(_NPY_MAGIC):
        raise TypeError(f"{name} is not an .npy array of format 1.0")
    length = int.from_bytes(content[len(_NPY_MAGIC):len(_NPY_MAGIC) + 2], "little")
    start = len(_NPY_MAGIC) + 2
    fields = ast.literal_eval(content[start:start + length].decode("latin-1"))
    if (not isinstance(fields, dict) or not str(fields.get("descr")).startswith(kind)
            or fields.get("fortran_order")):
        raise TypeError(f"{name} is not an array of {kind}")
    return content[start + length:], tuple(fields["shape"])


def _floats(archive: zipfile.ZipFile, name: str) -> array[float]:
    """An .npy member of this machine's float64, as a flat array."""
    data, _shape = _read_npy(archive, name, _FLOAT)
    values = array("d")
    values.frombytes(data)
    return values


def _analyzer_name(analyze: Any) -> str:
    return next(name for name, function in _ANALYZERS.items() if function is analyze)


def _child() -> None:
    """The child process: texts and labels in on standard input, the fitted numbers out."""
    from handlers.understanding.model import _fit as fit  # this module under its own name

    texts, labels = pickle.load(sys.stdin.buffer)  # from our own parent
    sys.stdout.buffer.write(pickle.dumps(fit(texts, labels)))


if __name__ == "__main__":
    _child()
