"""Which scored shops a child is shown: the hard and soft rules of a child's walk and the clock.

Applied where the final list is made (``NaviyamChatbot.order``), which the in-process chat and
the served ranker both call, so every path picks alike:
- open at the time asked: a stated time is a hard filter upstream; otherwise open shops come first
  and a closed one is shown (with its opening time) only when no open shop qualifies;
- a short walk: without a stated limit, shops within ``prefer_walk_min`` minutes; the next ring
  (to ``widen_walk_min``, ``WIDER_WALK_MIN`` unless the child asked for shops close by) is added
  only when fewer than ``MIN_NEAR`` qualify, and that is said in the answer;
- "가까운 순" / "제일 싼 데": the order the child asked for, after the hard rules.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from naviyam.data.catalog import WALK_METERS_PER_MINUTE, Catalog, haversine_km
from naviyam.filtering import _minutes, open_mask
from naviyam.schemas import RequestContext, SearchFilters

MIN_NEAR = 3                 # fewer qualifying shops within the walk than this: widen one ring
WIDER_WALK_MIN = 25          # the ring added then; farther still only when nothing is in it
NEAR_FILL_MAX = 30           # qualifying nearby shops added to a pool that lacks them
SCORE_RESOLUTION = 0.01
MAX_SEARCH_KM = 20_100.0    # half the Earth's circumference: every shop


@dataclass(frozen=True)
class Picked:
    shop_ids: list[str]
    closed: frozenset[str]   # shown although closed at the time asked (nothing open qualified)
    widened: bool            # shops beyond the child's walk are in the list


def walk_of(catalog: Catalog, shop_ids: list[str], context: RequestContext) -> np.ndarray:
    rows = catalog.shops.loc[shop_ids]
    km = haversine_km(context.origin_lat, context.origin_lon, rows["lat"].to_numpy(), rows["lon"].to_numpy())
    return np.ceil(km * 1000 / WALK_METERS_PER_MINUTE)


def open_flags(catalog: Catalog, shop_ids: list[str], at: str | None) -> np.ndarray:
    if not at or not shop_ids:
        return np.ones(len(shop_ids), dtype=bool)
    rows = [catalog.row_of(sid) for sid in shop_ids]
    return open_mask(catalog.open_minutes[rows], catalog.close_minutes[rows], _minutes(at))


def is_open_at(catalog: Catalog, shop_id: str, at: str | None) -> bool:
    return bool(open_flags(catalog, [shop_id], at)[0])


def widest_walk(filters: SearchFilters) -> int:
    """Minutes of the widest ring a default pick reaches before it shows whatever qualifies."""
    return filters.widen_walk_min if filters.widen_walk_min is not None else WIDER_WALK_MIN


def pick(catalog: Catalog, scores: dict[str, float], filters: SearchFilters, context: RequestContext,
         top_k: int) -> Picked:
    if not scores:
        return Picked([], frozenset(), False)
    ids = list(scores)
    walk = dict(zip(ids, walk_of(catalog, ids, context)))
    # Scores within SCORE_RESOLUTION are a tie, and the nearer shop goes first: a personal score is
    # no finer than that (served Feast features and in-process ones differ in the third decimal),
    # and the served and in-process paths must give the same list.
    ids.sort(key=lambda s: (-round(scores[s] / SCORE_RESOLUTION), walk[s], s))
    is_open = dict(zip(ids, open_flags(catalog, ids, filters.prefer_open_at)))
    open_ids = [s for s in ids if is_open[s]]
    closed: frozenset[str] = frozenset()
    if not open_ids:
        open_ids, closed = ids, frozenset(ids)   # only closed ones qualify: shown with their hours
    ids = open_ids
    widened = False
    if filters.prefer_walk_min is not None:
        near = [s for s in ids if walk[s] <= filters.prefer_walk_min]
        if len(near) < MIN_NEAR:
            ring = [s for s in ids if filters.prefer_walk_min < walk[s] <= widest_walk(filters)]
            widened = bool(ring)
            near = near + ring
            if not near:
                near, widened = ids, True
        ids = near
    if filters.sort == "nearest":
        ids = sorted(ids, key=lambda s: (walk[s], -scores[s], s))
    elif filters.sort == "cheapest":
        price = catalog.shops.loc[ids, "min_price"].to_dict()
        ids = sorted(ids, key=lambda s: (price[s], -scores[s], s))
    chosen = ids[:top_k]
    return Picked(chosen, frozenset(s for s in chosen if s in closed), widened)


def near_qualifying(catalog: Catalog, mask: np.ndarray, context: RequestContext, filters: SearchFilters) -> list[str]:
    """Shops passing every hard filter (``mask``) within the widest ring a child is shown by default,
    nearest first, to add to the pool (a stated walking limit is already in the mask).

    Only the shops around the child are measured (the catalog's spatial index): a ball that
    surely holds every answer, then the walk in whole minutes and the order exactly as over all
    qualifying shops (ties by catalog row)."""
    if filters.prefer_walk_min is not None:
        widest = widest_walk(filters)
        rows, minutes = _qualifying_within(catalog, mask, context, _km_of_minutes(widest))
        rows = rows[minutes <= widest]
        minutes = minutes[minutes <= widest]
    else:
        rows, minutes = _nearest_qualifying(catalog, mask, context)
    keep = rows[np.argsort(minutes, kind="stable")][:NEAR_FILL_MAX]
    return list(catalog.shops["shop_id"].to_numpy()[keep])


def _km_of_minutes(minutes: float) -> float:
    # A little wider than the exact bound: minutes are rounded up from km, and the exact test
    # on whole minutes is applied afterwards.
    return minutes * WALK_METERS_PER_MINUTE / 1000 * (1 + 1e-6) + 1e-9


def _qualifying_within(catalog: Catalog, mask: np.ndarray, context: RequestContext,
                       km: float) -> tuple[np.ndarray, np.ndarray]:
    rows, dist = catalog.rows_within(context.origin_lat, context.origin_lon, km)
    ok = mask[rows]
    return rows[ok], np.ceil(dist[ok] * 1000 / WALK_METERS_PER_MINUTE)


def _nearest_qualifying(catalog: Catalog, mask: np.ndarray, context: RequestContext) -> tuple[np.ndarray, np.ndarray]:
    """Enough qualifying shops, ascending rows, to hold the ``NEAR_FILL_MAX`` nearest (with ties)."""
    n_ok = int(np.count_nonzero(mask))
    km = _km_of_minutes(WIDER_WALK_MIN)
    while n_ok > NEAR_FILL_MAX and km < MAX_SEARCH_KM:
        rows, minutes = _qualifying_within(catalog, mask, context, km)
        if len(rows) >= NEAR_FILL_MAX:
            # Every shop as near as the NEAR_FILL_MAX-th (in whole minutes) lies in this ball.
            cutoff = float(np.partition(minutes, NEAR_FILL_MAX - 1)[NEAR_FILL_MAX - 1])
            rows, minutes = _qualifying_within(catalog, mask, context, max(km, _km_of_minutes(cutoff)))
            return rows, minutes
        km *= 4
    # Few qualifying shops (or far away): measure them all.
    rows = np.flatnonzero(mask)
    shops = catalog.shops
    dist = haversine_km(context.origin_lat, context.origin_lon, shops["lat"].to_numpy()[rows], shops["lon"].to_numpy()[rows])
    return rows, np.ceil(dist * 1000 / WALK_METERS_PER_MINUTE)
