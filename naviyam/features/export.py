"""Writes the offline sources of the feature repo (``data/features/*.parquet``).

Values come from the ranker's own ``FeatureHistory`` (the code that builds training features and
the serving snapshot), so Feast serves exactly what the ranker was trained on. Every row carries

- ``event_timestamp``: day D at 00:00 (UTC-stamped wall clock, as Feast treats naive times);
  the row holds the features as of day D, i.e. computed from events strictly before D;
- ``created``: when this export wrote it (Feast's tie-breaker between rewrites of one row).

Tables (the point-in-time join picks, per entity, the latest row at or before a timestamp):

- ``user_profile``   one row per child, stamped at sign-up (``created_at``);
- ``user_behaviour`` one row per child on day 0 and on each day after a day with any event of
  theirs: user features only change then, so this equals a daily snapshot under the as-of join
  (~29k rows instead of 5,200 x 92 on the default data);
- ``user_shop_history`` one row per (child, shop) on the day after the first engagement and
  after the first order (the pair flags of training);
- ``shop_profile``   one row per shop (catalog attributes, menu allergens), stamped day 0;
- ``shop_popularity`` one row per shop per day (view/order rates change every day).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.data.generate import load_events
from naviyam.ranking.features import SHOP_FEATURE_COLUMNS, FeatureHistory

FEATURES_SUBDIR = "features"
TABLES = ("user_profile", "user_behaviour", "user_shop_history", "shop_profile", "shop_popularity")
# The ranker's shop snapshot, split into what never changes and what changes every day.
SHOP_POPULARITY_COLUMNS = ("n_views", "n_clicks", "n_orders", "view_rate", "order_rate", "view_share",
                           "mean_position")
SHOP_PROFILE_COLUMNS = tuple(c for c in SHOP_FEATURE_COLUMNS if c not in SHOP_POPULARITY_COLUMNS)
TIMESTAMP = "event_timestamp"
CREATED = "created"
LIST_COLUMNS = ("engaged_shops", "ordered_shops")


def features_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / FEATURES_SUBDIR


def source_path(settings: Settings, table: str) -> Path:
    return features_dir(settings) / f"{table}.parquet"


def utc(stamps) -> pd.DatetimeIndex | pd.Series:
    """Naive wall-clock times as UTC-aware (how Feast reads naive timestamps)."""
    out = pd.to_datetime(stamps)
    tz = out.dt.tz if isinstance(out, pd.Series) else out.tz
    if tz is None:
        return out.dt.tz_localize("UTC") if isinstance(out, pd.Series) else out.tz_localize("UTC")
    return out.dt.tz_convert("UTC") if isinstance(out, pd.Series) else out.tz_convert("UTC")


def _day_stamps(history: FeatureHistory, days: np.ndarray) -> pd.DatetimeIndex:
    return utc(pd.DatetimeIndex(history.start.normalize() + pd.to_timedelta(days, unit="D")))


def _shop_lists(rows: pd.DataFrame, first: pd.DataFrame) -> np.ndarray:
    """For each (user_id, day) row: sorted shops first engaged/ordered on a day before it."""
    out = np.empty(len(rows), dtype=object)
    out[:] = [[] for _ in range(len(rows))]
    if first.empty:
        return out
    hit = rows[["user_id", "day"]].reset_index(names="row").merge(first, on="user_id", suffixes=("", "_first"))
    hit = hit[hit["day_first"] < hit["day"]].sort_values(["row", "shop_id"], kind="stable")
    lists = hit.groupby("row", sort=False)["shop_id"].agg(list)
    out[lists.index.to_numpy()] = lists.to_numpy()
    return out


def _user_behaviour(history: FeatureHistory, events: pd.DataFrame, user_ids: pd.Index,
                    first: dict[str, pd.DataFrame]) -> pd.DataFrame:
    active = np.minimum(history.day_of(events["timestamp"]), history.n_days - 1) + 1
    changes = pd.DataFrame({"user_id": events["user_id"].to_numpy(), "day": active})
    rows = pd.concat([pd.DataFrame({"user_id": user_ids.to_numpy(), "day": 0}), changes])
    rows = rows.drop_duplicates().sort_values(["day", "user_id"], kind="stable").reset_index(drop=True)
    frame = history.user_frame(rows["user_id"].tolist(), rows["day"].to_numpy()).reset_index()
    frame = frame.drop(columns=["age"])  # age is a profile attribute (user_profile)
    for col, pairs in first.items():
        frame[col] = _shop_lists(rows, pairs)
    frame.insert(1, TIMESTAMP, _day_stamps(history, rows["day"].to_numpy()))
    return frame


def _user_shop_history(history: FeatureHistory, first: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (user, shop) on the day after its first engagement and after its first order.

    The same facts as ``engaged_shops`` / ``ordered_shops``, keyed by the pair: a training join
    reads two booleans per sample instead of carrying lists (see ``historical``).
    """
    engaged = first["engaged_shops"].rename(columns={"day": "engaged"})
    pairs = engaged.merge(first["ordered_shops"].rename(columns={"day": "ordered"}),
                          on=["user_id", "shop_id"], how="left")
    ordered = pairs["ordered"].to_numpy(dtype=np.float64)
    at_engage = pairs.assign(day=pairs["engaged"] + 1, ordered_shop_before=ordered <= pairs["engaged"])
    later = pairs[ordered > pairs["engaged"]]
    at_order = later.assign(day=later["ordered"].astype(np.int64) + 1, ordered_shop_before=True)
    rows = pd.concat([at_engage, at_order], ignore_index=True).sort_values(["day", "user_id", "shop_id"])
    return pd.DataFrame({
        "user_id": rows["user_id"].to_numpy(), "shop_id": rows["shop_id"].to_numpy(),
        TIMESTAMP: _day_stamps(history, rows["day"].to_numpy(dtype=np.int64)),
        "engaged_shop_before": np.ones(len(rows), dtype=bool),
        "ordered_shop_before": rows["ordered_shop_before"].to_numpy(dtype=bool),
    })


