"""Funnel 4 — contextual: what fits *now* and *here*.

score = open_factor * (PROXIMITY_SHARE * proximity + (1 - PROXIMITY_SHARE) * slot_prior)

- ``open_factor``  1 when the shop is open at ``context.now`` (``filtering.is_open``), else
                   ``CLOSED_FACTOR``: a closed shop is a poor answer right now but not impossible
                   (the child may go later), and hard "open at" requests go through the filters.
- ``proximity``    ``exp(-distance / DECAY_KM)`` from the child's origin, and nothing beyond
                   ``CandidateSettings.max_distance_km`` (children walk).
- ``slot_prior``   how typical the shop's category is for the time slot: a hand-written prior
                   (``SLOT_PRIORS``) blended with the category share of orders/clicks in that slot
                   in the event log, when the log has enough of them.
"""
from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd

from naviyam.candidates.merge import ScoringFunnel
from naviyam.config import CandidateSettings
from naviyam.data.catalog import Catalog
from naviyam.filtering import is_open
from naviyam.schemas import CATEGORIES, RequestContext, SearchFilters, TimeSlot, UserProfile

logger = logging.getLogger(__name__)

PROXIMITY_SHARE = 0.5
DECAY_KM = 1.0          # ~15 minutes' walk for a child: score halves at ~0.7 km
CLOSED_FACTOR = 0.2
DEFAULT_PRIOR = 0.3     # a category not listed for a slot is unusual, not wrong
EMPIRICAL_SHARE = 0.5   # weight of the event-log prior when a slot has enough evidence
MIN_SLOT_EVENTS = 50    # below this many orders/clicks in a slot, trust only the hand prior

# Hand-written slot x category prior in [0, 1] (step 5B: what children eat when).
SLOT_PRIORS: Mapping[TimeSlot, Mapping[str, float]] = MappingProxyType({
    TimeSlot.MORNING: MappingProxyType(
        {"베이커리": 1.0, "편의점": 0.9, "도시락": 0.85, "카페·디저트": 0.6, "한식": 0.5, "분식": 0.4}),
    TimeSlot.LUNCH: MappingProxyType(
        {"한식": 1.0, "도시락": 0.9, "중식": 0.9, "분식": 0.75, "일식": 0.65, "양식": 0.6, "햄버거": 0.55}),
    TimeSlot.AFTER_SCHOOL: MappingProxyType(
        {"분식": 1.0, "편의점": 0.9, "카페·디저트": 0.9, "햄버거": 0.85, "베이커리": 0.7, "피자": 0.5,
         "치킨": 0.45}),
    TimeSlot.DINNER: MappingProxyType(
        {"치킨": 1.0, "피자": 0.95, "중식": 0.9, "한식": 0.8, "양식": 0.7, "일식": 0.7, "햄버거": 0.6,
         "분식": 0.5}),
    TimeSlot.NIGHT: MappingProxyType(
        {"치킨": 1.0, "피자": 0.9, "편의점": 0.8, "중식": 0.7, "분식": 0.6, "햄버거": 0.5}),
})

SLOTS: tuple[TimeSlot, ...] = tuple(TimeSlot)


def hand_prior() -> np.ndarray:
    """(n_slots, n_categories) matrix of ``SLOT_PRIORS`` in ``SLOTS`` x ``CATEGORIES`` order."""
    return np.array(
        [[SLOT_PRIORS[slot].get(cat, DEFAULT_PRIOR) for cat in CATEGORIES] for slot in SLOTS], dtype=np.float64
    )


