"""Read-only, in-memory view of the generated data set, shared by every inference step.

Parquet tables under ``Settings.data_dir`` (written by ``naviyam.data.generate``):

- ``schools.parquet``  school_id, name, level (초/중/고), district, address, lat, lon
- ``shops.parquet``    shop_id, name, category, school_id, address, district, lat, lon,
                       open_time "HH:MM", close_time "HH:MM", phone, accepts_meal_card,
                       is_good_influence_shop, rating, view_count, order_count, min_price, avg_price
- ``menus.parquet``    menu_id, shop_id, name, price (won), allergens (list<str>), is_signature
- ``users.parquet``    user_id, age, school_id, preferred_categories (list<str>),
                       allergies (list<str>), has_meal_card, meal_card_name, meal_card_balance,
                       per_meal_allowance, created_at
- ``events.parquet``   event_id, user_id, shop_id, event_type (view|click|order|favorite|rating),
                       timestamp, session_id, position (rank shown, 0-based), time_slot,
                       rating (float, rating events), order_amount (int, order events)
- ``truth/``           hidden ground-truth preference parameters; only evaluation reads them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from naviyam.data.spatial import PointIndex, haversine_km
from naviyam.schemas import MenuItem, Shop, UserProfile

__all__ = ["WALK_METERS_PER_MINUTE", "Catalog", "DataNotBuiltError", "concat_ranges", "haversine_km", "walk_minutes"]

WALK_METERS_PER_MINUTE = 67  # ~4 km/h, a child's walking pace


def walk_minutes(distance_km: float) -> int:
    return max(1, math.ceil(distance_km * 1000 / WALK_METERS_PER_MINUTE))


def concat_ranges(start: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``start[i] .. start[i] + count[i] - 1`` for every i, concatenated; the i each came from)."""
    which = np.repeat(np.arange(len(count)), count)
    # Offset of each position inside its own run, so every run counts from its own start.
    offset = np.arange(int(np.sum(count))) - np.repeat(np.cumsum(count) - count, count)
    return np.repeat(start, count) + offset, which


class DataNotBuiltError(RuntimeError):
    pass


