"""The wide-feature layout and column names: the model contract shared by training and serving.

Bottom of the ``naviyam.ranking.features`` package (it imports nothing from its siblings):
ONNX input/output names, the raw columns a ``FeatureSource`` returns, the profile/context
columns, and ``WIDE_FEATURES``, the order of the wide matrix's columns, including the names
of the crossed one-hot columns. Changing anything here changes the model's inputs.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from naviyam.schemas import CATEGORIES, TimeSlot

TIME_SLOTS: tuple[str, ...] = tuple(t.value for t in TimeSlot)
POSITIVE_EVENTS: tuple[str, ...] = ("click", "order", "favorite")
AGE_GROUPS: tuple[str, ...] = ("elementary", "middle", "high")  # 초 / 중 / 고
AGE_GROUP_EDGES: tuple[int, ...] = (14, 17)  # 초 <= 13 < 중 <= 16 < 고 (Korean school ages)
YOUNG_MAX_AGE = 11  # younger children walk less far
PRICE_FIT_EDGES: tuple[float, ...] = (0.5, 0.8, 1.0)  # min_price / per-meal allowance
DISTANCE_EDGES_KM: tuple[float, ...] = (0.3, 0.7, 1.5)  # children walk; 1.5 km is already far
RECENCY_CAP_DAYS = 60.0
MIN_ALLOWANCE = 1000  # guards price_fit against a zero allowance
DEFAULT_ALLOWANCE = 9500.0
NORMALISED_CLIP = 5.0
UNSEEN_SHOP_POSITION = 14.0  # a shop never shown is treated like one shown at the bottom
ALLERGEN_SEP = ","  # menu_allergens holds one "a,b" string per menu (a Feast Array(String))

INPUT_NAMES: tuple[str, ...] = ("wide", "user_idx", "shop_idx", "category_idx")
OUTPUT_NAME = "score"

# Raw columns the FeatureSource lookups return (a Feast feature view would mirror these).
USER_COUNT_COLUMNS: tuple[str, ...] = ("n_views", "n_clicks", "n_orders", "n_favorites")
ORDER_SHARE_COLUMNS: tuple[str, ...] = tuple(f"order_share_{i:02d}" for i in range(len(CATEGORIES)))
ENGAGE_SHARE_COLUMNS: tuple[str, ...] = tuple(f"engage_share_{i:02d}" for i in range(len(CATEGORIES)))
USER_FEATURE_COLUMNS: tuple[str, ...] = (
    "age", *USER_COUNT_COLUMNS, "last_active_at", "engaged_distance_km", *ORDER_SHARE_COLUMNS,
    *ENGAGE_SHARE_COLUMNS, "engaged_shops", "ordered_shops",
)
SHOP_FEATURE_COLUMNS: tuple[str, ...] = (
    "category", "avg_price", "min_price", "rating", "accepts_meal_card", "is_good_influence_shop",
    "lat", "lon", "open_minute", "close_minute", "n_views", "n_clicks", "n_orders", "view_rate",
    "order_rate", "view_share", "mean_position", "menu_allergens",
)
PROFILE_COLUMNS: tuple[str, ...] = (
    "user_id", "age", "preferred_categories", "allergies", "has_meal_card", "per_meal_allowance", "is_new",
)
CONTEXT_COLUMNS: tuple[str, ...] = ("now", "time_slot", "origin_lat", "origin_lon")

NUMERIC_FEATURES: tuple[str, ...] = (
    "age", "log_allowance", "user_log_views", "user_log_clicks", "user_log_orders",
    "user_engage_rate", "user_recency_days", "user_cat_order_share", "user_cat_engage_share",
    "shop_log_avg_price", "shop_log_min_price", "shop_rating", "shop_log_view_rate",
    "shop_log_order_rate", "shop_click_rate", "shop_order_rate", "shop_view_share",
    "shop_mean_position", "distance_km", "distance_young", "distance_over_habit", "price_fit",
    "avg_price_fit", "over_budget_k", "allergy_unsafe_share",
)
BINARY_FEATURES: tuple[str, ...] = (
    "no_history", "has_meal_card", "shop_meal_card", "good_influence", "meal_card_mismatch",
    "preferred_category", "engaged_shop_before", "ordered_shop_before", "over_allowance",
    "allergy_nothing_safe", "open_now",
)


def _cross_names() -> tuple[str, ...]:
    names = [f"price_fit_b{b}_x_card{c}" for c in (0, 1) for b in range(len(PRICE_FIT_EDGES) + 1)]
    names += [f"distance_b{b}" for b in range(len(DISTANCE_EDGES_KM) + 1)]
    names += [f"age_{a}_x_{c}" for a in AGE_GROUPS for c in CATEGORIES]
    names += [f"slot_{t}_x_{c}" for t in TIME_SLOTS for c in CATEGORIES]
    return tuple(names)


WIDE_FEATURES: tuple[str, ...] = NUMERIC_FEATURES + BINARY_FEATURES + _cross_names()
WIDE_DIM = len(WIDE_FEATURES)

_CATEGORY_POS = {c: i for i, c in enumerate(CATEGORIES)}
_SLOT_POS = {t: i for i, t in enumerate(TIME_SLOTS)}

Columns = Mapping[str, np.ndarray]  # column name -> array of length N (or 1, broadcast)
