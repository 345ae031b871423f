"""Naviyam feature definitions: entities, sources, feature views and services (declarative only).

Every value is computed elsewhere:

- ``naviyam.features.export`` writes the parquet sources below from the ranker's own
  ``FeatureHistory``; a row stamped ``event_timestamp`` = day D 00:00 only uses events before D.
- ``naviyam.features.transforms`` holds the request-time transformation of ``request_context``.

Column names come from ``naviyam.ranking.features`` so the ranker and this repo cannot drift.
Paths are relative to the Naviyam home (see ``feature_store.yaml``).
"""
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, RequestSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Array, Bool, Float32, Float64, Int64, String, UnixTimestamp

from naviyam.features import transforms
from naviyam.ranking.features import ENGAGE_SHARE_COLUMNS, ORDER_SHARE_COLUMNS
from naviyam.schemas import TimeSlot

# ----------------------------------------------------------------------------- entities

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING,
              description="A child using the chatbot")
shop = Entity(name="shop", join_keys=["shop_id"], value_type=ValueType.STRING,
              description="A restaurant near a school")

# ----------------------------------------------------------------------------- offline sources

user_profile_source = FileSource(
    name="user_profile_source", path="data/features/user_profile.parquet",
    timestamp_field="event_timestamp", created_timestamp_column="created",
    description="One row per child, stamped at sign-up (users.parquet)")
user_behaviour_source = FileSource(
    name="user_behaviour_source", path="data/features/user_behaviour.parquet",
    timestamp_field="event_timestamp", created_timestamp_column="created",
    description="As-of-day behaviour; a new row on each day after the child was active")
user_shop_history_source = FileSource(
    name="user_shop_history_source", path="data/features/user_shop_history.parquet",
    timestamp_field="event_timestamp", created_timestamp_column="created",
    description="One row per (child, shop) after its first engagement and after its first order")
shop_profile_source = FileSource(
    name="shop_profile_source", path="data/features/shop_profile.parquet",
    timestamp_field="event_timestamp", created_timestamp_column="created",
    description="One row per shop: catalog attributes (shops.parquet, menus.parquet)")
shop_popularity_source = FileSource(
    name="shop_popularity_source", path="data/features/shop_popularity.parquet",
    timestamp_field="event_timestamp", created_timestamp_column="created",
    description="As-of-day shop popularity, one row per shop per day")

# ----------------------------------------------------------------------------- feature views
# ttl 0: a row never expires, it holds until the entity's next row (rows are as-of snapshots).
# grain "day": every row is stamped at 00:00, so any instant of a day reads that day's row
# (naviyam.features.historical joins such views on (key, day) instead of (key, instant)).
DAILY = {"grain": "day"}

user_profile = FeatureView(
    name="user_profile", entities=[user], ttl=timedelta(0), source=user_profile_source,
    schema=[
        Field(name="age", dtype=Int64),
        Field(name="school_id", dtype=String),
        Field(name="has_meal_card", dtype=Bool),
        Field(name="per_meal_allowance", dtype=Int64),
        Field(name="allergy_count", dtype=Int64),
        Field(name="preferred_categories", dtype=Array(String)),
    ],
    description="Static profile of a child")

user_behaviour = FeatureView(
    name="user_behaviour", entities=[user], ttl=timedelta(0), source=user_behaviour_source, tags=DAILY,
    schema=[
        Field(name="n_views", dtype=Float32),
        Field(name="n_clicks", dtype=Float32),
        Field(name="n_orders", dtype=Float32),
        Field(name="n_favorites", dtype=Float32),
        Field(name="last_active_at", dtype=UnixTimestamp, description="recency = request day - this day"),
        Field(name="engaged_distance_km", dtype=Float32, description="mean school->shop km of engagements"),
        *[Field(name=name, dtype=Float32, description="share of orders in category i")
          for name in ORDER_SHARE_COLUMNS],
        *[Field(name=name, dtype=Float32, description="share of clicks/orders/favourites in category i")
          for name in ENGAGE_SHARE_COLUMNS],
        Field(name="engaged_shops", dtype=Array(String)),
        Field(name="ordered_shops", dtype=Array(String)),
    ],
    description="What the ranker knows of a child's history (TableFeatureSource user snapshot)")

