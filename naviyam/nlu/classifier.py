"""Training the intent model: TF-IDF (char n-grams + morpheme n-grams) → logistic regression.

Multinomial logistic regression gives probabilities that are usable as confidence as they are
(the held-out calibration error is reported in meta.json). Training on ~4,000 utterances takes a
few seconds on two cores. Serving never loads this: ``export`` hands the fitted arrays to
``naviyam.nlu.intent_scorer``, checked against sklearn's own probabilities first.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from naviyam.nlu.intent_scorer import Channel, IntentScorer

# Largest difference in any class probability tolerated between the export and sklearn
# (float32 TF-IDF either way; only the summation order differs).
EXPORT_TOLERANCE = 1e-5


class IntentClassifier:
    def __init__(self, c: float = 16.0, seed: int = 0):
        # char_wb 1-4: robust to typos and spacing; min_df drops one-off noise n-grams.
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True,
                                     lowercase=False, dtype=np.float32)
        self.morphs = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", ngram_range=(1, 2), min_df=2,
                                      sublinear_tf=True, lowercase=False, dtype=np.float32)
        self.cues = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False, use_idf=False,
                                    dtype=np.float32)
        self.model = LogisticRegression(C=c, max_iter=3000, random_state=seed)
        self.labels: tuple[str, ...] = ()

    def _matrix(self, channels: tuple[Sequence[str], Sequence[str], Sequence[str]], fit: bool = False):
        vectorizers = (self.chars, self.morphs, self.cues)
        parts = [(v.fit_transform(c) if fit else v.transform(c)) for v, c in zip(vectorizers, channels)]
        return sparse.hstack(parts).tocsr()

    def fit(self, channels: tuple[Sequence[str], Sequence[str], Sequence[str]],
            labels: Sequence[str]) -> "IntentClassifier":
        """``channels``: masked texts, morpheme texts, cue texts (see ``naviyam.nlu.features``)."""
        self.model.fit(self._matrix(channels, fit=True), list(labels))
        self.labels = tuple(str(c) for c in self.model.classes_)
        return self

    def predict_proba(self, channels: tuple[Sequence[str], Sequence[str], Sequence[str]]) -> np.ndarray:
        """Rows of class probabilities, columns in ``self.labels`` order."""
        return self.model.predict_proba(self._matrix(channels))

    def export(self, channels: tuple[Sequence[str], Sequence[str], Sequence[str]],
               expected: np.ndarray | None = None) -> IntentScorer:
        """The fitted model as an ``IntentScorer``; ``channels`` (the training texts) are scored
        by both, and a difference beyond EXPORT_TOLERANCE is an error, not a silent drift.
        ``expected``: sklearn's probabilities for ``channels`` when the caller already has them."""
        blocks = []
        for v in (self.chars, self.morphs, self.cues):
            vocabulary = [""] * len(v.vocabulary_)
            for term, column in v.vocabulary_.items():
                vocabulary[column] = term
            if v.analyzer not in ("char_wb", "word") or v.norm != "l2" or v.lowercase or v.preprocessor \
                    or v.tokenizer or v.stop_words or (v.analyzer == "word" and v.token_pattern != r"\S+"):
                raise ValueError(f"intent model: cannot export a vectorizer with {v.get_params()}")
            blocks.append(Channel(analyzer=v.analyzer, ngram_range=tuple(v.ngram_range),
                                  sublinear_tf=v.sublinear_tf, vocabulary=tuple(vocabulary),
                                  idf=v.idf_.astype(np.float32) if v.use_idf else None))
        scorer = IntentScorer(blocks, np.asarray(self.model.coef_, dtype=np.float64),
                              np.asarray(self.model.intercept_, dtype=np.float64), self.labels)
        if expected is None:
            expected = self.predict_proba(channels)
        got = np.vstack([scorer.predict_proba(texts) for texts in zip(*channels)])
        worst = float(np.abs(expected - got).max()) if len(expected) else 0.0
        if worst > EXPORT_TOLERANCE:
            raise ValueError(f"intent model: the export differs from sklearn by {worst:.2e} > {EXPORT_TOLERANCE}")
        return scorer
