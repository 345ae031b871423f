"""The trained intent model in the form serving reads: vocabularies, IDF weights and the
logistic-regression coefficients as plain arrays, scored with numpy.

Training stays on sklearn (``naviyam.nlu.classifier``); what it fitted is exported here. The
reason is the one-shot ``naviyam chat``: unpickling the sklearn pipeline imports sklearn and
scipy.stats (about a second of a ~3 s cold start) to score one message of a few hundred n-grams.
The n-grams are the ones sklearn's ``char_wb`` and ``word`` analyzers produce for the settings
``IntentClassifier`` uses, and ``IntentClassifier.export`` checks the exported model against
sklearn's own ``predict_proba`` on every training row before anything is saved.

    scorer = IntentScorer.load(models_dir / "nlu")
    scorer.scores(masked, morphs, cues)        # {"FOOD_RECOMMENDATION": 0.93, ...}
"""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ARRAYS_FILE = "intent_model.npz"
VOCAB_FILE = "intent_vocab.json"
_WHITESPACE_RUN = re.compile(r"\s\s+")   # sklearn's char_wb folds whitespace runs before padding
_TOKEN = re.compile(r"\S+")


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams inside space-padded words (sklearn's ``analyzer="char_wb"``)."""
    grams: list[str] = []
    for word in _WHITESPACE_RUN.sub(" ", text).split():
        padded = f" {word} "
        for n in range(low, high + 1):
            grams.extend(padded[i:i + n] for i in range(max(len(padded) - n, 0) + 1))
            if len(padded) <= n:
                break   # the whole padded word was this n's only gram: no longer ones, no repeat
    return grams


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    """Space-joined token n-grams, tokens being runs of non-space (``token_pattern=r"\\S+"``)."""
    tokens = _TOKEN.findall(text)
    return [" ".join(tokens[i:i + n]) for n in range(low, high + 1) for i in range(len(tokens) - n + 1)]


@dataclass(frozen=True)
class Channel:
    """One TF-IDF block of the feature row: how its text becomes terms and how they are weighted."""
    analyzer: str                 # "char_wb" | "word"
    ngram_range: tuple[int, int]
    sublinear_tf: bool
    vocabulary: tuple[str, ...]   # column order
    idf: np.ndarray | None        # None: plain term frequencies

    def terms(self, text: str) -> list[str]:
        low, high = self.ngram_range
        return char_wb_ngrams(text, low, high) if self.analyzer == "char_wb" else word_ngrams(text, low, high)

    def spec(self) -> dict:
        return {"analyzer": self.analyzer, "ngram_range": list(self.ngram_range),
                "sublinear_tf": self.sublinear_tf, "vocabulary": list(self.vocabulary),
                "use_idf": self.idf is not None}


class IntentScorer:
    """Class probabilities for the three text channels of ``naviyam.nlu.features``."""

    def __init__(self, channels: Sequence[Channel], coef: np.ndarray, intercept: np.ndarray,
                 labels: Sequence[str]):
        if coef.shape != (len(labels), sum(len(c.vocabulary) for c in channels)):
            raise ValueError(f"intent model: coefficients {coef.shape} do not fit {len(labels)} labels "
                             f"and {[len(c.vocabulary) for c in channels]} terms")
        self.channels = tuple(channels)
        self.labels = tuple(labels)
        self._coef_t = np.ascontiguousarray(coef.T)   # rows by column: one gather per message
        self._intercept = intercept
        self._index: list[dict[str, int]] = []
        self._offsets: list[int] = []
        offset = 0
        for channel in self.channels:
            self._index.append({term: offset + i for i, term in enumerate(channel.vocabulary)})
            self._offsets.append(offset)
            offset += len(channel.vocabulary)

    def decision(self, texts: Sequence[str]) -> np.ndarray:
        """Logits, one per label, for one message's channel texts."""
        columns: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for channel, index, offset, text in zip(self.channels, self._index, self._offsets, texts):
            counts = Counter(index[t] for t in channel.terms(text) if t in index)
            if not counts:
                continue
            cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
            if channel.sublinear_tf:
                tf = np.log(tf) + np.float32(1)
            if channel.idf is not None:
                tf = tf * channel.idf[cols - offset]
            norm = np.sqrt(np.dot(tf, tf))
            columns.append(cols)
            weights.append(tf / norm)
        logits = self._intercept.copy()
        for cols, w in zip(columns, weights):
            logits += w.astype(np.float64) @ self._coef_t[cols]
        return logits

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        logits = self.decision(texts)
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def scores(self, masked: str, morphs: str, cues: str) -> dict[str, float]:
        probs = self.predict_proba((masked, morphs, cues))
        return {label: float(p) for label, p in zip(self.labels, probs)}

    # -- persistence ---------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        arrays = {"coef": self._coef_t.T, "intercept": self._intercept}
        for i, channel in enumerate(self.channels):
            if channel.idf is not None:
                arrays[f"idf_{i}"] = channel.idf
        np.savez(directory / ARRAYS_FILE, **arrays)
        spec = {"labels": list(self.labels), "channels": [c.spec() for c in self.channels]}
        (directory / VOCAB_FILE).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "IntentScorer":
        directory = Path(directory)
        spec = json.loads((directory / VOCAB_FILE).read_text(encoding="utf-8"))
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
            channels = [Channel(analyzer=c["analyzer"], ngram_range=tuple(c["ngram_range"]),
                                sublinear_tf=c["sublinear_tf"], vocabulary=tuple(c["vocabulary"]),
                                idf=arrays[f"idf_{i}"] if c["use_idf"] else None)
                        for i, c in enumerate(spec["channels"])]
            return cls(channels, arrays["coef"], arrays["intercept"], spec["labels"])