user_shop_history = FeatureView(
    name="user_shop_history", entities=[user, shop], ttl=timedelta(0), source=user_shop_history_source,
    tags=DAILY,
    schema=[
        Field(name="engaged_shop_before", dtype=Bool, description="clicked/ordered/favourited before"),
        Field(name="ordered_shop_before", dtype=Bool),
    ],
    description="Whether a child tried a shop before (user_behaviour's shop lists, keyed by pair)")

# The ranker's shop snapshot is split in two views: static catalog attributes (one row per shop)
# and daily popularity (one row per shop per day). Daily copies of the static columns, the menu
# allergen lists above all, made materialisation and training joins several times slower.
shop_profile = FeatureView(
    name="shop_profile", entities=[shop], ttl=timedelta(0), source=shop_profile_source, tags=DAILY,
    schema=[
        Field(name="category", dtype=String),
        Field(name="avg_price", dtype=Int64),
        Field(name="min_price", dtype=Int64),
        Field(name="rating", dtype=Float64),
        Field(name="accepts_meal_card", dtype=Bool),
        Field(name="is_good_influence_shop", dtype=Bool),
        Field(name="lat", dtype=Float64),
        Field(name="lon", dtype=Float64),
        Field(name="open_minute", dtype=Float64, description="opening time, minutes after midnight"),
        Field(name="close_minute", dtype=Float64),
        Field(name="menu_allergens", dtype=Array(String), description='one "a,b" string per menu'),
    ],
    description="Catalog attributes of a shop (static columns of the ranker's shop snapshot)")

shop_popularity = FeatureView(
    name="shop_popularity", entities=[shop], ttl=timedelta(0), source=shop_popularity_source, tags=DAILY,
    schema=[
        Field(name="n_views", dtype=Float32),
        Field(name="n_clicks", dtype=Float32),
        Field(name="n_orders", dtype=Float32),
        Field(name="view_rate", dtype=Float64, description="views per day of history"),
        Field(name="order_rate", dtype=Float64),
        Field(name="view_share", dtype=Float32, description="views / sessions at the shop's school"),
        Field(name="mean_position", dtype=Float32, description="mean rank shown at (0 = top)"),
    ],
    description="How often the app shows a shop and children pick it (daily columns of the snapshot)")

# ----------------------------------------------------------------------------- request time

request = RequestSource(
    name="request",
    schema=[
        Field(name="origin_lat", dtype=Float64),
        Field(name="origin_lon", dtype=Float64),
        Field(name="time_slot", dtype=String),
        Field(name="request_minute", dtype=Int64, description="minutes after local midnight"),
    ])

request_context = on_demand_feature_view(
    name="request_context",
    sources=[shop_profile[["lat", "lon", "open_minute", "close_minute"]], request],
    schema=[
        Field(name="distance_km", dtype=Float64),
        Field(name="open_now", dtype=Bool),
        *[Field(name=f"slot_{slot.value}", dtype=Bool) for slot in TimeSlot],
    ],
    mode="pandas",
    description="Distance from the request origin, opening hours and time-slot flags",
)(transforms.request_context)

# ----------------------------------------------------------------------------- services

ranker_features = FeatureService(
    name="ranker_features",
    features=[user_profile[["age"]], user_behaviour, shop_profile, shop_popularity],
    description="Everything the Wide&Deep ranker reads from the store (user + shop lookups)")

# Training reads the same values; the "tried this shop before" flags come from the pair view
# (two booleans per sample) instead of user_behaviour's shop lists (lists make Feast's file
# offline store ~15x slower to join).
ranker_training_features = FeatureService(
    name="ranker_training_features",
    features=[
        user_profile[["age"]],
        user_behaviour[["n_views", "n_clicks", "n_orders", "n_favorites", "last_active_at",
                        "engaged_distance_km", *ORDER_SHARE_COLUMNS, *ENGAGE_SHARE_COLUMNS]],
        user_shop_history,
        shop_popularity,
        shop_profile,
    ],
    description="What training joins point-in-time per sample (user_id, shop_id, event_timestamp)")

ranker_request_features = FeatureService(
    name="ranker_request_features",
    features=[user_profile[["age"]], user_behaviour, shop_profile, shop_popularity, request_context],
    description="ranker_features plus the request-time context (needs the request fields)")
