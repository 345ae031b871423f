"""Feature engineering for the Wide&Deep ranker (step 6), shared by training and serving.

Torch-free on purpose: the onnxruntime scorer imports this package, and serving must not pull in
torch. Training and serving turn looked-up features into model inputs through the same
``raw_wide_features`` so the two can never drift apart (no training/serving skew).

Modules (each imports only the ones above it in this list):

- ``layout``: the model contract: ONNX input/output names, feature-source columns,
  ``WIDE_FEATURES`` (the wide matrix's column order, crosses included).
- ``space``: ``FeatureSpace``, id vocabularies (user, shop, category -> embedding row). Row 0
  of every vocabulary is "unknown" (a new user, a shop added after training).
- ``sources``: ``FeatureSource``, where per-user and per-shop behavioural features come from
  (the Feast-backed source in ``naviyam.features.online`` implements the same two lookups).
- ``history``: ``FeatureHistory``, the same features computed as of each day (what the Feast
  offline sources hold, ``naviyam.features.export``; training joins them point-in-time through
  Feast only, so a sample never sees its own click or order); and ``TableFeatureSource``, its
  end-of-window snapshot kept in memory for serving.
- ``normaliser``: ``Normaliser``, z-scores of the numeric wide columns, fitted on training rows.
- ``columns``: profiles, contexts and looked-up frames as columns.
- ``wide``: ``raw_wide_features``, the un-normalised wide matrix (numeric, binary, crosses).
- ``assembly``: ``RankingFeatures`` (space + normaliser + source, i.e. everything serving
  needs) and ``make_inputs``, the exact model input dict.
- ``cache``: ``CachedFeatureSource``, a serving wrapper over an online source that keeps user and shop rows
  for at most ``FEATURE_TTL_S`` seconds (the ranker transformer's Feast reads).

Every public name is re-exported here, so ``from naviyam.ranking.features import X`` works as
it did when this was one module. Saved features (``RankingFeatures.save``) are JSON and
parquet only, nothing is pickled by class path.
"""
from __future__ import annotations

from naviyam.ranking.features.assembly import RankingFeatures, make_inputs
from naviyam.ranking.features.columns import context_columns, frame_columns, profile_columns
from naviyam.ranking.features.history import (
    FeatureHistory, TableFeatureSource, hhmm_minutes, menu_allergens,
)
from naviyam.ranking.features.layout import (
    AGE_GROUP_EDGES, AGE_GROUPS, ALLERGEN_SEP, BINARY_FEATURES, CONTEXT_COLUMNS, DEFAULT_ALLOWANCE,
    DISTANCE_EDGES_KM, ENGAGE_SHARE_COLUMNS, INPUT_NAMES, MIN_ALLOWANCE, NORMALISED_CLIP,
    NUMERIC_FEATURES, ORDER_SHARE_COLUMNS, OUTPUT_NAME, POSITIVE_EVENTS, PRICE_FIT_EDGES,
    PROFILE_COLUMNS, RECENCY_CAP_DAYS, SHOP_FEATURE_COLUMNS, TIME_SLOTS, UNSEEN_SHOP_POSITION,
    USER_COUNT_COLUMNS, USER_FEATURE_COLUMNS, WIDE_DIM, WIDE_FEATURES, YOUNG_MAX_AGE, Columns,
)
from naviyam.ranking.features.normaliser import Normaliser
from naviyam.ranking.features.sources import FeatureSource
from naviyam.ranking.features.space import FeatureSpace
from naviyam.ranking.features.wide import allergy_conflict, open_now, raw_wide_features

__all__ = [
    "AGE_GROUP_EDGES", "AGE_GROUPS", "ALLERGEN_SEP", "BINARY_FEATURES", "CONTEXT_COLUMNS",
    "DEFAULT_ALLOWANCE", "DISTANCE_EDGES_KM", "ENGAGE_SHARE_COLUMNS", "INPUT_NAMES", "MIN_ALLOWANCE",
    "NORMALISED_CLIP", "NUMERIC_FEATURES", "ORDER_SHARE_COLUMNS", "OUTPUT_NAME", "POSITIVE_EVENTS",
    "PRICE_FIT_EDGES", "PROFILE_COLUMNS", "RECENCY_CAP_DAYS", "SHOP_FEATURE_COLUMNS", "TIME_SLOTS",
    "UNSEEN_SHOP_POSITION", "USER_COUNT_COLUMNS", "USER_FEATURE_COLUMNS", "WIDE_DIM", "WIDE_FEATURES",
    "YOUNG_MAX_AGE", "Columns", "FeatureHistory", "FeatureSource", "FeatureSpace", "Normaliser",
    "RankingFeatures", "TableFeatureSource", "allergy_conflict", "context_columns", "frame_columns",
    "hhmm_minutes", "make_inputs", "menu_allergens", "open_now", "profile_columns",
    "raw_wide_features",
]
