"""The un-normalised wide matrix: numeric, binary and crossed one-hot features.

Training and serving both go through ``raw_wide_features``, so the two can never drift apart
(no training/serving skew); the column order is ``layout.WIDE_FEATURES``.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from naviyam.data.catalog import haversine_km
from naviyam.ranking.features.columns import _flag, _is_list, _membership, _n, _num
from naviyam.ranking.features.layout import (
    _CATEGORY_POS, _SLOT_POS, AGE_GROUP_EDGES, AGE_GROUPS, ALLERGEN_SEP, DEFAULT_ALLOWANCE,
    DISTANCE_EDGES_KM, ENGAGE_SHARE_COLUMNS, MIN_ALLOWANCE, ORDER_SHARE_COLUMNS, PRICE_FIT_EDGES,
    RECENCY_CAP_DAYS, TIME_SLOTS, UNSEEN_SHOP_POSITION, USER_COUNT_COLUMNS, WIDE_DIM, YOUNG_MAX_AGE,
    Columns,
)
from naviyam.schemas import CATEGORIES


def allergy_conflict(allergies: np.ndarray, menus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: share of the shop's menus the child cannot eat, and whether none is safe.

    Only rows whose child has allergies (~15 %) need the Python-level set checks.
    """
    n = len(menus)
    unsafe_share = np.zeros(n)
    nothing_safe = np.zeros(n, dtype=bool)
    one_user = len(allergies) == 1
    for i in range(n):
        allergic = allergies[0 if one_user else i]
        shop_menus = menus[i]
        if not _is_list(allergic) or len(allergic) == 0:
            if one_user:
                break  # the single child has no allergies: nothing to check for any shop
            continue
        if not _is_list(shop_menus) or len(shop_menus) == 0:
            continue
        allergic = set(allergic)
        unsafe = sum(1 for m in shop_menus if m and not allergic.isdisjoint(m.split(ALLERGEN_SEP)))
        unsafe_share[i] = unsafe / len(shop_menus)
        nothing_safe[i] = unsafe == len(shop_menus)
    return unsafe_share, nothing_safe


def open_now(open_minute: np.ndarray, close_minute: np.ndarray, minute: np.ndarray) -> np.ndarray:
    """Open at ``minute`` after midnight; hours may pass midnight (rule of ``filtering.is_open``).
    A shop with unknown hours counts as open rather than being silently penalised."""
    o, c, t = open_minute, close_minute, minute
    inside = np.where(o <= c, (o <= t) & (t < c), (t >= o) | (t < c))
    return np.where(np.isnan(o) | np.isnan(c), True, inside)


def _one_hot_cross(a: np.ndarray, n_a: int, b: np.ndarray, n_b: int) -> np.ndarray:
    """One-hot of the pair (a, b) in an n_a x n_b grid; a row with a or b < 0 stays all-zero."""
    out = np.zeros((a.shape[0], n_a * n_b), dtype=np.float32)
    ok = (a >= 0) & (b >= 0)
    out[np.flatnonzero(ok), a[ok] * n_b + b[ok]] = 1.0
    return out


