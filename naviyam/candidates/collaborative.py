"""Funnel 3 — collaborative: user-based CF, "children who like what you like also liked ...".

Build: a sparse user x shop matrix from the event log, one implicit-feedback value per event
(``EVENT_WEIGHTS``; a rating event adds ``(rating - 3) / 2``, so a 1-star rating pushes a shop
down), summed per (user, shop) and damped with ``sign(x) * log1p(|x|)`` so that a child who
ordered 40 times from one shop does not drown out everything else they did.

Request: rows are L2-normalised, so the cosine similarity between the child and a user is a
sum over the shops they share; it is summed over the users of the child's own shops only (a
shop -> users index), so a turn costs what those shops' users did, not what the country did. The top
``CandidateSettings.neighbours`` positively similar users vote for their shops, weighted by
similarity. Shops the child already used are *not* excluded: children re-order from favourites,
and the ranker decides about repetition.

A child without history (new, or unknown to the log) gets ``[]``: CF has nothing to say about
them, which the generator reports as a cold start rather than an error.
"""
from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from naviyam.candidates.merge import ScoringFunnel
from naviyam.config import CandidateSettings
from naviyam.data.catalog import Catalog, concat_ranges
from naviyam.schemas import RequestContext, SearchFilters, UserProfile

logger = logging.getLogger(__name__)

# Implicit-feedback strength per event type: a view is barely a signal (it was shown), a click is
# interest, a favourite is stated liking, an order is money spent.
EVENT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"view": 0.1, "click": 1.0, "favorite": 1.5, "order": 2.0}
)


def interaction_matrix(events: pd.DataFrame | None, shop_ids: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """(damped user x shop matrix, user_ids of its rows); columns follow ``shop_ids``."""
    empty = (sp.csr_matrix((0, len(shop_ids)), dtype=np.float64), np.array([], dtype=str))
    if events is None or not len(events):
        return empty
    col_of = pd.Index(shop_ids).get_indexer(events["shop_id"])
    value = events["event_type"].map(dict(EVENT_WEIGHTS)).to_numpy(dtype=np.float64, na_value=np.nan)
    is_rating = (events["event_type"] == "rating").to_numpy()
    if "rating" in events:
        ratings = pd.to_numeric(events["rating"], errors="coerce").to_numpy(dtype=np.float64)
        value = np.where(is_rating, (ratings - 3.0) / 2.0, value)
    keep = (col_of >= 0) & np.isfinite(value)
    if not keep.any():
        return empty
    users, row_of = np.unique(events["user_id"].to_numpy()[keep].astype(str), return_inverse=True)
    matrix = sp.coo_matrix(
        (value[keep], (row_of, col_of[keep])), shape=(len(users), len(shop_ids))
    ).tocsr()  # duplicates (same user, same shop) are summed here
    matrix.data = np.sign(matrix.data) * np.log1p(np.abs(matrix.data))
    matrix.eliminate_zeros()
    return matrix, users


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv) @ matrix)


def _ranges(indptr: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the stored entries of ``keys``' rows, key by key, the index in ``keys``
    each comes from) for a compressed sparse matrix's ``indptr``."""
    start = indptr[keys]
    return concat_ranges(start, indptr[np.asarray(keys) + 1] - start)


