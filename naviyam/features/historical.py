"""Point-in-time training features from Feast's offline store (``get_historical_features``).

``historical_training_features(settings, entity_df)`` joins, for every (user_id, shop_id,
event_timestamp) row, the latest row of each view of the ``ranker_training_features`` service
stamped at or before that timestamp; sources hold as-of-day rows (day D = events before D), so a
sample never sees its own session or anything later.

Three details of Feast's file (dask) offline store shape the calls:

- its join de-duplicates on (join keys seen so far, timestamp) after each view, so the samples
  of one session (same user, same instant, different shops) collapse into one row if a single
  call joins the user views first (seen: 3,000 sample rows in, 597 out);
- it merges every entity row with every source row of that entity before filtering on time;
- list-valued columns carried through that merge are pickled at each dask step (~15x slower).

So each view of the service is requested on its own distinct keys (at day grain for views tagged
``grain: day``) and the result is joined back onto the samples: the same point-in-time join,
without lost rows and on far fewer keys. The training service reads the "tried this shop
before" facts from the pair view ``user_shop_history`` rather than from the shop lists.
``training_feature_columns`` turns the result into the ranker's columns for ``raw_wide_features``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from naviyam.config import Settings
from naviyam.features.export import TIMESTAMP, utc
from naviyam.features.online import DTYPE_OVERRIDES, SHOP_VIEWS, USER_VIEWS, numpy_dtype
from naviyam.features.store import TRAINING_SERVICE
from naviyam.ranking.features import SHOP_FEATURE_COLUMNS, USER_FEATURE_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    from feast import FeatureStore

log = logging.getLogger(__name__)

ENTITY_KEYS = ("user_id", "shop_id")
AS_OF = "__as_of"
# Training reads everything serving reads except the shop lists, which reach it as pair flags.
TRAINING_USER_VIEWS = {view: tuple(c for c in cols if c not in ("engaged_shops", "ordered_shops"))
                       for view, cols in USER_VIEWS.items()}
PAIR_VIEW = "user_shop_history"
PAIR_FLAGS = ("engaged_shop_before", "ordered_shop_before")


def _store(settings: Settings, store: "FeatureStore | None") -> "FeatureStore":
    if store is not None:
        return store

    require_built(settings)
    return feature_store(settings)


def service_views(store: "FeatureStore", service: str = TRAINING_SERVICE) -> list[dict]:
    """Per view of the service: its join keys, feature references and whether it is day-grained."""
    out = []
    for projection in store.get_feature_service(service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        out.append({
            "view": projection.name_to_use(), "keys": list(view.join_keys),
            "refs": [f"{projection.name_to_use()}:{f.name}" for f in projection.features],
            "daily": view.tags.get("grain") == "day",
        })
    return out


def historical_training_features(settings: Settings, entity_df: pd.DataFrame, *,
                                 store: "FeatureStore | None" = None,
                                 service: str = TRAINING_SERVICE) -> pd.DataFrame:
    """``entity_df`` (user_id, shop_id, event_timestamp) with the service's features as of each row.

    Rows keep ``entity_df``'s order and index; feature columns are named ``view__feature``.
    Naive timestamps are read as UTC wall clock, like the exported sources. Views tagged
    ``grain: day`` are joined at the start of the row's day, which selects the same source row.
    """
    store = _store(settings, store)
    missing = {*ENTITY_KEYS, TIMESTAMP} - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity_df lacks {sorted(missing)}")
    out = entity_df.copy()
    out[TIMESTAMP] = utc(entity_df[TIMESTAMP]).astype("datetime64[ns, UTC]")
    for view in service_views(store, service):
        started = time.perf_counter()
        keys = view["keys"]
        if set(keys) - set(ENTITY_KEYS):
            raise ValueError(f"view {view['view']} is keyed on {keys}; only {ENTITY_KEYS} are joined")
        as_of = out[TIMESTAMP].dt.floor("D") if view["daily"] else out[TIMESTAMP]
        wanted = out[keys].assign(**{AS_OF: as_of})
        unique = wanted.drop_duplicates().rename(columns={AS_OF: TIMESTAMP}).reset_index(drop=True)
        joined = store.get_historical_features(entity_df=unique, features=view["refs"],
                                               full_feature_names=True).to_df()
        joined = joined.rename(columns={TIMESTAMP: AS_OF})
        joined[AS_OF] = utc(joined[AS_OF]).astype("datetime64[ns, UTC]")
        columns = [ref.replace(":", "__") for ref in view["refs"]]
        merged = wanted.merge(joined[[*keys, AS_OF, *columns]], on=[*keys, AS_OF], how="left",
                              validate="many_to_one")
        for col in columns:
            out[col] = merged[col].to_numpy()
        log.info("point-in-time join of %s: %d keys for %d rows, %.1fs", view["view"], len(unique),
                 len(out), time.perf_counter() - started)
    return out


def _ranker_dtypes(store: "FeatureStore", views: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, np.dtype]]:
    """ranker column -> (historical column name, snapshot dtype)."""
    out = {}
    for view, columns in views.items():
        fields = {f.name: f.dtype for f in store.get_feature_view(view).features}
        for col in columns:
            out[col] = (f"{view}__{col}", DTYPE_OVERRIDES.get(col, numpy_dtype(fields[col])))
    return out


def _column(values: pd.Series, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "M":
        return pd.to_datetime(values, utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    if dtype.kind == "f":
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=dtype, na_value=np.nan)
    if dtype.kind in "iub":
        if values.isna().any():
            return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return values.to_numpy(dtype=dtype)
    out = np.empty(len(values), dtype=object)
    out[:] = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else (np.nan if v is None else v)
              for v in values]
    return out


def ranker_frames(store: "FeatureStore", joined: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(user frame, shop frame) in the ranker's columns and dtypes, one row per joined row.

    Like ``FeatureHistory.user_frame``, the shop lists stay empty (None): training passes the
    per-sample "tried before" flags separately.
    """
    frames = []
    for views, columns, key in ((TRAINING_USER_VIEWS, USER_FEATURE_COLUMNS, "user_id"),
                                (SHOP_VIEWS, SHOP_FEATURE_COLUMNS, "shop_id")):
        plan = _ranker_dtypes(store, views)
        data = {col: _column(joined[plan[col][0]], plan[col][1]) if col in plan else None for col in columns}
        frames.append(pd.DataFrame(data, index=pd.Index(joined[key].to_numpy(), name=key, dtype=object)))
    return frames[0], frames[1]


def training_feature_columns(settings: Settings, samples: pd.DataFrame, *,
                             store: "FeatureStore | None" = None) -> dict[str, object]:
    """As-of user/shop frames and pair flags of training samples (user_id, shop_id, timestamp).

    What ``naviyam.ranking.train.sample_frames`` takes from ``FeatureHistory`` with the "table"
    backend, here from the point-in-time join of ``ranker_training_features``.
    """
    store = _store(settings, store)
    entity_df = pd.DataFrame({"user_id": samples["user_id"].astype(str).to_numpy(),
                              "shop_id": samples["shop_id"].astype(str).to_numpy(),
                              TIMESTAMP: samples["timestamp"].to_numpy()})
    joined = historical_training_features(settings, entity_df, store=store)
    users, shops = ranker_frames(store, joined)
    # No pair row as of the sample (null) = never tried that shop.
    flags = {flag: pd.array(joined[f"{PAIR_VIEW}__{flag}"], dtype="boolean").fillna(False)
             .to_numpy(dtype=bool).astype(np.float32) for flag in PAIR_FLAGS}
    return {"users": users, "shops": shops, "pair_flags": flags}
