"""``CachedFeatureSource``: a ``FeatureSource`` whose rows are kept in memory for a bounded time.

Serving ranks ~25-100 candidate shops per turn for one child; reading those rows from an online
store (Feast's SQLite or Redis) on every turn cost more CPU than the rest of step 6. Both kinds of
row change only when a batch materialisation writes the store (profile data, popularity counts, a
child's engagement history), so a row read less than ``FEATURE_TTL_S`` seconds ago is served from
memory: a served feature, shop or user, is at most ``FEATURE_TTL_S`` seconds older than the store.
A child's turns come seconds apart, so a conversation reads its user row about once a minute.

Rows are refreshed per shop: a turn reads from the store only the shops it has not seen within
the bound, in one batch, and the columns come back with positional takes (no pandas per turn).
``prefill`` reads a catalogue's shops in one batch when the served model starts (2,400 shops:
~0.9 s from Feast's SQLite store), so the first minute of turns reads no shop rows at all; the
bound is the same for prefilled rows.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from naviyam.ranking.features.columns import frame_columns
from naviyam.ranking.features.layout import SHOP_FEATURE_COLUMNS
from naviyam.ranking.features.sources import FeatureSource

# Staleness bound of a served feature (seconds). Materialisation runs in batch (hours apart), so a
# minute is invisible to the ranker, and it keeps a promoted feature refresh live within it.
FEATURE_TTL_S = 60.0
# More distinct shops than any catalogue holds means ids that are not shops: start afresh.
MAX_CACHED_SHOPS = 100_000
# Children active within one bound, with room (a row is ~33 one-element arrays, ~5 KB).
MAX_CACHED_USERS = 50_000
# Shops read at load by ``prefill`` (~3.5 s from SQLite); a bigger catalogue fills the rest by use.
PREFILL_MAX_SHOPS = 10_000


def _column(values: np.ndarray) -> np.ndarray:
    # ints/bools cannot hold the NaN of an unknown shop's row; the wide builder reads floats alike.
    values = np.asarray(values)
    return values.astype(np.float64) if values.dtype.kind in "iub" else values


class CachedFeatureSource:
    """Wraps ``source``: user and shop rows are served from memory while younger than ``ttl_s``
    and read again, in one batch per turn, when older or never seen."""

    def __init__(self, source: FeatureSource, ttl_s: float = FEATURE_TTL_S,
                 clock: Callable[[], float] = time.monotonic, max_shops: int = MAX_CACHED_SHOPS,
                 max_users: int = MAX_CACHED_USERS) -> None:
        self.source = source
        self.ttl_s = ttl_s
        self._clock = clock
        self._max = max_shops
        self._max_users = max_users
        self._lock = threading.Lock()  # build_inputs runs in worker threads, a few turns at once
        self._reset()
        # user id -> (read at, its one-row read-only columns)
        self._users: dict[str, tuple[float, dict[str, np.ndarray]]] = {}

    def _reset(self) -> None:
        self._pos: dict[str, int] = {}
        self._read_at = np.zeros(0, dtype=np.float64)
        self._cols: dict[str, np.ndarray] = {}

    # -- FeatureSource -------------------------------------------------------------------
    def user_features(self, user_ids: Sequence[str]) -> pd.DataFrame:
        cols = self.user_columns(user_ids)
        return pd.DataFrame(cols, index=pd.Index([str(i) for i in user_ids], name="user_id"),
                            columns=list(cols))

    def shop_features(self, shop_ids: Sequence[str]) -> pd.DataFrame:
        cols = self.shop_columns(shop_ids)
        return pd.DataFrame(cols, index=pd.Index([str(i) for i in shop_ids], name="shop_id"),
                            columns=list(SHOP_FEATURE_COLUMNS))

    # -- the fast paths RankingFeatures uses ---------------------------------------------------
    def user_columns(self, user_ids: Sequence[str]) -> dict[str, np.ndarray]:
        ids = [str(i) for i in user_ids]
        with self._lock:
            now = self._clock()
            stale = list(dict.fromkeys(i for i in ids if now - self._users.get(i, (-np.inf,))[0] >= self.ttl_s))
            if stale:
                self._read_users(stale, now)
            rows = [self._users[i][1] for i in ids]
        if len(rows) == 1:
            return rows[0]  # read-only arrays: a caller cannot change what the next turn is served
        if not rows:
            return self._read_columns([])
        return {col: np.concatenate([row[col] for row in rows]) for col in rows[0]}

    def _read_columns(self, ids: list[str]) -> dict[str, np.ndarray]:
        fast = getattr(self.source, "user_columns", None)
        return fast(ids) if fast is not None else frame_columns(self.source.user_features(ids))

    def _read_users(self, ids: list[str], now: float) -> None:
        cols = self._read_columns(ids)
        if len(self._users) + len(ids) > self._max_users:
            self._users = {}
        for k, uid in enumerate(ids):
            row = {col: values[k:k + 1].copy() for col, values in cols.items()}
            for values in row.values():
                values.setflags(write=False)
            self._users[uid] = (now, row)

    def shop_columns(self, shop_ids: Sequence[str]) -> dict[str, np.ndarray]:
        ids = [str(i) for i in shop_ids]
        with self._lock:
            now = self._clock()
            rows = self._rows(ids)
            fresh = rows >= 0
            fresh[fresh] = now - self._read_at[rows[fresh]] < self.ttl_s
            if not fresh.all() or not self._cols:
                self._refresh(list(dict.fromkeys(i for i, ok in zip(ids, fresh) if not ok)), now)
                rows = self._rows(ids)
            return {col: values[rows] for col, values in self._cols.items()}

    def prefill(self, shop_ids: Sequence[str], limit: int = PREFILL_MAX_SHOPS) -> int:
        """Reads the first ``limit`` (and at most ``max_shops``) of ``shop_ids`` in one batch;
        returns how many shops are cached."""
        ids = list(dict.fromkeys(str(i) for i in shop_ids))[: min(limit, self._max)]
        if ids:
            with self._lock:
                self._refresh(ids, self._clock())
        return len(self._pos)

    def _rows(self, ids: list[str]) -> np.ndarray:
        get = self._pos.get
        return np.fromiter((get(i, -1) for i in ids), dtype=np.int64, count=len(ids))

    def _refresh(self, ids: list[str], now: float) -> None:
        """Reads ``ids`` from the store: known rows are overwritten in place, new ones appended."""
        frame = self.source.shop_features(ids).reindex(columns=list(SHOP_FEATURE_COLUMNS))
        read = {col: _column(frame[col].to_numpy()) for col in SHOP_FEATURE_COLUMNS}
        if len(self._pos) + len(ids) > self._max:
            self._reset()
        new = [i for i in ids if i not in self._pos]
        old = np.fromiter((self._pos.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        at_old = old >= 0
        if not self._cols:
            self._cols = {col: values[:0].copy() for col, values in read.items()}
        for col, values in read.items():
            current = self._cols[col]
            if current.dtype != values.dtype:  # e.g. a column first seen whole-int, now with a NaN row
                objects = "O" in (current.dtype.kind, values.dtype.kind)
                current = current.astype(object if objects else np.result_type(current, values))
            current[old[at_old]] = values[at_old]
            self._cols[col] = np.concatenate([current, values[~at_old].astype(current.dtype)])
        start = len(self._read_at)
        self._pos.update({sid: start + k for k, sid in enumerate(new)})
        read_at = np.concatenate([self._read_at, np.full(len(new), now)])
        read_at[old[at_old]] = now
        self._read_at = read_at

