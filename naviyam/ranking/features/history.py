"""As-of-day features: ``FeatureHistory`` and its serving snapshot ``TableFeatureSource``.

``FeatureHistory`` computes as-of-day versions of the per-user and per-shop features: the rows
of Feast's offline sources (``naviyam.features.export``). Training samples are joined to them by
Feast's point-in-time join only, so a sample never sees its own click or order in its features.
``TableFeatureSource`` is the same features at the end of the window, kept in memory for
serving. They live in one module because each builds the other (``TableFeatureSource.fit`` is
``FeatureHistory(...).snapshot()``, and ``snapshot`` returns a ``TableFeatureSource``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from naviyam.data.catalog import Catalog, haversine_km
from naviyam.ranking.features.layout import (
    _CATEGORY_POS, ALLERGEN_SEP, ENGAGE_SHARE_COLUMNS, ORDER_SHARE_COLUMNS, POSITIVE_EVENTS,
    SHOP_FEATURE_COLUMNS, USER_COUNT_COLUMNS, USER_FEATURE_COLUMNS,
)
from naviyam.ranking.features.sources import _ColumnTable
from naviyam.schemas import CATEGORIES


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
    """As-of-day user and shop features over one window of events (the offline sources' rows).

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

    def first_days(self) -> dict[str, pd.DataFrame]:
        """(user_id, shop_id, day) of each pair's first engagement ("engaged_shops") and first
        order ("ordered_shops"): the facts behind ``pair_flags`` and the snapshot's shop lists."""
        out = {}
        for name, first in (("engaged_shops", self._first_engaged), ("ordered_shops", self._first_ordered)):
            u, s = first.index.get_level_values("u"), first.index.get_level_values("s")
            out[name] = pd.DataFrame({"user_id": self._users[u].to_numpy(), "shop_id": self._shops[s].to_numpy(),
                                      "day": first.to_numpy(dtype=np.int64)})
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