def _shops(history: FeatureHistory, shop_ids: pd.Index) -> dict[str, pd.DataFrame]:
    """Static attributes (one row per shop, stamped day 0) and daily popularity."""
    days = np.arange(history.n_days + 1)
    ids = np.repeat(shop_ids.to_numpy(), len(days))
    day = np.tile(days, len(shop_ids))
    daily = history.shop_frame(ids.tolist(), day).reset_index()
    profile = daily[day == 0][["shop_id", *SHOP_PROFILE_COLUMNS]].reset_index(drop=True)
    profile.insert(1, TIMESTAMP, _day_stamps(history, np.zeros(len(profile), dtype=np.int64)))
    popularity = daily[["shop_id", *SHOP_POPULARITY_COLUMNS]]
    popularity.insert(1, TIMESTAMP, _day_stamps(history, day))
    return {"shop_profile": profile, "shop_popularity": popularity}


def _user_profile(catalog: Catalog) -> pd.DataFrame:
    users = catalog.users.reset_index(drop=True)
    return pd.DataFrame({
        "user_id": users["user_id"].astype(str),
        TIMESTAMP: utc(users["created_at"]),
        "age": users["age"].astype(np.int64),
        "school_id": users["school_id"].astype(str),
        "has_meal_card": users["has_meal_card"].astype(bool),
        "per_meal_allowance": users["per_meal_allowance"].astype(np.int64),
        "allergy_count": users["allergies"].map(len).astype(np.int64),
        "preferred_categories": users["preferred_categories"].map(list),
    })


def _write(frame: pd.DataFrame, path: Path, created: pd.Timestamp) -> None:
    frame = frame.assign(**{CREATED: created})
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)  # readers never see a half-written source


def export_sources(settings: Settings, catalog: Catalog | None = None,
                   events: pd.DataFrame | None = None) -> dict:
    """Writes the sources; returns rows per table, the data window and seconds."""
    started = time.perf_counter()
    catalog = catalog if catalog is not None else Catalog.load(settings.data_dir)
    events = events if events is not None else load_events(settings.data_dir)
    if events.empty:
        raise ValueError("no events to build features from")
    history = FeatureHistory(catalog, events)
    snapshot = history.snapshot()  # the ids FeatureHistory knows: catalog + event ids
    first = history.first_days()
    tables = {
        "user_profile": _user_profile(catalog),
        "user_behaviour": _user_behaviour(history, events, snapshot.users.index, first),
        "user_shop_history": _user_shop_history(history, first),
        **_shops(history, snapshot.shops.index),
    }
    out = features_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    created = pd.Timestamp.now(tz="UTC").floor("s")
    for name, frame in tables.items():
        _write(frame, source_path(settings, name), created)
    first = min(frame[TIMESTAMP].min() for frame in tables.values())
    end = _day_stamps(history, np.array([history.n_days]))[0]
    return {
        "rows": {name: len(frame) for name, frame in tables.items()},
        "start": first.isoformat(),
        "end": end.isoformat(),  # the as-of stamp of the last snapshot (= TableFeatureSource.fit)
        "days": history.n_days + 1,
        "seconds": round(time.perf_counter() - started, 2),
    }