class CollaborativeFunnel(ScoringFunnel):
    name = "collaborative"

    def __init__(
        self, catalog: Catalog, matrix: sp.csr_matrix, user_ids: np.ndarray, settings: CandidateSettings
    ) -> None:
        if matrix.shape[1] != len(catalog.shops):
            raise ValueError("interaction matrix columns must align with catalog.shops")
        super().__init__(catalog, settings)
        self._raw = matrix.tocsr()
        self._unit = _row_normalised(self._raw)
        self._unit.sort_indices()
        # Shop -> users who touched it: a child's neighbours are found from the users of the
        # child's own shops, not by comparing with every user of the country.
        self._by_shop = self._unit.tocsc()
        self._by_shop.sort_indices()
        # Users whose row is all zeros (e.g. only neutral 3-star ratings) have no direction to
        # compare, so they count as unknown, like users absent from the log.
        has_signal = np.diff(self._unit.indptr) > 0
        self._user_ids = np.asarray(user_ids).astype(str)
        self._row_of = {uid: i for i, uid in enumerate(self._user_ids) if has_signal[i]}
        self._neighbours = settings.neighbours

    @classmethod
    def build(cls, catalog: Catalog, events: pd.DataFrame | None, settings: CandidateSettings) -> "CollaborativeFunnel":
        matrix, users = interaction_matrix(events, catalog.shops["shop_id"].to_numpy())
        logger.info("collaborative: %d users x %d shops, %d interactions", *matrix.shape, matrix.nnz)
        return cls(catalog, matrix, users, settings)

    @property
    def n_users(self) -> int:
        return len(self._row_of)

    def knows(self, user_id: str) -> bool:
        return user_id in self._row_of

    # -- persistence -------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        return {
            "data": self._raw.data, "indices": self._raw.indices, "indptr": self._raw.indptr,
            "shape": np.array(self._raw.shape), "user_ids": self._user_ids,
            "shop_ids": self._shop_ids.astype(str),
        }

    @classmethod
    def from_state(
        cls, catalog: Catalog, settings: CandidateSettings, state: dict[str, np.ndarray]
    ) -> "CollaborativeFunnel":
        saved = sp.csr_matrix((state["data"], state["indices"], state["indptr"]), shape=tuple(state["shape"]))
        catalog_ids = catalog.shops["shop_id"].to_numpy()
        if not np.array_equal(state["shop_ids"], catalog_ids.astype(str)):
            # Re-map columns by shop_id; interactions with shops gone from the catalog are dropped.
            new_col = pd.Index(catalog_ids).get_indexer(state["shop_ids"])
            coo = saved.tocoo()
            keep = new_col[coo.col] >= 0
            saved = sp.csr_matrix(
                (coo.data[keep], (coo.row[keep], new_col[coo.col[keep]])), shape=(saved.shape[0], len(catalog_ids))
            )
        return cls(catalog, saved, state["user_ids"], settings)

    # -- request -----------------------------------------------------------------------------
    def neighbours(self, user_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, cosine) of the most similar users with a positive similarity, ascending rows;
        None for a cold start. Only users sharing a shop with the child can be similar, so the
        sum runs over the users of the child's shops (the same products, in the same order, as
        a product with every user's row)."""
        row = self._row_of.get(user_id)
        if row is None:
            return None
        unit = self._unit
        my_shops = unit.indices[unit.indptr[row]:unit.indptr[row + 1]]
        my_values = unit.data[unit.indptr[row]:unit.indptr[row + 1]]
        entries, which = _ranges(self._by_shop.indptr, my_shops)
        users = self._by_shop.indices[entries]
        candidates, slot = np.unique(users, return_inverse=True)
        sims = np.zeros(len(candidates))
        np.add.at(sims, slot, self._by_shop.data[entries] * my_values[which])
        keep = (sims > 0) & (candidates != row)   # never your own neighbour
        candidates, sims = candidates[keep], sims[keep]
        k = min(self._neighbours, unit.shape[0] - 1)
        if k <= 0:
            return None
        if len(sims) > k:
            top = np.sort(np.argpartition(-sims, k - 1)[:k])
            candidates, sims = candidates[top], sims[top]
        return candidates, sims

    def scores(self, user_id: str, rows: np.ndarray) -> np.ndarray | None:
        """Neighbour vote per shop at ``rows`` scaled so the best shop anywhere is 1, or None for
        a cold start."""
        found = self.neighbours(user_id)
        if found is None:
            return None
        users, sims = found
        entries, which = _ranges(self._unit.indptr, users)
        shops, slot = np.unique(self._unit.indices[entries], return_inverse=True)
        votes = np.zeros(len(shops))
        np.add.at(votes, slot, self._unit.data[entries] * sims[which])
        # Shops no neighbour touched have a vote of 0, and count in the best like the rest.
        best = max(votes.max(initial=-np.inf), 0.0 if len(shops) < len(self._shop_ids) else -np.inf)
        out = np.zeros(len(rows))
        if best <= 0:
            return out
        at = np.minimum(np.searchsorted(shops, rows), len(shops) - 1)   # best > 0: some shop has a vote
        hit = shops[at] == rows
        out[hit] = votes[at[hit]] / best
        return out

    def request_scores(self, user: UserProfile, filters: SearchFilters, context: RequestContext,
                       rows: np.ndarray, km: np.ndarray) -> np.ndarray | None:
        return self.scores(user.user_id, rows)  # None: a child with no history, nothing to borrow

    def empty_reason(self, user: UserProfile) -> str:
        if not self.knows(user.user_id):
            return "cold_start: no interaction history for this user"
        return f"similar users' shops within {self._max_km:g} km are all excluded by the filters"
