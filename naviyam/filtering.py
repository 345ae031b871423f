"""Hard constraints over the shop table.

One implementation shared by retrieval, the candidate funnels and the final safety net, so a
shop excluded in one place can never slip back in through another.
"""
from __future__ import annotations

import re

import numpy as np

from naviyam.data.catalog import Catalog, haversine_km
from naviyam.schemas import SearchFilters


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def is_open(open_time: str, close_time: str, at: str) -> bool:
    """Opening hours may pass midnight (e.g. 17:00-02:00)."""
    o, c, t = _minutes(open_time), _minutes(close_time), _minutes(at)
    if o <= c:
        return o <= t < c
    return t >= o or t < c


def open_mask(open_min: np.ndarray, close_min: np.ndarray, at_min: int) -> np.ndarray:
    """Vectorised ``is_open`` over all shops."""
    same_day = open_min <= close_min
    return np.where(same_day, (open_min <= at_min) & (at_min < close_min), (at_min >= open_min) | (at_min < close_min))


def shop_mask(catalog: Catalog, filters: SearchFilters, origin: tuple[float, float] | None = None) -> np.ndarray:
    """Boolean mask aligned with ``catalog.shops`` rows: True where the shop meets every filter."""
    shops = catalog.shops
    mask = np.ones(len(shops), dtype=bool)
    if filters.category:
        mask &= (shops["category"] == filters.category).to_numpy()
    if filters.meal_card:
        mask &= shops["accepts_meal_card"].to_numpy(dtype=bool)
    if filters.exclude_shop_ids:
        mask &= ~shops["shop_id"].isin(filters.exclude_shop_ids).to_numpy()
    if filters.shop_name:
        mask &= shops["name"].str.contains(filters.shop_name, regex=False).to_numpy()
    if filters.max_distance_km is not None and origin is not None:
        dist = haversine_km(origin[0], origin[1], shops["lat"].to_numpy(), shops["lon"].to_numpy())
        mask &= dist <= filters.max_distance_km
    if filters.open_at:
        mask &= open_mask(catalog.open_minutes, catalog.close_minutes, _minutes(filters.open_at))
    if filters.good_shop:
        mask &= shops["is_good_influence_shop"].to_numpy(dtype=bool)
    if filters.cheaper_than is not None:
        mask &= (shops["min_price"] < filters.cheaper_than).to_numpy()
    if filters.max_price is not None or filters.allergies or filters.menu_item or filters.avoid_words or filters.not_spicy:
        mask &= _menu_mask(catalog, filters)
    for item in filters.menu_items:
        if item != filters.menu_item:   # each asked item on the menu ("짜장면" and "탕수육도")
            mask &= _menu_mask(catalog, SearchFilters(menu_item=item))
    return mask


# Menus a child who "can't eat spicy" should not be shown (names carry it in the data).
SPICY_MENU = re.compile(r"매운|매콤|불닭|마라|짬뽕|떡볶이|라볶이|쫄면|제육|김치찌개|양념|닭강정|핫|고추|낙지|육개장|부대찌개")
MILD_MENU = re.compile(r"궁중|로제|짜장|크림|간장")


def is_spicy(name: str) -> bool:
    return bool(SPICY_MENU.search(name)) and not MILD_MENU.search(name)


def _avoided(name: str, filters: SearchFilters) -> bool:
    return any(word in name for word in filters.avoid_words) or (filters.not_spicy and is_spicy(name))


def _menu_mask(catalog: Catalog, filters: SearchFilters) -> np.ndarray:
    """A shop passes when at least one of its menus fits budget, allergies and the asked item."""
    menus = catalog.menus
    ok = np.ones(len(menus), dtype=bool)
    if filters.max_price is not None:
        ok &= (menus["price"] <= filters.max_price).to_numpy()
    for allergen in filters.allergies:
        if allergen in catalog.menu_allergen_masks:
            ok &= ~catalog.menu_allergen_masks[allergen]
    if filters.menu_item:
        ok &= menus["name"].str.contains(filters.menu_item, regex=False).to_numpy()
    if filters.avoid_words or filters.not_spicy:
        ok &= ~menus["name"].map(lambda n: _avoided(n, filters)).to_numpy(dtype=bool)
    good_shops = set(menus.loc[ok, "shop_id"])
    return catalog.shops["shop_id"].isin(good_shops).to_numpy()


def allowed_menus(catalog: Catalog, shop_id: str, filters: SearchFilters):
    """Menus of one shop that respect budget and allergies (what an answer may show)."""
    out = []
    banned = set(filters.allergies)
    for item in catalog.menus_of(shop_id):
        if filters.max_price is not None and item.price > filters.max_price:
            continue
        if banned.intersection(item.allergens) or _avoided(item.name, filters):
            continue
        out.append(item)
    return out
