"""Feature engineering for the Wide&Deep ranker (step 6), shared by training and serving.

Torch-free on purpose: the onnxruntime scorer imports this module, and serving must not pull in
torch. Training and serving turn looked-up features into model inputs through the same
``raw_wide_features`` so the two can never drift apart (no training/serving skew).

Pieces:

- ``FeatureSpace``: id vocabularies (user, shop, category -> embedding row). Row 0 of every
  vocabulary is "unknown" (a new user, a shop added after training).
- ``FeatureSource``: where per-user and per-shop behavioural features come from. The local
  ``TableFeatureSource`` is a snapshot computed from the training window; a Feast-backed source
  can implement the same two lookups later.
- ``FeatureHistory``: point-in-time (as-of-day) versions of the same features, used only to
  build training samples, so a sample never sees its own click or order in its features.
- ``Normaliser``: z-scores of the numeric wide columns, fitted on training rows.
- ``RankingFeatures``: space + normaliser + source, i.e. everything serving needs.
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

        An id never seen in training would get an untrained (random) embedding row, so it is
        left out and falls back to row 0, which training teaches to mean "an average user/shop".
        """
        return cls(users=tuple(sorted(events["user_id"].unique())),
                   shops=tuple(sorted(events["shop_id"].unique())))

    def extend(self, events: pd.DataFrame) -> "FeatureSpace":
        """Keeps every existing index (so a checkpoint's embedding rows stay valid), appends new ids."""
        new_u = sorted(set(events["user_id"].unique()) - set(self.users))
        new_s = sorted(set(events["shop_id"].unique()) - set(self.shops))
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
        return cls(users=tuple(raw["users"]), shops=tuple(raw["shops"]), categories=tuple(raw["categories"]))

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
    """Per-entity feature lookups (columns ``USER_FEATURE_COLUMNS`` / ``SHOP_FEATURE_COLUMNS``).

    Rows come back in request order, indexed by id; unknown ids get NaN/empty values, which the
    builder reads as "no history".
    """

    def user_features(self, user_ids: Sequence[str]) -> pd.DataFrame: ...

    def shop_features(self, shop_ids: Sequence[str]) -> pd.DataFrame: ...


def _missing_value(values: np.ndarray):
    if values.dtype.kind == "M":
        return np.datetime64("NaT")
    if values.dtype.kind in "fiub":
        return np.nan
    return None


