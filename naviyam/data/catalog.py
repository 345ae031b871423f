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

from naviyam.schemas import MenuItem, Shop, UserProfile

WALK_METERS_PER_MINUTE = 67  # ~4 km/h, a child's walking pace


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km; works on scalars and numpy arrays."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 6371.0 * 2 * np.arcsin(np.sqrt(a))


def walk_minutes(distance_km: float) -> int:
    return max(1, math.ceil(distance_km * 1000 / WALK_METERS_PER_MINUTE))


class DataNotBuiltError(RuntimeError):
    pass


@dataclass
class Catalog:
    schools: pd.DataFrame
    shops: pd.DataFrame
    menus: pd.DataFrame
    users: pd.DataFrame
    _menus_by_shop: dict[str, list[MenuItem]] = field(default_factory=dict, repr=False)
    # Precomputed once so hard filters are vectorised per request (see naviyam.filtering).
    menu_allergen_masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    open_minutes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32), repr=False)
    close_minutes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32), repr=False)
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
        self._index_menus()

    def _index_menus(self) -> None:
        by_shop: dict[str, list[MenuItem]] = {}
        for row in self.menus.itertuples(index=False):
            by_shop.setdefault(row.shop_id, []).append(
                MenuItem(name=row.name, price=int(row.price), allergens=list(row.allergens),
                         is_signature=bool(row.is_signature))
            )
        self._menus_by_shop = by_shop
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
        return list(self._menus_by_shop.get(shop_id, []))

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