def slot_prior(catalog: Catalog, events: pd.DataFrame | None) -> np.ndarray:
    """Hand prior blended, per slot with enough evidence, with the log's category shares."""
    prior = hand_prior()
    if events is None or not len(events) or "time_slot" not in events:
        return prior
    acted = events[events["event_type"].isin(["order", "click"])]
    category_of = pd.Series(catalog.shops["category"].to_numpy(), index=catalog.shops["shop_id"].to_numpy())
    category = category_of.reindex(acted["shop_id"].to_numpy()).to_numpy()
    # Accept TimeSlot members as well as their string values.
    slots = np.array([getattr(v, "value", v) for v in acted["time_slot"]], dtype=object)
    counts = pd.crosstab(slots, category)
    for s, slot in enumerate(SLOTS):
        if slot.value not in counts.index:
            continue
        row = counts.loc[slot.value].reindex(list(CATEGORIES), fill_value=0).to_numpy(dtype=np.float64)
        if row.sum() < MIN_SLOT_EVENTS:
            continue
        # Scale so the slot's most-chosen category is 1, like the hand prior's favourite.
        prior[s] = (1 - EMPIRICAL_SHARE) * prior[s] + EMPIRICAL_SHARE * row / row.max()
    return prior


class ContextualFunnel(ScoringFunnel):
    name = "contextual"

    def __init__(self, catalog: Catalog, prior: np.ndarray, settings: CandidateSettings) -> None:
        if prior.shape != (len(SLOTS), len(CATEGORIES)):
            raise ValueError(f"slot prior must be {len(SLOTS)}x{len(CATEGORIES)}, got {prior.shape}")
        super().__init__(catalog, settings)
        shops = catalog.shops
        self._prior = prior
        # Unknown categories get column -1 -> DEFAULT_PRIOR (see _prior_of).
        self._cat_col = pd.Index(CATEGORIES).get_indexer(shops["category"])
        # Shops share a handful of opening-hour pairs, so "open now?" is asked once per distinct
        # pair with the shared ``is_open`` (one rule for hours that pass midnight) and broadcast.
        hours = pd.MultiIndex.from_arrays([shops["open_time"], shops["close_time"]])
        self._hours_code, self._hours = pd.factorize(hours)

    @classmethod
    def build(cls, catalog: Catalog, events: pd.DataFrame | None, settings: CandidateSettings) -> "ContextualFunnel":
        return cls(catalog, slot_prior(catalog, events), settings)

    # -- persistence -------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        return {"prior": self._prior}

    @classmethod
    def from_state(
        cls, catalog: Catalog, settings: CandidateSettings, state: dict[str, np.ndarray]
    ) -> "ContextualFunnel":
        return cls(catalog, np.asarray(state["prior"], dtype=np.float64), settings)

    # -- request -----------------------------------------------------------------------------
    def open_now(self, context: RequestContext, rows: np.ndarray) -> np.ndarray:
        at = context.now.strftime("%H:%M")
        per_pair = np.array([is_open(o, c, at) for o, c in self._hours], dtype=bool)
        return per_pair[self._hours_code[rows]]

    def _prior_of(self, slot: TimeSlot, rows: np.ndarray) -> np.ndarray:
        row = self._prior[SLOTS.index(slot)]
        cat_col = self._cat_col[rows]
        return np.where(cat_col >= 0, row[cat_col], DEFAULT_PRIOR)

    def scores(self, context: RequestContext, rows: np.ndarray, km: np.ndarray) -> np.ndarray:
        """Context score per shop at ``rows`` (``km`` from the origin), in [0, 1]; 0 beyond walking range."""
        fit = PROXIMITY_SHARE * np.exp(-km / DECAY_KM) + (1 - PROXIMITY_SHARE) * self._prior_of(context.time_slot, rows)
        factor = np.where(self.open_now(context, rows), 1.0, CLOSED_FACTOR)
        return np.where(km <= self._max_km, factor * fit, 0.0)

    def request_scores(self, user: UserProfile, filters: SearchFilters, context: RequestContext,
                       rows: np.ndarray, km: np.ndarray) -> np.ndarray:
        return self.scores(context, rows, km)  # the distance is part of the score

    def empty_reason(self, user: UserProfile) -> str:
        return f"no shop within {self._max_km:g} km passes the filters"
