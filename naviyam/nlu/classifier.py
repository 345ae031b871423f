"""The trained intent model: TF-IDF (char n-grams + morpheme n-grams) → logistic regression.

Multinomial logistic regression gives probabilities that are usable as confidence as they are
(the held-out calibration error is reported in meta.json). Training on ~4,000 utterances takes a
few seconds on two cores.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn import config_context
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


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

    def scores(self, masked: str, morphs: str, cues: str) -> dict[str, float]:
        # One message per call: sklearn's per-call input and parameter validation costs more than
        # the model itself here; our inputs are always three strings, so it is skipped.
        with config_context(assume_finite=True, skip_parameter_validation=True):
            probs = self.predict_proba(([masked], [morphs], [cues]))[0]
        return {label: float(p) for label, p in zip(self.labels, probs)}
