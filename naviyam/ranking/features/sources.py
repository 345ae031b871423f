"""``FeatureSource``: where per-user and per-shop behavioural features come from.

The local ``TableFeatureSource`` (in ``history``, next to the ``FeatureHistory`` that builds
it) is a snapshot computed from the training window; the Feast-backed source
(``naviyam.features.online``) implements the same two lookups. ``_ColumnTable`` is the fast
positional row take the table source uses.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd


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
