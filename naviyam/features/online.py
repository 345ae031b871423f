"""``FeastFeatureSource``: the ranker's ``FeatureSource`` served from Feast's online store.

Drop-in for the saved snapshot at serving time::

    source = FeastFeatureSource.for_settings(settings)       # or FeastFeatureSource(store)
    ranker = OnnxRanker.load(model_dir, source=source)

``user_features`` / ``shop_features`` return exactly what ``TableFeatureSource`` returns for the
same state of the data: the columns ``USER_FEATURE_COLUMNS`` / ``SHOP_FEATURE_COLUMNS`` with the
snapshot's dtypes, rows in request order indexed by id, and for ids the store does not know the
rows ``DataFrame.reindex`` gives (NaN / NaT), which the ranker reads as "no history".

This module imports no ``feast`` itself: the store is handed in (or built by ``from_settings``).

``write_online_mirror`` reads every user's and shop's online features back through Feast right
after they are materialised and keeps them as a table (``online_mirror``): a process that ranks
without Feast (``naviyam chat``, whose cold start cannot pay Feast's import of torch) then ranks
with exactly the values the served graph reads, not the model's training-window snapshot.
Only ``naviyam.features.build_features`` materialises, and it writes the mirror in the same call.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from naviyam.features.export import SHOP_POPULARITY_COLUMNS, SHOP_PROFILE_COLUMNS, features_dir
from naviyam.features.store import PROFILE_ENV, feature_store, require_built
from naviyam.ranking.features import SHOP_FEATURE_COLUMNS, USER_FEATURE_COLUMNS, TableFeatureSource, frame_columns

if TYPE_CHECKING:  # pragma: no cover
    from feast import FeatureStore

    from naviyam.config import Settings

# Which feature view serves each ranker column (the rest of the views are not read here).
USER_VIEWS: dict[str, tuple[str, ...]] = {
    "user_profile": ("age",),
    "user_behaviour": tuple(c for c in USER_FEATURE_COLUMNS if c != "age"),
}
SHOP_VIEWS: dict[str, tuple[str, ...]] = {
    "shop_profile": SHOP_PROFILE_COLUMNS,
    "shop_popularity": SHOP_POPULARITY_COLUMNS,
}
# A row exists for every exported entity in these views: a null here means "unknown id".
USER_PRESENCE = ("user_behaviour", "n_views")
SHOP_PRESENCE = ("shop_popularity", "n_views")
MIRROR_DIR = "online_mirror"
# The ranker's snapshot holds age as float64 (FeatureHistory builds it so); the profile stores Int64.
DTYPE_OVERRIDES = {"age": np.dtype(np.float64)}

_FEAST_TO_NUMPY = {
    "Float32": np.dtype(np.float32), "Float64": np.dtype(np.float64), "Int32": np.dtype(np.int32),
    "Int64": np.dtype(np.int64), "Bool": np.dtype(bool), "String": np.dtype(object),
    "UnixTimestamp": np.dtype("datetime64[ns]"),
}


def numpy_dtype(feast_type: Any) -> np.dtype:
    """numpy dtype of a Feast field type (arrays and anything unlisted are object columns)."""
    return _FEAST_TO_NUMPY.get(str(feast_type), np.dtype(object))


def column_array(values: Sequence[Any], dtype: np.dtype) -> np.ndarray:
    """Feast values (Python scalars, None for null) as one column of the snapshot's dtype."""
    if dtype.kind == "M":
        values = list(values)
        if all(v is None or isinstance(v, datetime) for v in values):
            # What pd.to_datetime(..., utc=True).dt.tz_convert(None) gives (naive = UTC), without
            # two Series per column on every served turn.
            return np.array([None if v is None else v if v.tzinfo is None
                             else v.astimezone(timezone.utc).replace(tzinfo=None) for v in values],
                            dtype="datetime64[ns]")
        stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
        return stamps.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    if dtype.kind == "f":
        return np.array([np.nan if v is None else v for v in values], dtype=dtype)
    if dtype.kind in "iub":
        if any(v is None for v in values):  # only for rows of unknown ids, dropped by the caller
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        return np.array(values, dtype=dtype)
    out = np.empty(len(values), dtype=object)
    out[:] = [np.nan if v is None else v for v in values]  # null -> NaN, as the snapshot has it
    return out


