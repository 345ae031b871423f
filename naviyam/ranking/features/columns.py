"""Inputs as columns: profiles, request contexts and looked-up frames -> column name -> array.

Also the small column helpers the wide builder and the assembly share: broadcasting a
one-row column over the candidates (``_n``), numeric/flag coercion and list membership.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from naviyam.ranking.features.layout import CONTEXT_COLUMNS, PROFILE_COLUMNS, Columns
from naviyam.schemas import RequestContext, TimeSlot, UserProfile


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