@dataclass
class Catalog:
    schools: pd.DataFrame
    shops: pd.DataFrame
    menus: pd.DataFrame
    users: pd.DataFrame
    # Precomputed once so hard filters are vectorised per request (see naviyam.filtering).
    menu_allergen_masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    open_minutes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32), repr=False)
    close_minutes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32), repr=False)
    # Menu rows grouped by shop: rows ``_menu_order[_menu_start[g]:_menu_start[g + 1]]`` are the
    # menus of group ``g`` (in table order); ``_menu_group_of_row`` maps a shop row to its group
    # (-1: no menus). MenuItem objects are made on request: a national catalog has millions of
    # menus, and a Python object per menu in every process would be most of its memory.
    _menu_order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    _menu_start: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64), repr=False)
    _menu_group: dict[str, int] = field(default_factory=dict, repr=False)
    _menu_group_of_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    # Menu names repeat (a few hundred distinct ones): text tests run once per distinct name.
    menu_names: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object), repr=False)
    menu_name_code: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    menu_price: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    # Views of the menus table's columns (no copies), read by row number per request.
    _menu_columns: tuple[np.ndarray, ...] = field(default=(), repr=False)
    spatial: PointIndex | None = field(default=None, repr=False)
    _rows: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, data_dir: Path) -> "Catalog":
        data_dir = Path(data_dir)
        missing = [t for t in ("schools", "shops", "menus", "users") if not (data_dir / f"{t}.parquet").exists()]
        if missing:
            raise DataNotBuiltError(
                f"data set not found in {data_dir} (missing {', '.join(missing)}); run `naviyam data build`"
            )
        read = lambda name: pd.read_parquet(data_dir / f"{name}.parquet")  # noqa: E731
        return cls(
            schools=read("schools").set_index("school_id", drop=False),
            shops=read("shops").set_index("shop_id", drop=False),
            menus=read("menus"),
            users=read("users").set_index("user_id", drop=False),
        )

    def __post_init__(self) -> None:
        self._reindex()

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        # Derived indexes follow the tables: a catalog whose shops or menus are replaced (tests
        # reorder them) must not answer from the old rows.
        if name in ("shops", "menus") and "spatial" in self.__dict__ and self.spatial is not None:
            self._reindex()

    def _reindex(self) -> None:
        self._index_menus()
        self._rows = {}
        self.spatial = PointIndex(self.shops["lat"].to_numpy(dtype=np.float64),
                                  self.shops["lon"].to_numpy(dtype=np.float64))

    def _index_menus(self) -> None:
        group_code, groups = pd.factorize(self.menus["shop_id"])
        self._menu_order = np.argsort(group_code, kind="stable")
        self._menu_start = np.searchsorted(group_code[self._menu_order], np.arange(len(groups) + 1))
        self._menu_group = {str(sid): g for g, sid in enumerate(groups)}
        self._menu_group_of_row = pd.Index(groups).get_indexer(self.shops["shop_id"].to_numpy()).astype(np.int64)
        self.menu_name_code, self.menu_names = pd.factorize(self.menus["name"])
        self.menu_names = np.asarray(self.menu_names, dtype=object)
        self.menu_price = self.menus["price"].to_numpy()
        self._menu_columns = tuple(self.menus[c].to_numpy() for c in ("name", "allergens", "is_signature"))
        allergens = [set(a) for a in self.menus["allergens"]]
        names = sorted(set().union(*allergens)) if allergens else []
        self.menu_allergen_masks = {n: np.array([n in a for a in allergens], dtype=bool) for n in names}
        to_min = lambda col: np.array([int(t[:2]) * 60 + int(t[3:5]) for t in self.shops[col]], dtype=np.int32)  # noqa: E731
        self.open_minutes, self.close_minutes = to_min("open_time"), to_min("close_time")

    def row_of(self, shop_id: str) -> int:
        """Position of a shop in ``shops`` (masks from naviyam.filtering are row-aligned)."""
        if len(self._rows) != len(self.shops):
            self._rows = {sid: i for i, sid in enumerate(self.shops["shop_id"].to_numpy())}
        return self._rows[shop_id]

    def rows_within(self, lat: float, lon: float, km: float) -> tuple[np.ndarray, np.ndarray]:
        """(``shops`` rows, ascending, and their distance in km) of the shops at most ``km`` from
        the point: a ball query on the spatial index, so the cost follows the shops nearby."""
        assert self.spatial is not None  # set in __post_init__
        return self.spatial.within(lat, lon, km)

    def menu_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``menus`` rows of the shops at ``rows``, the position in ``rows`` each belongs to)."""
        groups = self._menu_group_of_row[np.asarray(rows, dtype=np.int64)]
        has = groups >= 0
        start = np.where(has, self._menu_start[np.maximum(groups, 0)], 0)
        count = np.where(has, self._menu_start[np.maximum(groups, 0) + 1] - start, 0)
        positions, owner = concat_ranges(start, count)
        return self._menu_order[positions], owner

    def has_shop(self, shop_id: str) -> bool:
        return shop_id in self.shops.index

    def shop(self, shop_id: str) -> Shop:
        row = self.shops.loc[shop_id]
        return Shop(
            shop_id=row.shop_id, name=row["name"], category=row.category, school_id=row.school_id,
            address=row.address, lat=float(row.lat), lon=float(row.lon), open_time=row.open_time,
            close_time=row.close_time, phone=row.phone, accepts_meal_card=bool(row.accepts_meal_card),
            is_good_influence_shop=bool(row.is_good_influence_shop), rating=float(row.rating),
            view_count=int(row.view_count), order_count=int(row.order_count),
            min_price=int(row.min_price), avg_price=int(row.avg_price), menus=self.menus_of(shop_id),
        )

    def menus_of(self, shop_id: str) -> list[MenuItem]:
        group = self._menu_group.get(shop_id)
        if group is None:
            return []
        rows = self._menu_order[self._menu_start[group]:self._menu_start[group + 1]]
        names, allergens, signature = self._menu_columns
        return [MenuItem(name=names[i], price=int(self.menu_price[i]), allergens=list(allergens[i]),
                         is_signature=bool(signature[i])) for i in rows]

    def user(self, user_id: str) -> UserProfile | None:
        """The stored profile, or None for a user we have never seen."""
        if user_id not in self.users.index:
            return None
        row = self.users.loc[user_id]
        return UserProfile(
            user_id=user_id, age=int(row.age), school_id=row.school_id,
            preferred_categories=list(row.preferred_categories), allergies=list(row.allergies),
            has_meal_card=bool(row.has_meal_card), meal_card_name=row.meal_card_name,
            meal_card_balance=int(row.meal_card_balance), per_meal_allowance=int(row.per_meal_allowance),
        )

    def school_location(self, school_id: str) -> tuple[float, float]:
        row = self.schools.loc[school_id]
        return float(row.lat), float(row.lon)