class _ColumnTable:
    """A frame as per-column numpy arrays plus one trailing "missing" row, for fast row takes.

    Serving looks up ~100 rows per request; ``DataFrame.reindex`` costs more than the whole
    model, positional ``take`` on plain arrays costs microseconds.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self._pos = {key: i for i, key in enumerate(frame.index)}
        self._missing = len(frame)
        self._cols = {}
        for col in frame.columns:
            values = frame[col].to_numpy()
            if values.dtype.kind in "iub":  # ints/bools cannot hold the NaN of the missing row
                values = values.astype(np.float64)
            pad = np.empty(1, dtype=values.dtype)
            pad[0] = _missing_value(values)
            self._cols[col] = np.concatenate([values, pad])

    def take(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        get, missing = self._pos.get, self._missing
        rows = np.fromiter((get(i, missing) for i in ids), dtype=np.int64, count=len(ids))
        return {col: values[rows] for col, values in self._cols.items()}


class TableFeatureSource:
    """Snapshot of user/shop features at the end of the training window, kept in memory."""

    USER_FILE = "user_features.parquet"
    SHOP_FILE = "shop_features.parquet"

    def __init__(self, users: pd.DataFrame, shops: pd.DataFrame) -> None:
        self._users = users.reindex(columns=list(USER_FEATURE_COLUMNS))
        self._shops = shops.reindex(columns=list(SHOP_FEATURE_COLUMNS))
        self._user_table = _ColumnTable(self._users)
        self._shop_table = _ColumnTable(self._shops)

    @classmethod
    def fit(cls, catalog: Catalog, events: pd.DataFrame, end: pd.Timestamp | None = None) -> "TableFeatureSource":
        """Features from ``events`` strictly before ``end`` (default: all of them)."""
        return FeatureHistory(catalog, events, end).snapshot()

    def user_features(self, user_ids: Sequence[str]) -> pd.DataFrame:
        return self._users.reindex(list(user_ids))

    def shop_features(self, shop_ids: Sequence[str]) -> pd.DataFrame:
        return self._shops.reindex(list(shop_ids))

    # Fast path used by RankingFeatures when present (same values as the frames above).
    def user_columns(self, user_ids: Sequence[str]) -> dict[str, np.ndarray]:
        return self._user_table.take(user_ids)

    def shop_columns(self, shop_ids: Sequence[str]) -> dict[str, np.ndarray]:
        return self._shop_table.take(shop_ids)

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


def hhmm_minutes(values: Sequence[str]) -> np.ndarray:
    """"HH:MM" -> minutes after midnight (float, NaN when missing)."""
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if isinstance(value, str) and ":" in value:
            h, m = value.split(":", 1)
            out[i] = int(h) * 60 + int(m)
    return out


def menu_allergens(menus: pd.DataFrame) -> pd.Series:
    """shop_id -> one "a,b" allergen string per menu (what the allergy features need)."""
    joined = menus["allergens"].map(lambda a: ALLERGEN_SEP.join(sorted(a)) if a is not None else "")
    return joined.groupby(menus["shop_id"]).agg(list)


class FeatureHistory:
    """As-of-day user and shop features over one window of events (training only).

    Counts are kept as per-day cumulative arrays, so the features "as of day d" (events on days
    strictly before d) are one array lookup. Day ``n_days`` is the end of the window, which is
    exactly what the serving snapshot holds, so training and serving features mean the same.
    """

    def __init__(self, catalog: Catalog, events: pd.DataFrame, end: pd.Timestamp | None = None) -> None:
        ev = events if end is None else events[events["timestamp"] < end]
        stamps = ev["timestamp"]
        fallback = pd.Timestamp(end) if end is not None else pd.Timestamp("2000-01-01")
        self.start = (stamps.min() if len(ev) else fallback).normalize()
        self.end = pd.Timestamp(end) if end is not None else (stamps.max() if len(ev) else self.start)
        self.n_days = max(1, int(math.ceil((self.end - self.start) / pd.Timedelta(days=1))))
        if end is None:  # the last event's own day must be inside the window
            self.n_days = max(self.n_days, int(self._day(pd.Series([self.end]))[0]) + 1)
        self._catalog = catalog
        self._menu_allergens = menu_allergens(catalog.menus)
        self._users = pd.Index(catalog.users["user_id"].astype(str).tolist()).append(
            pd.Index(ev["user_id"].unique())).unique()
        self._shops = pd.Index(catalog.shops["shop_id"].astype(str).tolist()).append(
            pd.Index(ev["shop_id"].unique())).unique()
        self._build(ev)

    # -- construction -----------------------------------------------------------------
    def _day(self, stamps: pd.Series) -> np.ndarray:
        return ((stamps - self.start) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)

    def _cumulative(self, rows: np.ndarray, days: np.ndarray, n_rows: int, width: int | None = None,
                    cols: np.ndarray | None = None, values: np.ndarray | float = 1.0) -> np.ndarray:
        """cum[r, d] = number (or sum of ``values``) of events of row r on days < d."""
        shape = (n_rows, self.n_days + 1) if width is None else (n_rows, self.n_days + 1, width)
        out = np.zeros(shape, dtype=np.float32)
        if width is None:
            np.add.at(out, (rows, days + 1), values)
        else:
            assert cols is not None, "a width needs the column of each event"
            np.add.at(out, (rows, days + 1, cols), values)
        return np.cumsum(out, axis=1, dtype=np.float32)

    def _build(self, ev: pd.DataFrame) -> None:
        catalog = self._catalog
        n_u, n_s = len(self._users), len(self._shops)
        u = self._users.get_indexer(ev["user_id"])
        s = self._shops.get_indexer(ev["shop_id"])
        d = np.clip(self._day(ev["timestamp"]), 0, self.n_days - 1)
        etype = ev["event_type"].to_numpy()

        self._user_counts: dict[str, np.ndarray] = {}
        self._shop_counts: dict[str, np.ndarray] = {}
        for col, kind in zip(USER_COUNT_COLUMNS, ("view", "click", "order", "favorite")):
            m = etype == kind
            self._user_counts[col] = self._cumulative(u[m], d[m], n_u)
            self._shop_counts[col] = self._cumulative(s[m], d[m], n_s)

        # Where the app tends to place a shop (0 = top): a shop shown high gets clicked more
        # whatever the child thinks of it, so the ranker needs this to explain the clicks.
        position = ev["position"].to_numpy(dtype=np.float64, na_value=np.nan)
        ok = (etype == "view") & np.isfinite(position)
        self._position_sum = self._cumulative(s[ok], d[ok], n_s, values=position[ok])
        self._position_n = self._cumulative(s[ok], d[ok], n_s)

        category_of = catalog.shops["category"].reindex(self._shops).map(_CATEGORY_POS)
        cat = category_of.fillna(-1).to_numpy(dtype=np.int64)[s]
        positive = np.isin(etype, POSITIVE_EVENTS)
        pos_cat = positive & (cat >= 0)
        order_cat = (etype == "order") & (cat >= 0)
        width = len(CATEGORIES)
        self._cat_engage = self._cumulative(u[pos_cat], d[pos_cat], n_u, width, cat[pos_cat])
        self._cat_order = self._cumulative(u[order_cat], d[order_cat], n_u, width, cat[order_cat])

        # How far from school the child usually goes (walking range differs a lot by child).
        school = catalog.users["school_id"].reindex(ev["user_id"]).to_numpy()
        school_pos = catalog.schools[["lat", "lon"]].reindex(school).to_numpy(dtype=np.float64)
        shop_pos = catalog.shops[["lat", "lon"]].reindex(ev["shop_id"]).to_numpy(dtype=np.float64)
        dist = haversine_km(school_pos[:, 0], school_pos[:, 1], shop_pos[:, 0], shop_pos[:, 1])
        ok = positive & np.isfinite(dist)
        self._distance_sum = self._cumulative(u[ok], d[ok], n_u, values=dist[ok])
        self._distance_n = self._cumulative(u[ok], d[ok], n_u)

        # A shop's views over its school's sessions is how often the app shows it at all (its
        # exposure), which raw view counts would confuse with the size of the school.
        self._schools = pd.Index(catalog.schools.index.astype(str))
        school_idx = self._schools.get_indexer(school)
        ok = ~ev["session_id"].duplicated().to_numpy() & (school_idx >= 0)
        self._school_sessions = self._cumulative(school_idx[ok], d[ok], max(len(self._schools), 1))
        self._shop_school = self._schools.get_indexer(catalog.shops["school_id"].reindex(self._shops))

        # Last active day as of d: running max of "active on day d-1"; -1 before any activity.
        active = np.full((n_u, self.n_days + 1), -1, dtype=np.int32)
        active[u, d + 1] = d
        self._last_day = np.maximum.accumulate(active, axis=1)

        # First day each (user, shop) pair was engaged / ordered: "tried this shop before".
        pairs = pd.DataFrame({"u": u[positive], "s": s[positive], "d": d[positive],
                              "order": etype[positive] == "order"})
        self._first_engaged = pairs.groupby(["u", "s"])["d"].min()
        self._first_ordered = pairs[pairs["order"]].groupby(["u", "s"])["d"].min()

    # -- as-of lookups ----------------------------------------------------------------
    def day_of(self, stamps: pd.Series) -> np.ndarray:
        """As-of day for timestamps: features use events on days strictly before it."""
        return np.clip(self._day(pd.Series(stamps)), 0, self.n_days)

    def _rows(self, index: pd.Index, ids: Sequence[str], days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = index.get_indexer(list(ids))
        known = idx >= 0
        return known, np.where(known, idx, 0), np.asarray(days, dtype=np.int64)

    def user_frame(self, user_ids: Sequence[str], days: np.ndarray) -> pd.DataFrame:
        ids = list(user_ids)
        known, ii, dd = self._rows(self._users, ids, days)

        def at(arr: np.ndarray) -> np.ndarray:
            return np.where(known, arr[ii, dd], 0.0)

        out: dict[str, np.ndarray] = {"age": self._catalog.users["age"].reindex(ids).to_numpy(dtype=np.float64)}
        for col in USER_COUNT_COLUMNS:
            out[col] = at(self._user_counts[col])
        last = np.where(known, self._last_day[ii, dd], -1)
        out["last_active_at"] = np.where(
            last >= 0, np.datetime64(self.start.normalize(), "ns") + last.astype("timedelta64[D]"),
            np.datetime64("NaT")).astype("datetime64[ns]")
        n_dist = at(self._distance_n)
        out["engaged_distance_km"] = np.where(n_dist > 0, at(self._distance_sum) / np.maximum(n_dist, 1.0), np.nan)
        for cols, arr in ((ENGAGE_SHARE_COLUMNS, self._cat_engage), (ORDER_SHARE_COLUMNS, self._cat_order)):
            counts = np.where(known[:, None], arr[ii, dd], 0.0)
            shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
            out.update({col: shares[:, j] for j, col in enumerate(cols)})
        frame = pd.DataFrame(out, index=pd.Index(ids, name="user_id"))
        # Per-pair history is passed separately in training (``pair_flags``), per day.
        frame["engaged_shops"] = None
        frame["ordered_shops"] = None
        return frame

    def shop_frame(self, shop_ids: Sequence[str], days: np.ndarray) -> pd.DataFrame:
        ids = list(shop_ids)
        known, ii, dd = self._rows(self._shops, ids, days)

        def at(arr: np.ndarray) -> np.ndarray:
            return np.where(known, arr[ii, dd], 0.0)

        static = self._catalog.shops.reindex(ids)
        out = {col: static[col].to_numpy() for col in
               ("category", "avg_price", "min_price", "rating", "accepts_meal_card",
                "is_good_influence_shop", "lat", "lon")}
        out["open_minute"] = hhmm_minutes(static["open_time"].tolist())
        out["close_minute"] = hhmm_minutes(static["close_time"].tolist())
        for col in ("n_views", "n_clicks", "n_orders"):
            out[col] = at(self._shop_counts[col])
        # Rates per day of history make early-window and end-of-window popularity comparable.
        elapsed = np.maximum(dd, 1).astype(np.float64)
        out["view_rate"] = out["n_views"] / elapsed
        out["order_rate"] = out["n_orders"] / elapsed
        school = np.where(known, self._shop_school[ii], -1)
        sessions = np.where(school >= 0, self._school_sessions[np.maximum(school, 0), dd], 0.0)
        out["view_share"] = np.where(sessions > 0, out["n_views"] / np.maximum(sessions, 1.0), np.nan)
        shown = at(self._position_n)
        out["mean_position"] = np.where(shown > 0, at(self._position_sum) / np.maximum(shown, 1.0), np.nan)
        out["menu_allergens"] = self._menu_allergens.reindex(ids).to_numpy()
        return pd.DataFrame(out, index=pd.Index(ids, name="shop_id"))

    def pair_flags(self, user_ids: Sequence[str], shop_ids: Sequence[str], days: np.ndarray) -> dict[str, np.ndarray]:
        """Whether the user engaged with / ordered from the shop on a day before ``days``."""
        key = pd.MultiIndex.from_arrays([self._users.get_indexer(list(user_ids)),
                                         self._shops.get_indexer(list(shop_ids))])
        days = np.asarray(days)
        out = {}
        for name, first in (("engaged_shop_before", self._first_engaged), ("ordered_shop_before", self._first_ordered)):
            first_day = first.reindex(key).to_numpy(dtype=np.float64)
            out[name] = (np.nan_to_num(first_day, nan=np.inf) < days).astype(np.float32)
        return out

    def snapshot(self) -> TableFeatureSource:
        """The serving table: every user and shop as of the end of the window."""
        users = self.user_frame(self._users.tolist(), np.full(len(self._users), self.n_days))
        shop_ids = self._shops.to_numpy()
        for col, first in (("engaged_shops", self._first_engaged), ("ordered_shops", self._first_ordered)):
            pairs = first.reset_index()
            lists = pd.Series(shop_ids[pairs["s"].to_numpy()]).groupby(pairs["u"].to_numpy()).agg(sorted)
            values = np.empty(len(self._users), dtype=object)
            values[:] = [[] for _ in range(len(self._users))]
            for row, shops in zip(lists.index, lists.to_numpy()):
                values[row] = shops
            users[col] = values
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


def profile_columns(users: Sequence[UserProfile] | pd.DataFrame) -> dict[str, np.ndarray]:
    """Static per-user attributes (the profile store) as columns; a DataFrame needs PROFILE_COLUMNS
    except ``is_new`` (default False), e.g. rows of ``catalog.users``."""
    if isinstance(users, pd.DataFrame):
        frame = users.reset_index(drop=True)
        out = {c: frame[c].to_numpy() for c in PROFILE_COLUMNS if c in frame}
        out.setdefault("is_new", np.zeros(len(frame), dtype=bool))
        missing = set(PROFILE_COLUMNS) - set(out)
        if missing:
            raise ValueError(f"user rows lack {sorted(missing)}")
        return out
    users = list(users)
    lists = np.empty((2, len(users)), dtype=object)
    for i, u in enumerate(users):
        lists[0, i], lists[1, i] = list(u.preferred_categories), list(u.allergies)
    return {
        "user_id": np.array([u.user_id for u in users], dtype=object),
        "age": np.array([u.age for u in users], dtype=np.float64),
        "preferred_categories": lists[0], "allergies": lists[1],
        "has_meal_card": np.array([u.has_meal_card for u in users], dtype=bool),
        "per_meal_allowance": np.array([u.per_meal_allowance for u in users], dtype=np.float64),
        "is_new": np.array([u.is_new for u in users], dtype=bool),
    }


def context_columns(context: RequestContext | pd.DataFrame) -> dict[str, np.ndarray]:
    """One RequestContext (broadcast over the candidates) or one context row per candidate."""
    if isinstance(context, RequestContext):
        return {"now": np.array([np.datetime64(pd.Timestamp(context.now).tz_localize(None), "ns")]),
                "time_slot": np.array([TimeSlot(context.time_slot).value], dtype=object),
                "origin_lat": np.array([context.origin_lat]), "origin_lon": np.array([context.origin_lon])}
    frame = context.reset_index(drop=True)
    out = {c: frame[c].to_numpy() for c in CONTEXT_COLUMNS}
    out["now"] = pd.to_datetime(frame["now"]).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return out


def frame_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy() for c in frame.columns}


def _n(values: np.ndarray, n: int) -> np.ndarray:
    """Broadcasts a one-row column to n rows (a request is one user in one context)."""
    return np.broadcast_to(values, (n,) + values.shape[1:]) if len(values) == 1 and n != 1 else values


def _num(cols: Columns, name: str, n: int, fill: float = 0.0) -> np.ndarray:
    values = np.asarray(cols[name])
    if values.dtype == object:
        values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    return _n(np.nan_to_num(values.astype(np.float64), nan=fill), n)


def _flag(cols: Columns, name: str, n: int) -> np.ndarray:
    values = np.asarray(cols[name])
    if values.dtype == object:
        values = np.array([bool(v) if v is not None and v == v else False for v in values], dtype=bool)
    elif values.dtype.kind == "f":
        values = np.nan_to_num(values, nan=0.0) != 0.0  # NaN = unknown row = False
    return _n(values.astype(bool), n)


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _membership(lists: np.ndarray, items: np.ndarray) -> np.ndarray:
    """items[i] in lists[i] (lists broadcast when one row)."""
    if len(lists) == 1:
        member = set(lists[0]) if _is_list(lists[0]) else set()
        return np.fromiter((x in member for x in items), dtype=bool, count=len(items))
    return np.fromiter((_is_list(l) and x in l for l, x in zip(lists, items)), dtype=bool, count=len(items))


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


def make_inputs(wide: np.ndarray, user_idx: np.ndarray, shop_idx: np.ndarray,
                category_idx: np.ndarray) -> dict[str, np.ndarray]:
    """The exact ONNX/torch input dict (names and dtypes are the model contract)."""
    return {
        "wide": np.ascontiguousarray(wide, dtype=np.float32),
        "user_idx": np.ascontiguousarray(user_idx, dtype=np.int64),
        "shop_idx": np.ascontiguousarray(shop_idx, dtype=np.int64),
        "category_idx": np.ascontiguousarray(category_idx, dtype=np.int64),
    }


class RankingFeatures:
    """Everything needed to turn (user, candidate shops, context) into model inputs."""

    SPACE_FILE = "feature_space.json"
    NORMALISER_FILE = "normaliser.json"

    def __init__(self, space: FeatureSpace, normaliser: Normaliser, source: FeatureSource) -> None:
        self.space = space
        self.normaliser = normaliser
        self.source = source

    def assemble(self, profiles: Columns, users: Columns, shop_ids: Sequence[str], shops: Columns,
                 context: Columns, pair_flags: Mapping[str, np.ndarray], user_idx: np.ndarray) -> dict[str, np.ndarray]:
        """Model inputs from already-looked-up columns (training passes as-of history here)."""
        raw = raw_wide_features(profiles, users, shops, context, pair_flags)
        return make_inputs(self.normaliser.transform(raw), user_idx, self.space.shop_index(shop_ids),
                           self.space.category_index(list(shops["category"])))

    def build_inputs(self, users: Sequence[UserProfile] | pd.DataFrame, shop_ids: Sequence[str],
                     context: RequestContext | pd.DataFrame) -> dict[str, np.ndarray]:
        """Model inputs for candidate shops, with features looked up in ``self.source``.

        Serving passes one user and one ``RequestContext`` (broadcast over the candidates);
        batch evaluation passes one user row and one context row (``CONTEXT_COLUMNS``) per shop.
        """
        shop_ids = list(shop_ids)
        profiles = profile_columns(users)
        contexts = context_columns(context)
        for name, cols in (("user", profiles), ("context", contexts)):
            if len(next(iter(cols.values()))) not in (1, len(shop_ids)):
                raise ValueError(f"pass one {name} row, or one per shop")
        user_ids = [str(u) for u in profiles["user_id"]]
        user_rows = self._user_columns(user_ids)
        shop_rows = self._shop_columns(shop_ids)
        shop_arr = np.asarray(shop_ids, dtype=object)
        flags = {flag: _membership(np.asarray(user_rows[col], dtype=object), shop_arr).astype(np.float32)
                 for flag, col in (("engaged_shop_before", "engaged_shops"), ("ordered_shop_before", "ordered_shops"))}
        idx = self.user_indices(user_ids, profiles["is_new"])
        return self.assemble(profiles, user_rows, shop_ids, shop_rows, contexts, flags, _n(idx, len(shop_ids)))

    def _user_columns(self, user_ids: list[str]) -> dict[str, np.ndarray]:
        fast = getattr(self.source, "user_columns", None)
        return fast(user_ids) if fast is not None else frame_columns(self.source.user_features(user_ids))

    def _shop_columns(self, shop_ids: list[str]) -> dict[str, np.ndarray]:
        fast = getattr(self.source, "shop_columns", None)
        return fast(shop_ids) if fast is not None else frame_columns(self.source.shop_features(shop_ids))

    def user_indices(self, user_ids: Sequence[str], is_new: np.ndarray | None = None) -> np.ndarray:
        """Embedding rows; new users (``is_new`` or never seen in training) share row 0."""
        idx = self.space.user_index(list(user_ids))
        if is_new is not None:
            idx = np.where(np.asarray(is_new, dtype=bool), 0, idx)
        return idx.astype(np.int64)

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
