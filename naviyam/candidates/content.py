"""Funnel 2 — content: how well each shop's attributes match what this child asked for and likes.

Condition matching, computed as a vectorised weighted average of per-shop components in [0, 1]:

- ``category``     shop category == the asked category (only when the child named one)
- ``preference``   shop category is one of the profile's ``preferred_categories``
- ``price``        fit of the shop's prices to the budget (asked ``max_price``, else the
                   per-meal allowance): 0 when even the cheapest menu is over budget, otherwise
                   ``min(1, budget / avg_price)``
- ``meal_card``    the shop accepts the meal card (only for children who have one)
- ``good``         착한가게 / 선한영향력가게 (only when ``filters.prefer_good_influence``)
- ``rating``       rating / 5

Components that do not apply to this request are left out of the average (their weight is not
counted), so scores stay comparable in [0, 1] whatever the child said.

Only shops within ``CandidateSettings.max_distance_km`` of the origin are proposed: a perfect
match across the city is no answer for a child on foot (walking distance from school
matters more than rating).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from naviyam.candidates.merge import ScoringFunnel
from naviyam.config import CandidateSettings
from naviyam.data.catalog import Catalog
from naviyam.schemas import RequestContext, SearchFilters, UserProfile


@dataclass(frozen=True)
class ContentWeights:
    # Preference is the strongest personal signal; an explicitly asked category is already a hard
    # filter when set, so here it mostly matters for shops that got in through other constraints.
    # Price comes next: a shop over the per-meal budget should not be the top pick.
    category: float = 0.25
    preference: float = 0.30
    price: float = 0.20
    meal_card: float = 0.10
    good: float = 0.15
    rating: float = 0.10


class ContentFunnel(ScoringFunnel):
    name = "content"

    def __init__(
        self, catalog: Catalog, settings: CandidateSettings, weights: ContentWeights = ContentWeights()
    ) -> None:
        super().__init__(catalog, settings)
        self._weights = weights

    def scores(self, user: UserProfile, filters: SearchFilters, rows: np.ndarray) -> np.ndarray:
        """Content score per shop at ``rows`` of ``catalog.shops``, in [0, 1]."""
        # Read from the catalog's own columns for just these shops: no per-funnel copy of the table.
        shops = self._catalog.shops
        column = lambda name: shops[name].to_numpy()[rows]  # noqa: E731
        w = self._weights
        rating = np.clip(column("rating").astype(np.float64) / 5.0, 0.0, 1.0)
        parts: list[tuple[float, np.ndarray]] = [(w.rating, rating)]
        category = column("category")
        if filters.category:
            parts.append((w.category, (category == filters.category).astype(np.float64)))
        if user.preferred_categories:
            parts.append((w.preference, np.isin(category, user.preferred_categories).astype(np.float64)))
        budget = filters.max_price if filters.max_price is not None else user.per_meal_allowance
        if budget and budget > 0:
            avg_price = np.maximum(column("avg_price").astype(np.float64), 1.0)
            fit = np.minimum(1.0, budget / avg_price)
            parts.append((w.price, np.where(column("min_price").astype(np.float64) <= budget, fit, 0.0)))
        if user.has_meal_card:
            parts.append((w.meal_card, column("accepts_meal_card").astype(np.float64)))
        if filters.prefer_good_influence:
            parts.append((w.good, column("is_good_influence_shop").astype(np.float64)))
        total = np.zeros(len(rows))
        for weight, component in parts:
            total += weight * component
        return total / sum(weight for weight, _ in parts)

    def request_scores(self, user: UserProfile, filters: SearchFilters, context: RequestContext,
                       rows: np.ndarray, km: np.ndarray) -> np.ndarray:
        return self.scores(user, filters, rows)

    def empty_reason(self, user: UserProfile) -> str:
        return f"no shop within {self._max_km:g} km passes the filters"