class FeastFeatureSource:
    """User/shop feature lookups through ``FeatureStore.get_online_features``."""

    def __init__(self, store: "FeatureStore") -> None:
        self.store = store
        self._user_refs, self._user_dtypes = self._plan(USER_VIEWS)
        self._shop_refs, self._shop_dtypes = self._plan(SHOP_VIEWS)

    @classmethod
    def for_settings(cls, settings: "Settings", *, profile: str | None = None) -> "FeastFeatureSource":
        """The store of ``settings`` (profile: arg, ``$NAVIYAM_FEAST_PROFILE``, else "local").

        Raises ``FeaturesNotBuiltError`` when the local registry or online store is missing, so a
        caller can fall back to the model's snapshot instead of serving "no history" for all.
        """
        profile = profile or os.environ.get(PROFILE_ENV, "local")
        if profile == "local":
            require_built(settings, online=True)
        return cls(feature_store(settings, profile=profile))

    from_settings = for_settings

    def _plan(self, views: Mapping[str, Sequence[str]]) -> tuple[list[str], dict[str, np.dtype]]:
        """Feature references to request and the ranker dtype of every column, from the registry."""
        refs, dtypes = [], {}
        for view, columns in views.items():
            fields = {f.name: f.dtype for f in self.store.get_feature_view(view).features}
            missing = set(columns) - set(fields)
            if missing:
                raise ValueError(f"feature view {view} lacks {sorted(missing)}; re-apply the feature repo")
            for col in columns:
                refs.append(f"{view}:{col}")
                dtypes[col] = DTYPE_OVERRIDES.get(col, numpy_dtype(fields[col]))
        return refs, dtypes

    def _values(self, key: str, unique: list[str], refs: list[str]) -> dict[str, list]:
        """Feast's answer for ``unique`` ids: ``view__column`` -> values (None for null)."""
        if not unique:
            return {ref.replace(":", "__"): [] for ref in refs}
        return self.store.get_online_features(
            features=refs, entity_rows=[{key: i} for i in unique], full_feature_names=True,
        ).to_dict()

    def _lookup(self, key: str, ids: Sequence[str], refs: list[str], dtypes: Mapping[str, np.dtype],
                presence: tuple[str, str], columns: Sequence[str],
                values: dict[str, list] | None = None) -> pd.DataFrame:
        ids = [str(i) for i in ids]
        unique = list(dict.fromkeys(ids))
        values = self._values(key, unique, refs) if values is None else values
        known = np.array([v is not None for v in values["__".join(presence)]], dtype=bool)
        keep = np.flatnonzero(known)
        data = {}
        for ref in refs:
            view, col = ref.split(":")
            column = values[f"{view}__{col}"]
            data[col] = column_array([column[i] for i in keep], dtypes[col])
        index = pd.Index([unique[i] for i in keep], name=key, dtype=object)
        frame = pd.DataFrame(data, index=index).reindex(columns=list(columns))
        return frame.reindex(ids)  # request order, duplicates kept, unknown ids -> missing rows

    def user_columns(self, user_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """``frame_columns(user_features(user_ids))``, built without pandas when the store knows
        every id (a served turn's one child): the frame and its reindex were most of the lookup."""
        ids = [str(i) for i in user_ids]
        unique = list(dict.fromkeys(ids))
        values = self._values("user_id", unique, self._user_refs)
        if not unique or any(v is None for v in values["__".join(USER_PRESENCE)]):
            # Unknown ids take the frame path: its reindex is what defines their missing rows.
            return frame_columns(self._lookup("user_id", ids, self._user_refs, self._user_dtypes,
                                              USER_PRESENCE, USER_FEATURE_COLUMNS, values=values))
        at = {uid: k for k, uid in enumerate(unique)}
        order = [at[i] for i in ids]
        views = {ref.split(":")[1]: ref.replace(":", "__") for ref in self._user_refs}
        return {col: column_array([values[views[col]][k] for k in order], self._user_dtypes[col])
                for col in USER_FEATURE_COLUMNS}

    def user_features(self, user_ids: Sequence[str]) -> pd.DataFrame:
        return self._lookup("user_id", user_ids, self._user_refs, self._user_dtypes, USER_PRESENCE,
                            USER_FEATURE_COLUMNS)

    def shop_features(self, shop_ids: Sequence[str]) -> pd.DataFrame:
        return self._lookup("shop_id", shop_ids, self._shop_refs, self._shop_dtypes, SHOP_PRESENCE,
                            SHOP_FEATURE_COLUMNS)


def mirror_dir(settings: "Settings"):
    return features_dir(settings) / MIRROR_DIR


def write_online_mirror(settings: "Settings", source: FeastFeatureSource, user_ids: Sequence[str],
                        shop_ids: Sequence[str]) -> dict:
    """The online store's features of ``user_ids`` / ``shop_ids``, read through Feast, saved as a
    table next to the sources (unknown ids are left out, as the online store leaves them)."""
    users = source.user_features(list(user_ids)).dropna(how="all")
    shops = source.shop_features(list(shop_ids)).dropna(how="all")
    TableFeatureSource(users, shops).save(mirror_dir(settings))
    return {"users": len(users), "shops": len(shops), "path": str(mirror_dir(settings))}


def online_mirror(settings: "Settings") -> TableFeatureSource | None:
    """The mirror of the online store, or None where features were never materialised here."""
    directory = mirror_dir(settings)
    if not (directory / TableFeatureSource.USER_FILE).exists():
        return None
    return TableFeatureSource.load(directory)
