"""The intent classifier: character n-grams (2-5, within words) and word uni- and bigrams of the
masked, folded text, and a linear support vector machine (one against the rest). The only
module that touches scikit-learn, which is untyped and slow to import: it is imported when a
model is trained."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# Fixed, so that two trainings on the same data give the same model.
RANDOM_STATE = 0
C = 1.0
# Intents have from tens to hundreds of utterances: each weighs as much in the training, or
# the rare ones (unknown, privacy) lose every close call.
CLASS_WEIGHT = "balanced"
CHAR_MAX = 5
# The margins become probabilities through a softmax at this temperature: a margin ahead by
# 0.5 is about 7 to 1.
TEMPERATURE = 4.0


class Classifier:
    """Scores of each intent for a masked, folded text."""

    def __init__(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        # A linear SVM trains in a tenth of a second where a logistic regression's solver
        # takes seconds (and more when other processes hold the cores): the app starts faster.
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion, make_pipeline
        from sklearn.svm import LinearSVC

        vectorizers = [
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, CHAR_MAX), lowercase=False,
                            sublinear_tf=True),
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=False,
                            token_pattern=r"\S+", sublinear_tf=True),
        ]
        self._pipeline: Any = make_pipeline(
            FeatureUnion([(f"part{index}", vectorizer)
                          for index, vectorizer in enumerate(vectorizers)]),
            LinearSVC(C=C, random_state=RANDOM_STATE, class_weight=CLASS_WEIGHT))
        self._pipeline.fit(list(texts), list(labels))
        svm: Any = self._pipeline[-1]
        self.labels: tuple[str, ...] = tuple(str(label) for label in svm.classes_)
        # Predicting one text through the pipeline costs milliseconds of input checks: the
        # same arithmetic is done here on the fitted vocabularies, weights and coefficients.
        self._parts: list[tuple[Any, dict[str, int], Any, int]] = []
        offset = 0
        for vectorizer in self._pipeline[0].transformer_list:
            fitted: Any = vectorizer[1]
            self._parts.append((fitted.build_analyzer(), dict(fitted.vocabulary_),
                                fitted.idf_, offset))
            offset += len(fitted.vocabulary_)
        self._weights: Any = svm.coef_.T.copy()
        self._intercept: Any = svm.intercept_.copy()

    def margins(self, text: str) -> list[float]:
        """Each intent's margin (in the order of `labels`), as the fitted pipeline computes it."""
        import numpy

        scores = self._intercept.copy()
        for analyze, vocabulary, idf, offset in self._parts:
            counts: dict[int, int] = {}
            for gram in analyze(text):
                index = vocabulary.get(gram)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
            if not counts:
                continue
            indexes = numpy.fromiter(counts, dtype=numpy.intp, count=len(counts))
            values = (numpy.log(numpy.fromiter(counts.values(), dtype=float, count=len(counts)))
                      + 1.0) * idf[indexes]
            values /= numpy.sqrt(values @ values)
            scores += values @ self._weights[indexes + offset]
        return [float(value) for value in scores]

    def pipeline_margins(self, text: str) -> list[float]:
        """The margins through scikit-learn's own pipeline (slow: to check `margins`)."""
        return [float(value) for value in self._pipeline.decision_function([text])[0]]

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
