"""BM25 over Kiwi morphemes (``bm25s``, fed pre-tokenized documents).

bm25s's own tokenizer splits on whitespace/regex, which is wrong for Korean ("치킨먹고싶어" is
one "word"); we give it morpheme lists from ``documents.Tokenizer`` instead.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

logger = logging.getLogger(__name__)


class BM25Index:
    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model

    @classmethod
    def build(cls, corpus_tokens: Sequence[Sequence[str]]) -> "BM25Index":
        model = bm25s.BM25()
        model.index([list(doc) for doc in corpus_tokens], show_progress=False)
        logger.info("built BM25 index over %d docs (%d terms)", model.scores["num_docs"], len(model.vocab_dict))
        return cls(model)

    @property
    def n_docs(self) -> int:
        return int(self._model.scores["num_docs"])

    def scores(self, query_tokens: Sequence[str], doc_ids: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every document (or of ``doc_ids``) for the query; 0 when no query term
        is in the vocabulary."""
        # Repeated words in a child's message ("치킨 치킨!") should not double the weight.
        term_ids = list(dict.fromkeys(self._model.get_tokens_ids(list(query_tokens))))
        if term_ids:
            scores = self._model.get_scores_from_ids(term_ids)
        else:
            scores = np.zeros(self.n_docs, dtype=np.float32)
        return scores if doc_ids is None else scores[np.asarray(doc_ids, dtype=np.int64)]

    def save(self, directory: Path) -> None:
        self._model.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> "BM25Index":
        return cls(bm25s.BM25.load(str(directory), show_progress=False))
