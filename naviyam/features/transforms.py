"""Request-time transformations of the feature repo's on-demand feature views.

They live here, not in ``feature_repo/``, so the definitions stay declarative and the
transformations reuse the ranker's own helpers (``haversine_km``, ``open_now``) instead of
re-implementing them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from naviyam.data.catalog import haversine_km
from naviyam.ranking.features import open_now
from naviyam.schemas import TimeSlot


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``name`` or its full feature name (``view__name``), whichever Feast passed."""
    if name in frame:
        return frame[name]
    for col in frame.columns:
        if col.endswith("__" + name):
            return frame[col]
    raise KeyError(name)


def _floats(frame: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(_column(frame, name), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def request_context(inputs: pd.DataFrame) -> pd.DataFrame:
    """The udf of the ``request_context`` on-demand feature view.

    Feast rebuilds a udf from its source text in a bare namespace (only ``pd``/``np``), so the
    body imports what it needs.
    """
    from naviyam.features.transforms import request_context_frame

    return request_context_frame(inputs)


def request_context_frame(inputs: pd.DataFrame) -> pd.DataFrame:
    """distance_km (request origin -> shop), open_now (at request_minute) and one flag per time slot."""
    distance = haversine_km(_floats(inputs, "origin_lat"), _floats(inputs, "origin_lon"),
                            _floats(inputs, "lat"), _floats(inputs, "lon"))
    is_open = open_now(_floats(inputs, "open_minute"), _floats(inputs, "close_minute"),
                       _floats(inputs, "request_minute"))
    slots = _column(inputs, "time_slot").astype(str).to_numpy()
    out = pd.DataFrame({"distance_km": distance, "open_now": is_open.astype(bool)}, index=inputs.index)
    for slot in TimeSlot:
        out[f"slot_{slot.value}"] = slots == slot.value
    return out
