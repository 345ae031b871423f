"""FAISS inner-product index over unit vectors (inner product == cosine).

Exact ``IndexFlatIP`` for small corpora (2,400 shops search in well under a millisecond);
``IndexIVFFlat`` above ``ivf_threshold`` documents, where a full scan would start to cost.
Searches restricted to at most ``EXACT_SUBSET_MAX`` ids (a child's neighbourhood) are exact on
either index; on IVF they read only those ids' vectors, on flat FAISS tests every id against
the selector (``naviyam.scale_bench`` measures both).

Searches can be restricted to a subset of ids (the shops that pass the hard filters) with a
FAISS ``IDSelector``, so the filter is applied inside the scan instead of by over-fetching.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import faiss
import numpy as np

logger = logging.getLogger(__name__)

# Restricted IVF searches over at most this many ids are done exactly from the stored vectors:
# cheaper than probing lists, and a narrow filter (one category near one school) never misses.
EXACT_SUBSET_MAX = 4096


def ivf_nlist(n_docs: int) -> int:
    """FAISS's rule of thumb (4*sqrt(n) lists), with enough points per list to train k-means."""
    return max(1, min(int(4 * math.sqrt(n_docs)), n_docs // 8))


def ivf_nprobe(nlist: int) -> int:
    # Generous probing: filtered searches discard most of each probed list.
    return min(nlist, max(8, nlist // 8))


class VectorIndex:
    def __init__(self, index: faiss.Index) -> None:
        self._index = index
        self._ivf = _as_ivf(index)
        if self._ivf is not None and self._ivf.direct_map.no():
            # reconstruct() (exact scores for hybrid candidates) needs id -> list lookup.
            self._ivf.make_direct_map()

    @classmethod
    def build(cls, vectors: np.ndarray, ivf_threshold: int) -> "VectorIndex":
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        index: faiss.Index
        if n > ivf_threshold:
            nlist = ivf_nlist(n)
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            # Small lists are fine for our purpose; silences FAISS's "please provide more
            # training points" warning when the threshold is set low (tests).
            index.cp.min_points_per_centroid = 1
            index.train(vectors)
            index.nprobe = ivf_nprobe(nlist)
        else:
            index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        built = cls(index)
        logger.info("built %s vector index over %d docs (dim=%d)", built.kind, n, dim)
        return built

    @property
    def kind(self) -> str:
        return "ivf_flat" if self._ivf is not None else "flat"

    @property
    def n_docs(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def nlist(self) -> int | None:
        return int(self._ivf.nlist) if self._ivf is not None else None

    @property
    def nprobe(self) -> int | None:
        return int(self._ivf.nprobe) if self._ivf is not None else None

    def search(self, qvec: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids), best first, only among ``allowed_ids`` when given.

        Returns ``min(k, number of candidates)`` hits: exact for the flat index and for narrow
        subsets, approximate (nprobe lists) for broad IVF searches.
        """
        q = np.ascontiguousarray(qvec, dtype=np.float32).reshape(1, self.dim)
        if allowed_ids is not None:
            allowed_ids = np.asarray(allowed_ids, dtype=np.int64)
        n_candidates = self.n_docs if allowed_ids is None else int(allowed_ids.size)
        k = min(k, n_candidates)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        if allowed_ids is not None and self._ivf is not None and allowed_ids.size <= EXACT_SUBSET_MAX:
            return self._exact(q[0], k, allowed_ids)

        params: faiss.SearchParameters | None = None
        selector = None  # SWIG keeps a raw pointer: this local keeps the selector alive
        if allowed_ids is not None and allowed_ids.size < self.n_docs:
            selector = faiss.IDSelectorBatch(allowed_ids)
            if self._ivf is not None:
                ivf_params = faiss.SearchParametersIVF()
                ivf_params.nprobe = self._ivf.nprobe  # per-call parameters replace the index's own
                params = ivf_params
            else:
                params = faiss.SearchParameters()
            params.sel = selector
        scores, ids = self._index.search(q, k, params=params)
        keep = ids[0] >= 0
        scores, ids = scores[0][keep], ids[0][keep]
        if ids.size < k and self._ivf is not None:
            # The probed lists held too few allowed docs: fall back to an exact scan.
            return self._exact(q[0], k, allowed_ids if allowed_ids is not None else np.arange(self.n_docs))
        return scores, ids

    def scores_for(self, qvec: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Exact cosine of the query with each of ``ids``."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.zeros(0, dtype=np.float32)
        return self._index.reconstruct_batch(ids) @ np.asarray(qvec, dtype=np.float32).reshape(-1)

    def _exact(self, q: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.scores_for(q, ids)
        top = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
        top = top[np.lexsort((ids[top], -scores[top]))]
        return scores[top], ids[top]

    def save(self, path: Path) -> None:
        # Written aside and renamed into place: a process that has the old file memory-mapped
        # (``load``) keeps reading the old inode instead of a file being rewritten under it.
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        faiss.write_index(self._index, str(partial))
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path, nprobe: int | None = None) -> "VectorIndex":
        """Memory-maps the stored vectors (flat codes and IVF lists): every server process on a
        host shares the page cache's one copy instead of reading its own into the heap."""
        loaded = cls(faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC))
        if nprobe is not None and loaded._ivf is not None:
            loaded._ivf.nprobe = nprobe
        return loaded


def _as_ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None
