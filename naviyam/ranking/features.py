"""Feature engineering for the Wide&Deep ranker (step 6), shared by training and serving.

Torch-free on purpose: the onnxruntime scorer imports this module, and serving must not pull in
torch. Training and serving build the model inputs through the same ``RankingFeatures.assemble``
so the two can never drift apart (no training/serving skew).

Pieces:

- ``FeatureSpace``: id vocabularies (user, shop, category -> embedding row). Row 0 of every
  vocabulary is "unknown" (a new user, a shop added after training).
- ``FeatureSource``: where per-user and per-shop behavioural features come from. The local
  ``TableFeatureSource`` is a snapshot table computed from the training window; a Feast-backed
  source can implement the same two lookups later.
- ``FeatureHistory``: point-in-time (as-of-day) versions of the same features, used only to
  build training samples, so that a sample never sees its own click/order in its features.
- ``Normaliser``: z-scores of the numeric wide columns, fitted on training rows.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from naviyam.data.catalog import Catalog, haversine_km
from naviyam.schemas import CATEGORIES, RequestContext, TimeSlot, UserProfile

TIME_SLOTS: tuple[str, ...] = tuple(t.value for t in TimeSlot)
POSITIVE_EVENTS: tuple[str, ...] = ("click", "order", "favorite")
AGE_GROUPS: tuple[str, ...] = ("elementary", "middle", "high")  # 초 / 중 / 고
PRICE_FIT_EDGES: tuple[float, ...] = (0.5, 0.8, 1.0)  # min_price / per-meal allowance
DISTANCE_EDGES_KM: tuple[float, ...] = (0.3, 0.7, 1.5)  # children walk; 1.5 km is already far
RECENCY_CAP_DAYS = 60.0
NEW_USER_RECENCY_DAYS = RECENCY_CAP_DAYS
MIN_ALLOWANCE = 1000  # guards price_fit against a zero allowance
NORMALISED_CLIP = 5.0

INPUT_NAMES: tuple[str, ...] = ("wide", "user_idx", "shop_idx", "category_idx")
OUTPUT_NAME = "score"

# Raw columns the FeatureSource lookups return (the Feast feature views mirror these).
USER_COUNT_COLUMNS: tuple[str, ...] = ("n_views", "n_clicks", "n_orders", "n_favorites")
ORDER_SHARE_COLUMNS: tuple[str, ...] = tuple(f"order_share_{i:02d}" for i in range(len(CATEGORIES)))
ENGAGE_SHARE_COLUMNS: tuple[str, ...] = tuple(f"engage_share_{i:02d}" for i in range(len(CATEGORIES)))
USER_FEATURE_COLUMNS: tuple[str, ...] = (
    "age", *USER_COUNT_COLUMNS, "last_active_at", *ORDER_SHARE_COLUMNS, *ENGAGE_SHARE_COLUMNS,
    "engaged_shops", "ordered_shops",
)
SHOP_FEATURE_COLUMNS: tuple[str, ...] = (
    "category", "avg_price", "min_price", "rating", "accepts_meal_card", "is_good_influence_shop",
    "lat", "lon", "n_views", "n_clicks", "n_orders", "view_rate", "order_rate",
)
PROFILE_COLUMNS: tuple[str, ...] = (
    "user_id", "age", "preferred_categories", "has_meal_card", "per_meal_allowance", "is_new",
)

NUMERIC_FEATURES: tuple[str, ...] = (
    "age", "log_allowance", "user_log_views", "user_log_clicks", "user_log_orders",
    "user_engage_rate", "user_recency_days", "user_cat_order_share", "user_cat_engage_share",
    "shop_log_avg_price", "shop_log_min_price", "shop_rating", "shop_log_view_rate",
    "shop_log_order_rate", "shop_click_rate", "shop_order_rate", "distance_km", "price_fit",
    "avg_price_fit",
)
BINARY_FEATURES: tuple[str, ...] = (
    "no_history", "has_meal_card", "shop_meal_card", "good_influence", "meal_card_mismatch",
    "preferred_category", "engaged_shop_before", "ordered_shop_before", "over_allowance",
)


def _cross_names() -> tuple[str, ...]:
    n_price = len(PRICE_FIT_EDGES) + 1
    names = [f"price_fit_b{b}_x_card{c}" for c in (0, 1) for b in range(n_price)]
    names += [f"distance_b{b}" for b in range(len(DISTANCE_EDGES_KM) + 1)]
    names += [f"age_{a}_x_{c}" for a in AGE_GROUPS for c in CATEGORIES]
    names += [f"slot_{t}_x_{c}" for t in TIME_SLOTS for c in CATEGORIES]
    return tuple(names)


WIDE_FEATURES: tuple[str, ...] = NUMERIC_FEATURES + BINARY_FEATURES + _cross_names()
WIDE_DIM = len(WIDE_FEATURES)


# --------------------------------------------------------------------------- vocabularies


@dataclass(frozen=True)
class FeatureSpace:
    """Id vocabularies; index 0 of each is reserved for unknown ids."""

    users: tuple[str, ...]
    shops: tuple[str, ...]
    categories: tuple[str, ...] = CATEGORIES
    _user_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _shop_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _category_index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, ids in (("_user_index", self.users), ("_shop_index", self.shops),
                          ("_category_index", self.categories)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate ids in {name[1:]}")
            object.__setattr__(self, name, {v: i + 1 for i, v in enumerate(ids)})

    @classmethod
    def fit(cls, events: pd.DataFrame) -> "FeatureSpace":
        """Vocabulary of the ids seen in the training events.

        Ids never seen in training would get an untrained (random) embedding row, so they are
        left out and fall back to row 0, which training teaches to mean "an average user/shop".
        """
        return cls(users=tuple(sorted(events["user_id"].unique())),
                   shops=tuple(sorted(events["shop_id"].unique())))

    def extend(self, events: pd.DataFrame) -> "FeatureSpace":
        """Keeps every existing index (so a checkpoint's embedding rows stay valid) and appends new ids."""
        known_u, known_s = set(self.users), set(self.shops)
        new_u = sorted(set(events["user_id"].unique()) - known_u)
        new_s = sorted(set(events["shop_id"].unique()) - known_s)
        return FeatureSpace(users=self.users + tuple(new_u), shops=self.shops + tuple(new_s),
                            categories=self.categories)

    @property
    def n_users(self) -> int:
        return len(self.users) + 1

    @property
    def n_shops(self) -> int:
        return len(self.shops) + 1

    @property
    def n_categories(self) -> int:
        return len(self.categories) + 1

    def has_user(self, user_id: str) -> bool:
        return user_id in self._user_index

    def user_index(self, ids: Sequence[str]) -> np.ndarray:
        return _lookup(self._user_index, ids)

    def shop_index(self, ids: Sequence[str]) -> np.ndarray:
        return _lookup(self._shop_index, ids)

    def category_index(self, names: Sequence[str]) -> np.ndarray:
        return _lookup(self._category_index, names)

    def to_dict(self) -> dict:
        return {"users": list(self.users), "shops": list(self.shops), "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, raw: Mapping) -> "FeatureSpace":
        return cls(users=tuple(raw["users"]), shops=tuple(raw["shops"]),
                   categories=tuple(raw["categories"]))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "FeatureSpace":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _lookup(index: Mapping[str, int], ids: Sequence[str]) -> np.ndarray:
    get = index.get
    return np.fromiter((get(i, 0) for i in ids), dtype=np.int64, count=len(ids))


# --------------------------------------------------------------------------- feature sources


@runtime_checkable
class FeatureSource(Protocol):
    """Per-entity feature lookups. Rows come back in request order, indexed by id; unknown ids
    get a row of NaN/empty values (the builder turns those into "no history")."""

    def user_features(self, user_ids: Sequence[str]) -> pd.DataFrame: ...

    def shop_features(self, shop_ids: Sequence[str]) -> pd.DataFrame: ...


class TableFeatureSource:
    """Snapshot of user/shop features at the end of the training window, kept in memory."""

    USER_FILE = "user_features.parquet"
    SHOP_FILE = "shop_features.parquet"

    def __init__(self, users: pd.DataFrame, shops: pd.DataFrame) -> None:
        self._users = users.reindex(columns=list(USER_FEATURE_COLUMNS))
        self._shops = shops.reindex(columns=list(SHOP_FEATURE_COLUMNS))

    @classmethod
    def fit(cls, catalog: Catalog, events: pd.DataFrame, end: pd.Timestamp | None = None) -> "TableFeatureSource":
        """Features from ``events`` strictly before ``end`` (default: all of them)."""
        return FeatureHistory(catalog, events, end).snapshot()

    def user_features(self, user_ids: Sequence[str]) -> pd.DataFrame:
        return self._users.reindex(list(user_ids))

    def shop_features(self, shop_ids: Sequence[str]) -> pd.DataFrame:
        return self._shops.reindex(list(shop_ids))

    @property
    def users(self) -> pd.DataFrame:
        return self._users

    @property
    def shops(self) -> pd.DataFrame:
        return self._shops

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._users.rename_axis("user_id").to_parquet(directory / self.USER_FILE)
        self._shops.rename_axis("shop_id").to_parquet(directory / self.SHOP_FILE)

    @classmethod
    def load(cls, directory: Path) -> "TableFeatureSource":
        directory = Path(directory)
        return cls(pd.read_parquet(directory / cls.USER_FILE), pd.read_parquet(directory / cls.SHOP_FILE))


class FeatureHistory:
    """As-of-day user and shop features over one window of events (training only).

    Counts are kept as per-day cumulative arrays, so the features "as of day d" (events on days
    strictly before d) are one array lookup. Day ``n_days`` is the end of the window, which is
    exactly what the serving snapshot holds, so training and serving features match in meaning.
    """

    def __init__(self, catalog: Catalog, events: pd.DataFrame, end: pd.Timestamp | None = None) -> None:
        ev = events if end is None else events[events["timestamp"] < end]
        stamps = ev["timestamp"]
        self.start = (stamps.min() if len(ev) else pd.Timestamp(end or "2000-01-01")).normalize()
        last = end if end is not None else (stamps.max() if len(ev) else self.start)
        self.end = pd.Timestamp(last)
        self.n_days = max(1, int(math.ceil((self.end - self.start) / pd.Timedelta(days=1))))
        if end is None:  # the last day holds events, so the window must include it
            self.n_days = max(self.n_days, int(self._day(pd.Series([self.end]))[0]) + 1)
        self._catalog = catalog
        self._users = pd.Index(catalog.users["user_id"].astype(str).tolist()).append(
            pd.Index(ev["user_id"].unique())).unique()
        self._shops = pd.Index(catalog.shops["shop_id"].astype(str).tolist()).append(
            pd.Index(ev["shop_id"].unique())).unique()
        self._build(ev)

    # -- construction -----------------------------------------------------------------
    def _day(self, stamps: pd.Series) -> np.ndarray:
        return ((stamps - self.start) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)

    def _cumulative(self, rows: np.ndarray, days: np.ndarray, n_rows: int, width: int | None = None,
                    cols: np.ndarray | None = None) -> np.ndarray:
        """cum[r, d] = number of events of row r on days < d."""
        shape = (n_rows, self.n_days + 1) if width is None else (n_rows, self.n_days + 1, width)
        out = np.zeros(shape, dtype=np.float32)
        index = (rows, days + 1) if width is None else (rows, days + 1, cols)
        np.add.at(out, index, 1.0)
        return np.cumsum(out, axis=1, dtype=np.float32)

    def _build(self, ev: pd.DataFrame) -> None:
        n_u, n_s = len(self._users), len(self._shops)
        u = self._users.get_indexer(ev["user_id"])
        s = self._shops.get_indexer(ev["shop_id"])
        d = np.clip(self._day(ev["timestamp"]), 0, self.n_days - 1)
        etype = ev["event_type"].to_numpy()
        category_of = self._catalog.shops["category"].reindex(self._shops).map(
            {c: i for i, c in enumerate(CATEGORIES)}).fillna(-1).to_numpy(dtype=np.int64)

        self._user_counts = {}
        self._shop_counts = {}
        for col, kind in zip(USER_COUNT_COLUMNS, ("view", "click", "order", "favorite")):
            m = etype == kind
            self._user_counts[col] = self._cumulative(u[m], d[m], n_u)
            self._shop_counts[col] = self._cumulative(s[m], d[m], n_s)

        cat = category_of[s]
        pos = np.isin(etype, POSITIVE_EVENTS) & (cat >= 0)
        order = (etype == "order") & (cat >= 0)
        width = len(CATEGORIES)
        self._cat_engage = self._cumulative(u[pos], d[pos], n_u, width, cat[pos])
        self._cat_order = self._cumulative(u[order], d[order], n_u, width, cat[order])

        # Last active day as of d: running max of "active on day d-1", -1 before any activity.
        active = np.full((n_u, self.n_days + 1), -1, dtype=np.int32)
        active[u, d + 1] = d
        self._last_day = np.maximum.accumulate(active, axis=1)

        # First day each (user, shop) pair was engaged / ordered: "tried this shop before".
        pos_all = np.isin(etype, POSITIVE_EVENTS)
        pairs = pd.DataFrame({"u": u[pos_all], "s": s[pos_all], "d": d[pos_all],
                              "order": etype[pos_all] == "order"})
        self._first_engaged = pairs.groupby(["u", "s"])["d"].min()
        self._first_ordered = pairs[pairs["order"]].groupby(["u", "s"])["d"].min()

    # -- as-of lookups ----------------------------------------------------------------
    def day_of(self, stamps: pd.Series) -> np.ndarray:
        """As-of day for timestamps: features use events on days strictly before it."""
        return np.clip(self._day(pd.Series(stamps)), 0, self.n_days)

    def user_frame(self, user_ids: Sequence[str], days: np.ndarray) -> pd.DataFrame:
        idx = self._users.get_indexer(list(user_ids))
        known = idx >= 0
        ii, dd = np.where(known, idx, 0), np.asarray(days, dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        ages = self._catalog.users["age"].reindex(list(user_ids)).to_numpy(dtype=np.float64)
        out["age"] = ages
        for col in USER_COUNT_COLUMNS:
            out[col] = np.where(known, self._user_counts[col][ii, dd], 0.0)
        last = np.where(known, self._last_day[ii, dd], -1)
        out["last_active_at"] = pd.to_datetime(
            np.where(last >= 0, (self.start + pd.to_timedelta(np.maximum(last, 0), unit="D")).to_numpy(),
                     np.datetime64("NaT")))
        for cols, arr in ((ENGAGE_SHARE_COLUMNS, self._cat_engage), (ORDER_SHARE_COLUMNS, self._cat_order)):
            counts = np.where(known[:, None], arr[ii, dd], 0.0)
            shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
            for j, col in enumerate(cols):
                out[col] = shares[:, j]
        frame = pd.DataFrame(out, index=pd.Index(list(user_ids), name="user_id"))
        frame["engaged_shops"] = None
        frame["ordered_shops"] = None
        return frame

    def shop_frame(self, shop_ids: Sequence[str], days: np.ndarray) -> pd.DataFrame:
        ids = list(shop_ids)
        static = self._catalog.shops.reindex(ids)
        idx = self._shops.get_indexer(ids)
        known = idx >= 0
        ii, dd = np.where(known, idx, 0), np.asarray(days, dtype=np.int64)
        out = {col: static[col].to_numpy() for col in
               ("category", "avg_price", "min_price", "rating", "accepts_meal_card",
                "is_good_influence_shop", "lat", "lon")}
        for col in ("n_views", "n_clicks", "n_orders"):
            out[col] = np.where(known, self._shop_counts[col][ii, dd], 0.0)
        # Rates per day of history make early-window and end-of-window popularity comparable.
        elapsed = np.maximum(dd, 1).astype(np.float64)
        out["view_rate"] = out["n_views"] / elapsed
        out["order_rate"] = out["n_orders"] / elapsed
        return pd.DataFrame(out, index=pd.Index(ids, name="shop_id"))

    def pair_flags(self, user_ids: Sequence[str], shop_ids: Sequence[str], days: np.ndarray) -> dict[str, np.ndarray]:
        """Whether the user engaged with / ordered from the shop on a day before ``days``."""
        u = self._users.get_indexer(list(user_ids))
        s = self._shops.get_indexer(list(shop_ids))
        key = pd.MultiIndex.from_arrays([u, s])
        days = np.asarray(days)
        out = {}
        for name, first in (("engaged_shop_before", self._first_engaged), ("ordered_shop_before", self._first_ordered)):
            first_day = first.reindex(key).to_numpy(dtype=np.float64)
            out[name] = (np.nan_to_num(first_day, nan=np.inf) < days).astype(np.float32)
        return out

    def snapshot(self) -> TableFeatureSource:
        """The serving table: every user/shop as of the end of the window."""
        days_u = np.full(len(self._users), self.n_days)
        users = self.user_frame(self._users.tolist(), days_u)
        engaged = self._first_engaged.reset_index()
        ordered = self._first_ordered.reset_index()
        shop_ids = self._shops.to_numpy()
        for col, pairs in (("engaged_shops", engaged), ("ordered_shops", ordered)):
            lists = pairs.assign(sid=shop_ids[pairs["s"].to_numpy()]).groupby("u")["sid"].agg(lambda x: sorted(x))
            col_values = pd.Series([[] for _ in range(len(self._users))], dtype=object)
            col_values.iloc[lists.index.to_numpy()] = lists.to_numpy()
            users[col] = col_values.to_numpy()
        shops = self.shop_frame(self._shops.tolist(), np.full(len(self._shops), self.n_days))
        return TableFeatureSource(users, shops)


# --------------------------------------------------------------------------- normaliser


@dataclass(frozen=True)
class Normaliser:
    """Z-score for the numeric wide columns (binary and cross columns stay 0/1)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, raw_wide: np.ndarray) -> "Normaliser":
        numeric = raw_wide[:, : len(NUMERIC_FEATURES)].astype(np.float64)
        std = numeric.std(axis=0)
        return cls(mean=tuple(numeric.mean(axis=0).tolist()),
                   std=tuple(np.where(std > 1e-6, std, 1.0).tolist()))

    def transform(self, raw_wide: np.ndarray) -> np.ndarray:
        out = raw_wide.astype(np.float32, copy=True)
        n = len(NUMERIC_FEATURES)
        z = (out[:, :n] - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        out[:, :n] = np.clip(z, -NORMALISED_CLIP, NORMALISED_CLIP)
        return out

    def to_dict(self) -> dict:
        return {"columns": list(NUMERIC_FEATURES), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, raw: Mapping) -> "Normaliser":
        if list(raw["columns"]) != list(NUMERIC_FEATURES):
            raise ValueError("normaliser was fitted on a different numeric feature layout")
        return cls(mean=tuple(raw["mean"]), std=tuple(raw["std"]))


# --------------------------------------------------------------------------- assembly


def profiles_frame(users: Sequence[UserProfile] | pd.DataFrame) -> pd.DataFrame:
    """Static per-user attributes (from the profile store) in the layout ``assemble`` expects."""
    if isinstance(users, pd.DataFrame):
        frame = users.reset_index(drop=True).copy()
        if "is_new" not in frame:
            frame["is_new"] = False
        return frame.reindex(columns=list(PROFILE_COLUMNS))
    return pd.DataFrame(
        [(u.user_id, u.age, list(u.preferred_categories), u.has_meal_card, u.per_meal_allowance, u.is_new)
         for u in users],
        columns=list(PROFILE_COLUMNS),
    )


def context_frame(context: RequestContext) -> pd.DataFrame:
    """One-row context; ``assemble`` broadcasts it over every candidate."""
    return pd.DataFrame({"now": [pd.Timestamp(context.now)], "time_slot": [TimeSlot(context.time_slot).value],
                         "origin_lat": [context.origin_lat], "origin_lon": [context.origin_lon]})


def _col(frame: pd.DataFrame, name: str, n: int, fill: float = 0.0) -> np.ndarray:
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
    return np.broadcast_to(np.nan_to_num(values, nan=fill), (n,)) if len(values) == 1 else np.nan_to_num(values, nan=fill)


def _bool(frame: pd.DataFrame, name: str, n: int) -> np.ndarray:
    values = frame[name].fillna(False).to_numpy(dtype=bool)
    return np.broadcast_to(values, (n,)) if len(values) == 1 else values


def _rowwise(values: np.ndarray, n: int) -> np.ndarray:
    return np.broadcast_to(values, (n,) + values.shape[1:]) if len(values) == 1 else values


def age_group(age: np.ndarray) -> np.ndarray:
    return np.digitize(age, (13, 16))  # 초 <= 12 < 중 <= 15 < 고


def _one_hot_cross(a: np.ndarray, n_a: int, b: np.ndarray, n_b: int, valid: np.ndarray | None = None) -> np.ndarray:
    out = np.zeros((a.shape[0], n_a * n_b), dtype=np.float32)
    rows = np.arange(a.shape[0])
    ok = (a >= 0) & (b >= 0) if valid is None else valid & (a >= 0) & (b >= 0)
    out[rows[ok], a[ok] * n_b + b[ok]] = 1.0
    return out


def raw_wide_features(profiles: pd.DataFrame, users: pd.DataFrame, shops: pd.DataFrame,
                      context: pd.DataFrame, pair_flags: Mapping[str, np.ndarray]) -> np.ndarray:
    """The un-normalised wide matrix [N, WIDE_DIM]; columns follow ``WIDE_FEATURES``.

    ``shops`` has one row per candidate (N); ``profiles``, ``users`` and ``context`` have either
    N rows or a single row that is broadcast (one request = one user, one context).
    """
    n = len(shops)
    cat_idx = shops["category"].map({c: i for i, c in enumerate(CATEGORIES)}).fillna(-1).to_numpy(dtype=np.int64)
    has_cat = cat_idx >= 0
    safe_cat = np.where(has_cat, cat_idx, 0)

    age = _col(profiles, "age", n, fill=12.0)
    allowance = np.maximum(_col(profiles, "per_meal_allowance", n, fill=9500.0), MIN_ALLOWANCE)
    has_card = _bool(profiles, "has_meal_card", n)

    counts = {c: _col(users, c, n) for c in USER_COUNT_COLUMNS}
    engaged = counts["n_clicks"] + counts["n_orders"] + counts["n_favorites"]
    no_history = (counts["n_views"] + engaged) == 0
    if "is_new" in profiles:
        no_history = no_history | _bool(profiles, "is_new", n)

    now = _rowwise(pd.to_datetime(context["now"]).dt.normalize().to_numpy(), n)
    last = _rowwise(pd.to_datetime(users["last_active_at"]).to_numpy(), n)
    recency = (now - last) / np.timedelta64(1, "D")
    recency = np.clip(np.nan_to_num(recency.astype(np.float64), nan=NEW_USER_RECENCY_DAYS), 0, RECENCY_CAP_DAYS)

    shares = {}
    for name, cols in (("order", ORDER_SHARE_COLUMNS), ("engage", ENGAGE_SHARE_COLUMNS)):
        mat = np.nan_to_num(users[list(cols)].to_numpy(dtype=np.float64))
        mat = _rowwise(mat, n)
        shares[name] = np.where(has_cat, mat[np.arange(n), safe_cat], 0.0)

    preferred = _rowwise(profiles["preferred_categories"].to_numpy(), n)
    shop_cats = shops["category"].to_numpy()
    pref_match = np.fromiter(
        (c in p if isinstance(p, (list, tuple, np.ndarray)) else False for p, c in zip(preferred, shop_cats)),
        dtype=bool, count=n)

    avg_price = np.maximum(_col(shops, "avg_price", n), 1.0)
    min_price = np.maximum(_col(shops, "min_price", n), 1.0)
    rating = _col(shops, "rating", n, fill=3.5)
    s_views, s_clicks, s_orders = (_col(shops, c, n) for c in ("n_views", "n_clicks", "n_orders"))
    shop_card = _bool(shops, "accepts_meal_card", n)
    good = _bool(shops, "is_good_influence_shop", n)

    origin_lat = _col(context, "origin_lat", n)
    origin_lon = _col(context, "origin_lon", n)
    distance = haversine_km(origin_lat, origin_lon, _col(shops, "lat", n), _col(shops, "lon", n))
    distance = np.clip(np.nan_to_num(distance, nan=10.0), 0.0, 10.0)
    price_fit = np.clip(min_price / allowance, 0.0, 3.0)

    numeric = [
        age, np.log(allowance), np.log1p(counts["n_views"]), np.log1p(counts["n_clicks"]),
        np.log1p(counts["n_orders"]),
        (engaged + 1.0) / (counts["n_views"] + 10.0),  # smoothed so a 1/1 user is not "100 %"
        recency, shares["order"], shares["engage"],
        np.log(avg_price), np.log(min_price), rating,
        np.log1p(_col(shops, "view_rate", n)), np.log1p(_col(shops, "order_rate", n)),
        (s_clicks + 1.0) / (s_views + 10.0), (s_orders + 0.5) / (s_views + 10.0),
        distance, price_fit, np.clip(avg_price / allowance, 0.0, 3.0),
    ]
    binary = [
        no_history, has_card, shop_card, good, has_card & ~shop_card, pref_match,
        np.asarray(pair_flags.get("engaged_shop_before", np.zeros(n)), dtype=bool),
        np.asarray(pair_flags.get("ordered_shop_before", np.zeros(n)), dtype=bool),
        min_price > allowance,
    ]
    slot_idx = pd.Series(_rowwise(context["time_slot"].astype(str).to_numpy(), n)).map(
        {t: i for i, t in enumerate(TIME_SLOTS)}).fillna(-1).to_numpy(dtype=np.int64)
    price_bucket = np.digitize(price_fit, PRICE_FIT_EDGES, right=True)
    crosses = [
        _one_hot_cross(has_card.astype(np.int64), 2, price_bucket, len(PRICE_FIT_EDGES) + 1),
        _one_hot_cross(np.digitize(distance, DISTANCE_EDGES_KM, right=True), len(DISTANCE_EDGES_KM) + 1,
                       np.zeros(n, dtype=np.int64), 1),
        _one_hot_cross(age_group(age), len(AGE_GROUPS), cat_idx, len(CATEGORIES)),
        _one_hot_cross(slot_idx, len(TIME_SLOTS), cat_idx, len(CATEGORIES)),
    ]
    wide = np.concatenate(
        [np.column_stack(numeric).astype(np.float32), np.column_stack(binary).astype(np.float32), *crosses],
        axis=1,
    )
    if wide.shape[1] != WIDE_DIM:  # the layout is part of the model contract
        raise AssertionError(f"wide layout drifted: {wide.shape[1]} != {WIDE_DIM}")
    return wide


def flags_from_lists(users: pd.DataFrame, shop_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Serving-time pair flags from the user's engaged/ordered shop lists (one user row)."""
    out = {}
    for flag, col in (("engaged_shop_before", "engaged_shops"), ("ordered_shop_before", "ordered_shops")):
        listed = users[col].iloc[0] if len(users) else None
        seen = set(listed) if isinstance(listed, (list, tuple, np.ndarray)) else set()
        out[flag] = np.fromiter((s in seen for s in shop_ids), dtype=np.float32, count=len(shop_ids))
    return out


class RankingFeatures:
    """Everything needed to turn (user, candidate shops, context) into model inputs."""

    SPACE_FILE = "feature_space.json"
    NORMALISER_FILE = "normaliser.json"

    def __init__(self, space: FeatureSpace, normaliser: Normaliser, source: FeatureSource) -> None:
        self.space = space
        self.normaliser = normaliser
        self.source = source

    def assemble(self, profiles: pd.DataFrame, users: pd.DataFrame, shop_ids: Sequence[str],
                 shops: pd.DataFrame, context: pd.DataFrame, pair_flags: Mapping[str, np.ndarray],
                 user_idx: np.ndarray) -> dict[str, np.ndarray]:
        """Model inputs from already-looked-up frames (training passes as-of frames here)."""
        raw = raw_wide_features(profiles, users, shops, context, pair_flags)
        return make_inputs(self.normaliser.transform(raw), user_idx,
                           self.space.shop_index(shop_ids), self.space.category_index(shops["category"].tolist()))

    def build_inputs(self, users: Sequence[UserProfile] | pd.DataFrame, shop_ids: Sequence[str],
                     context: RequestContext) -> dict[str, np.ndarray]:
        """Serving path: one user (or one per shop) x candidate shops in one request context."""
        profiles = profiles_frame(users)
        if len(profiles) not in (1, len(shop_ids)):
            raise ValueError("pass one user, or one user per shop")
        user_rows = self.source.user_features(profiles["user_id"].tolist())
        shop_rows = self.source.shop_features(list(shop_ids))
        flags = flags_from_lists(user_rows, shop_ids) if len(profiles) == 1 else _rowwise_flags(user_rows, shop_ids)
        idx = self.user_indices(profiles)
        if len(idx) == 1:
            idx = np.repeat(idx, len(shop_ids))
        return self.assemble(profiles, user_rows, shop_ids, shop_rows, context_frame(context), flags, idx)

    def user_indices(self, profiles: pd.DataFrame) -> np.ndarray:
        """Embedding rows; new users (``is_new`` or never seen in training) share row 0."""
        idx = self.space.user_index(profiles["user_id"].astype(str).tolist())
        is_new = profiles["is_new"].fillna(False).to_numpy(dtype=bool)
        return np.where(is_new, 0, idx).astype(np.int64)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.space.save(directory / self.SPACE_FILE)
        (directory / self.NORMALISER_FILE).write_text(json.dumps(self.normaliser.to_dict()), encoding="utf-8")
        if isinstance(self.source, TableFeatureSource):
            self.source.save(directory)

    @classmethod
    def load(cls, directory: Path, source: FeatureSource | None = None) -> "RankingFeatures":
        """``source`` overrides the saved snapshot table (e.g. a Feast online store)."""
        directory = Path(directory)
        space = FeatureSpace.load(directory / cls.SPACE_FILE)
        normaliser = Normaliser.from_dict(json.loads((directory / cls.NORMALISER_FILE).read_text(encoding="utf-8")))
        return cls(space, normaliser, source if source is not None else TableFeatureSource.load(directory))


def _rowwise_flags(users: pd.DataFrame, shop_ids: Sequence[str]) -> dict[str, np.ndarray]:
    out = {}
    for flag, col in (("engaged_shop_before", "engaged_shops"), ("ordered_shop_before", "ordered_shops")):
        out[flag] = np.fromiter(
            (isinstance(lst, (list, tuple, np.ndarray)) and s in set(lst) for lst, s in zip(users[col], shop_ids)),
            dtype=np.float32, count=len(shop_ids))
    return out


def make_inputs(wide: np.ndarray, user_idx: np.ndarray, shop_idx: np.ndarray, category_idx: np.ndarray) -> dict[str, np.ndarray]:
    """The exact ONNX/torch input dict (names and dtypes are the model contract)."""
    return {
        "wide": np.ascontiguousarray(wide, dtype=np.float32),
        "user_idx": np.ascontiguousarray(user_idx, dtype=np.int64),
        "shop_idx": np.ascontiguousarray(shop_idx, dtype=np.int64),
        "category_idx": np.ascontiguousarray(category_idx, dtype=np.int64),
    }
