"""Hard constraints over the shop table.

One implementation shared by retrieval, the candidate funnels and the final safety net, so a
shop excluded in one place can never slip back in through another.
"""
from __future__ import annotations

import re

import numpy as np

from naviyam.data.catalog import Catalog
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


def shop_mask(catalog: Catalog, filters: SearchFilters, origin: tuple[float, float] | None = None,
              reach_km: float | None = None) -> np.ndarray:
    """Boolean mask aligned with ``catalog.shops`` rows: True where the shop meets every filter.

    ``reach_km`` (with ``origin``) bounds the mask to the caller's own reach as well (a funnel
    never proposes a shop beyond it). A distance limit is applied first, through the catalog's
    spatial index, and every other filter is evaluated only on the shops it leaves: the cost of
    a request follows the shops near the child, not the size of the catalog.
    """
    rows = candidate_rows(catalog, filters, origin, reach_km)
    mask = np.zeros(len(catalog.shops), dtype=bool)
    mask[rows[rows_mask(catalog, filters, rows)]] = True
    return mask


def candidate_rows(catalog: Catalog, filters: SearchFilters, origin: tuple[float, float] | None,
                   reach_km: float | None = None) -> np.ndarray:
    """Shop rows (ascending) inside the request's distance limit and ``reach_km``; all without."""
    limits = [km for km in (filters.max_distance_km, reach_km) if km is not None]
    if origin is None or not limits:
        return np.arange(len(catalog.shops))
    rows, _ = catalog.rows_within(origin[0], origin[1], min(limits))
    return rows


def rows_mask(catalog: Catalog, filters: SearchFilters, rows: np.ndarray) -> np.ndarray:
    """Every filter but the distance, for the shops at ``rows``: a mask aligned with ``rows``."""
    shops = catalog.shops
    mask = np.ones(len(rows), dtype=bool)
    if filters.category:
        mask &= shops["category"].to_numpy()[rows] == filters.category
    if filters.meal_card:
        mask &= shops["accepts_meal_card"].to_numpy(dtype=bool)[rows]
    if filters.exclude_shop_ids:
        mask &= ~np.isin(shops["shop_id"].to_numpy()[rows], filters.exclude_shop_ids)
    if filters.shop_name:
        names = shops["name"].to_numpy()[rows]
        mask &= np.fromiter((filters.shop_name in name for name in names), dtype=bool, count=len(names))
    if filters.open_at:
        mask &= open_mask(catalog.open_minutes[rows], catalog.close_minutes[rows], _minutes(filters.open_at))
    if filters.good_shop:
        mask &= shops["is_good_influence_shop"].to_numpy(dtype=bool)[rows]
    if filters.cheaper_than is not None:
        mask &= shops["min_price"].to_numpy()[rows] < filters.cheaper_than
    if filters.max_price is not None or filters.allergies or filters.menu_item or filters.avoid_words or filters.not_spicy:
        mask &= _menu_mask(catalog, filters, rows)
    for item in filters.menu_items:
        if item != filters.menu_item:   # each asked item on the menu ("짜장면" and "탕수육도")
            mask &= _menu_mask(catalog, SearchFilters(menu_item=item), rows)
    return mask


# Menus a child who "can't eat spicy" should not be shown (names carry it in the data).
SPICY_MENU = re.compile(r"매운|매콤|불닭|마라|짬뽕|떡볶이|라볶이|쫄면|제육|김치찌개|양념|닭강정|핫|고추|낙지|육개장|부대찌개")
MILD_MENU = re.compile(r"궁중|로제|짜장|크림|간장")


def is_spicy(name: str) -> bool:
    return bool(SPICY_MENU.search(name)) and not MILD_MENU.search(name)


def _avoided(name: str, filters: SearchFilters) -> bool:
    return any(word in name for word in filters.avoid_words) or (filters.not_spicy and is_spicy(name))


def _menu_mask(catalog: Catalog, filters: SearchFilters, rows: np.ndarray) -> np.ndarray:
    """A shop passes when at least one of its menus fits budget, allergies and the asked item."""
    menu_rows, owner = catalog.menu_rows(rows)
    ok = np.ones(len(menu_rows), dtype=bool)
    if filters.max_price is not None:
        ok &= catalog.menu_price[menu_rows] <= filters.max_price
    for allergen in filters.allergies:
        if allergen in catalog.menu_allergen_masks:
            ok &= ~catalog.menu_allergen_masks[allergen][menu_rows]
    names = catalog.menu_names
    if filters.menu_item:
        hit = np.fromiter((filters.menu_item in n for n in names), dtype=bool, count=len(names))
        ok &= hit[catalog.menu_name_code[menu_rows]]
    if filters.avoid_words or filters.not_spicy:
        avoided = np.fromiter((_avoided(n, filters) for n in names), dtype=bool, count=len(names))
        ok &= ~avoided[catalog.menu_name_code[menu_rows]]
    passes = np.zeros(len(rows), dtype=bool)
    passes[owner[ok]] = True
    return passes


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
