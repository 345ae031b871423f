"""Input assembly: ``RankingFeatures`` (space + normaliser + source) and the model input dict.

``RankingFeatures`` is everything serving needs to turn (user, candidate shops, context) into
the exact ONNX/torch inputs (``make_inputs``; names in ``layout.INPUT_NAMES``).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from naviyam.ranking.features.columns import (
    _membership, _n, context_columns, frame_columns, profile_columns,
)
from naviyam.ranking.features.history import TableFeatureSource
from naviyam.ranking.features.layout import Columns
from naviyam.ranking.features.normaliser import Normaliser
from naviyam.ranking.features.sources import FeatureSource
from naviyam.ranking.features.space import FeatureSpace
from naviyam.ranking.features.wide import raw_wide_features
from naviyam.schemas import RequestContext, UserProfile


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