def raw_wide_features(profiles: Columns, users: Columns, shops: Columns, context: Columns,
                      pair_flags: Mapping[str, np.ndarray]) -> np.ndarray:
    """The un-normalised wide matrix [N, WIDE_DIM]; columns follow ``WIDE_FEATURES``.

    ``shops`` has one row per candidate (N); ``profiles``, ``users`` and ``context`` have either
    N rows or a single row that is broadcast (one request = one user in one context).
    """
    n = len(shops["category"])
    shop_cats = shops["category"]
    cat_idx = np.fromiter((_CATEGORY_POS.get(c, -1) for c in shop_cats), dtype=np.int64, count=n)
    has_cat = cat_idx >= 0
    safe_cat = np.where(has_cat, cat_idx, 0)
    rows = np.arange(n)

    age = _num(profiles, "age", n, fill=12.0)
    allowance = np.maximum(_num(profiles, "per_meal_allowance", n, fill=DEFAULT_ALLOWANCE), MIN_ALLOWANCE)
    has_card = _flag(profiles, "has_meal_card", n)

    counts = {c: _num(users, c, n) for c in USER_COUNT_COLUMNS}
    engaged = counts["n_clicks"] + counts["n_orders"] + counts["n_favorites"]
    no_history = ((counts["n_views"] + engaged) == 0) | _flag(profiles, "is_new", n)

    now = _n(np.asarray(context["now"], dtype="datetime64[ns]"), n)
    today = now.astype("datetime64[D]")
    last = _n(np.asarray(users["last_active_at"], dtype="datetime64[ns]"), n).astype("datetime64[D]")
    recency = (today - last).astype("timedelta64[D]").astype(np.float64)
    recency[np.isnat(last)] = RECENCY_CAP_DAYS
    recency = np.clip(recency, 0.0, RECENCY_CAP_DAYS)
    minute = ((now - today) // np.timedelta64(1, "m")).astype(np.float64)

    shares = {}
    for name, cols in (("order", ORDER_SHARE_COLUMNS), ("engage", ENGAGE_SHARE_COLUMNS)):
        mat = np.column_stack([_num(users, c, len(users[c])) for c in cols])
        mat = mat[np.zeros(n, dtype=np.int64) if len(mat) == 1 else rows, safe_cat]
        shares[name] = np.where(has_cat, mat, 0.0)
    pref_match = _membership(np.asarray(profiles["preferred_categories"], dtype=object), shop_cats)

    avg_price = np.maximum(_num(shops, "avg_price", n), 1.0)
    min_price = np.maximum(_num(shops, "min_price", n), 1.0)
    s_views, s_clicks, s_orders = (_num(shops, c, n) for c in ("n_views", "n_clicks", "n_orders"))
    shop_card = _flag(shops, "accepts_meal_card", n)

    distance = haversine_km(_num(context, "origin_lat", n, np.nan), _num(context, "origin_lon", n, np.nan),
                            _num(shops, "lat", n, np.nan), _num(shops, "lon", n, np.nan))
    distance = np.clip(np.nan_to_num(distance, nan=10.0), 0.0, 10.0)
    habit = _num(users, "engaged_distance_km", n, fill=np.nan)
    price_fit = np.clip(min_price / allowance, 0.0, 3.0)
    unsafe_share, nothing_safe = allergy_conflict(np.asarray(profiles["allergies"], dtype=object),
                                                  np.asarray(shops["menu_allergens"], dtype=object))

    numeric = [
        age, np.log(allowance), np.log1p(counts["n_views"]), np.log1p(counts["n_clicks"]),
        np.log1p(counts["n_orders"]),
        (engaged + 1.0) / (counts["n_views"] + 10.0),  # smoothed so a 1-of-1 user is not "100 %"
        recency, shares["order"], shares["engage"],
        np.log(avg_price), np.log(min_price), _num(shops, "rating", n, fill=3.5),
        np.log1p(_num(shops, "view_rate", n)), np.log1p(_num(shops, "order_rate", n)),
        (s_clicks + 1.0) / (s_views + 10.0), (s_orders + 0.5) / (s_views + 10.0),
        np.clip(_num(shops, "view_share", n), 0.0, 2.0),
        _num(shops, "mean_position", n, fill=UNSEEN_SHOP_POSITION),
        distance, distance * (age <= YOUNG_MAX_AGE),
        np.nan_to_num(np.clip(distance - habit, -5.0, 5.0)),  # farther than this child usually goes
        price_fit, np.clip(avg_price / allowance, 0.0, 3.0),
        np.clip(np.maximum(min_price - allowance, 0.0) / 1000.0, 0.0, 10.0), unsafe_share,
    ]
    binary = [
        no_history, has_card, shop_card, _flag(shops, "is_good_influence_shop", n),
        has_card & ~shop_card, pref_match,
        np.asarray(pair_flags.get("engaged_shop_before", np.zeros(n)), dtype=bool),
        np.asarray(pair_flags.get("ordered_shop_before", np.zeros(n)), dtype=bool),
        min_price > allowance, nothing_safe,
        open_now(_num(shops, "open_minute", n, np.nan), _num(shops, "close_minute", n, np.nan), minute),
    ]
    slots = np.asarray(context["time_slot"], dtype=object)
    slot_idx = _n(np.fromiter((_SLOT_POS.get(str(t), -1) for t in slots), dtype=np.int64, count=len(slots)), n)
    price_bucket = np.digitize(price_fit, PRICE_FIT_EDGES, right=True)
    crosses = [
        _one_hot_cross(has_card.astype(np.int64), 2, price_bucket, len(PRICE_FIT_EDGES) + 1),
        _one_hot_cross(np.digitize(distance, DISTANCE_EDGES_KM, right=True), len(DISTANCE_EDGES_KM) + 1,
                       np.zeros(n, dtype=np.int64), 1),
        _one_hot_cross(np.digitize(age, AGE_GROUP_EDGES), len(AGE_GROUPS), cat_idx, len(CATEGORIES)),
        _one_hot_cross(slot_idx, len(TIME_SLOTS), cat_idx, len(CATEGORIES)),
    ]
    wide = np.concatenate(
        [np.column_stack(numeric).astype(np.float32), np.column_stack(binary).astype(np.float32), *crosses],
        axis=1)
    if wide.shape[1] != WIDE_DIM:  # the layout is part of the model contract
        raise AssertionError(f"wide layout drifted: {wide.shape[1]} != {WIDE_DIM}")
    return wide
