"""Funnel 1 — popularity: shops many children look at and order from, near where the child is.

The per-shop score is precomputed once (it does not depend on the request):
``w_view * norm(views) + w_order * norm(orders)`` with weights from
``CandidateSettings.popularity_weights`` (0.4 / 0.6: an order is stronger evidence than a view).
At request time only the distance cut (``CandidateSettings.max_distance_km``) and the shared
hard-constraint mask are applied.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from naviyam.candidates.merge import ScoringFunnel
from naviyam.config import CandidateSettings
from naviyam.data.catalog import Catalog
from naviyam.schemas import RequestContext, SearchFilters, UserProfile

logger = logging.getLogger(__name__)


def _log_norm(counts: np.ndarray) -> np.ndarray:
    """Counts -> [0, 1] via log1p / max.

    Counts are heavy-tailed (a few shops near big schools get most traffic); a linear max-norm
    would squash every other shop towards 0. A shop with no traffic stays exactly 0, so it is
    never proposed *as popular* (the other funnels can still propose it).
    """
    logged = np.log1p(np.clip(counts.astype(np.float64), 0, None))
    top = logged.max(initial=0.0)
    return logged / top if top > 0 else np.zeros_like(logged)


def popularity_scores(
    catalog: Catalog, events: pd.DataFrame | None, weights: dict[str, float]
) -> np.ndarray:
    """Score per ``catalog.shops`` row, in [0, 1].

    Counts come from the event log when there is one (fresh behaviour, and the same log the other
    funnels learn from); without events we fall back to the ``view_count``/``order_count`` columns.
    """
    shops = catalog.shops
    if events is not None and len(events):
        per_type = events.groupby(["shop_id", "event_type"], observed=True).size().unstack(fill_value=0)
        per_type = per_type.reindex(shops["shop_id"].to_numpy(), fill_value=0)
        views = per_type["view"].to_numpy() if "view" in per_type else np.zeros(len(shops))
        orders = per_type["order"].to_numpy() if "order" in per_type else np.zeros(len(shops))
    else:
        logger.info("popularity: no events, using shops.view_count/order_count")
        views = shops["view_count"].to_numpy()
        orders = shops["order_count"].to_numpy()
    w_view, w_order = weights.get("view", 0.0), weights.get("order", 0.0)
    total = w_view + w_order
    if total <= 0:
        raise ValueError(f"popularity_weights must have a positive view/order weight, got {weights}")
    return (w_view * _log_norm(views) + w_order * _log_norm(orders)) / total


class PopularityFunnel(ScoringFunnel):
    name = "popularity"

    def __init__(self, catalog: Catalog, scores: np.ndarray, settings: CandidateSettings) -> None:
        if len(scores) != len(catalog.shops):
            raise ValueError("popularity scores must align with catalog.shops")
        super().__init__(catalog, settings)
        self._scores = np.asarray(scores, dtype=np.float64)

    @classmethod
    def build(cls, catalog: Catalog, events: pd.DataFrame | None, settings: CandidateSettings) -> "PopularityFunnel":
        return cls(catalog, popularity_scores(catalog, events, settings.popularity_weights), settings)

    # -- persistence -------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        return {"shop_ids": self._shop_ids.astype(str), "scores": self._scores}

    @classmethod
    def from_state(
        cls, catalog: Catalog, settings: CandidateSettings, state: dict[str, np.ndarray]
    ) -> "PopularityFunnel":
        # Re-align by shop_id: the catalog we load with may list shops in another order or hold
        # shops added after the build (those get 0 until the next build).
        saved = pd.Series(state["scores"], index=state["shop_ids"])
        scores = saved.reindex(catalog.shops["shop_id"].to_numpy(), fill_value=0.0).to_numpy()
        return cls(catalog, scores, settings)

    # -- request -----------------------------------------------------------------------------
    def request_scores(self, user: UserProfile, filters: SearchFilters, context: RequestContext,
                       rows: np.ndarray, km: np.ndarray) -> np.ndarray:
        return self._scores[rows]

    def empty_reason(self, user: UserProfile) -> str:
        return f"no shop with traffic within {self._max_km:g} km passes the filters"
