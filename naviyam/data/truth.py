"""Hidden ground-truth preference model: what each child *really* likes.

The event simulator clicks and orders according to this utility, and evaluation scores
recommendations against it; no inference step may read it. It is deliberately personal
(per-user category affinities, low-rank taste vectors, walking tolerance, budget) with only a
modest global quality term, so a personalised ranker can clearly beat a popularity ranker.

Stored under ``data_dir/truth/``: ``users.parquet``, ``shops.parquet`` (per-entity parameters
plus the public features the utility needs, so scoring never has to open the catalog) and
``params.json`` (global coefficients, slot x category effects, intercept).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from naviyam import lexicon
from naviyam.data.catalog import haversine_km
from naviyam.schemas import CATEGORIES, TimeSlot

LATENT_DIM = 8
SLOTS: tuple[str, ...] = tuple(t.value for t in TimeSlot)
ALLERGENS: tuple[str, ...] = tuple(sorted({a for menus in lexicon.MENUS.values() for *_, al in menus.values()
                                           for a in al}))

# Time slot x category effect (children want 분식 after school, 치킨 at night, 한식 for lunch).
SLOT_CATEGORY: dict[str, dict[str, float]] = {
    "morning": {"치킨": -1.0, "피자": -1.0, "햄버거": -0.2, "분식": 0.2, "한식": 0.2, "중식": -0.6,
                "일식": -0.5, "양식": -0.6, "카페·디저트": 0.2, "베이커리": 0.8, "편의점": 0.8, "도시락": 0.3},
    "lunch": {"치킨": -0.3, "피자": 0.0, "햄버거": 0.2, "분식": 0.2, "한식": 0.7, "중식": 0.6,
              "일식": 0.3, "양식": 0.2, "카페·디저트": -0.4, "베이커리": -0.2, "편의점": 0.0, "도시락": 0.6},
    "after_school": {"치킨": 0.0, "피자": 0.0, "햄버거": 0.5, "분식": 0.8, "한식": -0.4, "중식": -0.3,
                     "일식": -0.2, "양식": -0.3, "카페·디저트": 0.7, "베이커리": 0.3, "편의점": 0.6, "도시락": -0.1},
    "dinner": {"치킨": 0.6, "피자": 0.6, "햄버거": 0.1, "분식": 0.0, "한식": 0.4, "중식": 0.3,
               "일식": 0.2, "양식": 0.2, "카페·디저트": -0.5, "베이커리": -0.5, "편의점": -0.2, "도시락": 0.2},
    "night": {"치킨": 1.0, "피자": 0.7, "햄버거": 0.2, "분식": 0.2, "한식": -0.5, "중식": -0.2,
              "일식": -0.5, "양식": -0.6, "카페·디저트": -0.5, "베이커리": -0.8, "편의점": 0.6, "도시락": -0.5},
}
WEIGHTS: dict[str, float] = {
    "affinity": 1.0,       # per-user category taste
    "latent": 1.0,         # per-user x per-shop low-rank taste
    "quality": 0.35,       # the only global shop term besides 착한가게 (kept modest on purpose)
    "good_influence": 0.25,
    "over_budget_per_1000": 0.5,   # cheapest menu above the per-meal allowance
    "avg_price_per_1000": 0.06,    # children prefer cheap shops in general
    "allergy_unsafe_share": 2.0,   # share of a shop's menus the child cannot eat
    "allergy_nothing_safe": 2.0,
    "slot": 1.0,
}


def _bitmask(names: Sequence[str]) -> int:
    return sum(1 << ALLERGENS.index(a) for a in names if a in ALLERGENS)


@dataclass
class TruthModel:
    users: pd.DataFrame   # one row per user, aligned with users.parquet
    shops: pd.DataFrame   # one row per shop, aligned with shops.parquet
    bias: float = 0.0     # intercept, calibrated by the simulator to the target click-through rate
    _cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------------ construction
    @classmethod
    def sample(cls, users: pd.DataFrame, schools: pd.DataFrame, shops: pd.DataFrame,
               menus: pd.DataFrame, affinity: np.ndarray, rng: np.random.Generator) -> "TruthModel":
        n_users, n_shops = len(users), len(shops)
        school_pos = schools.set_index("school_id")[["lat", "lon"]]
        user_pos = school_pos.loc[users["school_id"]].to_numpy()
        # Younger children walk less far.
        dist_sens = rng.lognormal(0.0, 0.35, n_users) * np.where(users["age"].to_numpy() <= 11, 1.3, 1.0)
        tu = pd.DataFrame({
            "user_id": users["user_id"].to_numpy(),
            "lat": user_pos[:, 0], "lon": user_pos[:, 1],
            "allowance": users["per_meal_allowance"].to_numpy(),
            "has_card": users["has_meal_card"].to_numpy(dtype=bool),
            "allergy_mask": np.array([_bitmask(a) for a in users["allergies"]], dtype=np.int64),
            "dist_sens": dist_sens,
            "price_sens": rng.lognormal(0.0, 0.4, n_users),
            "card_need": rng.uniform(0.8, 2.0, n_users),
        })
        latent_u = rng.normal(0, 1 / np.sqrt(LATENT_DIM), (n_users, LATENT_DIM))
        tu = pd.concat([tu, _wide(affinity, "aff_"), _wide(latent_u, "taste_")], axis=1)

        cat_idx = shops["category"].map({c: i for i, c in enumerate(CATEGORIES)}).to_numpy()
        # Shops of one category share part of their taste vector, so taste transfers within it.
        cat_vec = rng.normal(0, 1, (len(CATEGORIES), LATENT_DIM))
        latent_s = 0.6 * cat_vec[cat_idx] + 0.8 * rng.normal(0, 1, (n_shops, LATENT_DIM))
        masks = menus.groupby("shop_id", sort=False)["allergens"].agg(lambda s: [_bitmask(a) for a in s])
        ts = pd.DataFrame({
            "shop_id": shops["shop_id"].to_numpy(),
            "lat": shops["lat"].to_numpy(), "lon": shops["lon"].to_numpy(),
            "category_idx": cat_idx.astype(np.int64),
            "min_price": shops["min_price"].to_numpy(), "avg_price": shops["avg_price"].to_numpy(),
            "accepts_card": shops["accepts_meal_card"].to_numpy(dtype=bool),
            "good": shops["is_good_influence_shop"].to_numpy(dtype=bool),
            "quality": rng.normal(0, 1, n_shops),
            "menu_masks": masks.reindex(shops["shop_id"]).to_list(),
        })
        ts = pd.concat([ts, _wide(latent_s, "vec_")], axis=1)
        return cls(users=tu, shops=ts)

    def with_bias(self, bias: float) -> "TruthModel":
        return replace(self, bias=float(bias), _cache={})

    def shop_ratings(self, rng: np.random.Generator) -> np.ndarray:
        """Public 3.0-5.0 star rating: a noisy view of the hidden quality."""
        raw = 4.0 + 0.4 * self.shops["quality"].to_numpy() + rng.normal(0, 0.2, len(self.shops))
        return np.clip(np.round(raw, 1), 3.0, 5.0)

    # ----------------------------------------------------------------------------- scoring
    def utility(self, user_idx: np.ndarray, shop_idx: np.ndarray, slot_idx: np.ndarray | int) -> np.ndarray:
        """Elementwise utility (logit of a click at the top position) for row-aligned index arrays."""
        a = self._arrays()
        u, s = np.asarray(user_idx), np.asarray(shop_idx)
        slot = np.broadcast_to(np.asarray(slot_idx), u.shape)
        cat = a["category_idx"][s]
        w = WEIGHTS
        score = w["affinity"] * a["aff"][u, cat]
        score += w["latent"] * np.einsum("ij,ij->i", a["taste_"][u], a["vec_"][s])
        score -= a["dist_sens"][u] * haversine_km(a["u_lat"][u], a["u_lon"][u], a["s_lat"][s], a["s_lon"][s])
        over = np.maximum(a["min_price"][s] - a["allowance"][u], 0) / 1000.0
        score -= a["price_sens"][u] * (w["over_budget_per_1000"] * over + w["avg_price_per_1000"] * a["avg_price"][s] / 1000.0)
        score -= a["card_need"][u] * (a["has_card"][u] & ~a["accepts_card"][s])
        score += w["slot"] * a["slot_category"][slot, cat]
        score += w["quality"] * a["quality"][s] + w["good_influence"] * a["good"][s]
        unsafe_share, nothing_safe = self._allergy_conflict(a, u, s)
        score -= w["allergy_unsafe_share"] * unsafe_share + w["allergy_nothing_safe"] * nothing_safe
        return score + self.bias

    @staticmethod
    def _allergy_conflict(a: dict, u: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        user_mask = a["allergy_mask"][u]
        menu = a["menu_mask"][s]                 # (n, max_menus), -1 pads missing menus
        valid = menu >= 0
        unsafe = valid & ((menu & user_mask[:, None]) != 0)
        n_unsafe, n_valid = unsafe.sum(axis=1), np.maximum(valid.sum(axis=1), 1)
        return n_unsafe / n_valid, (n_unsafe == valid.sum(axis=1)) & (user_mask != 0)

    def scores(self, user_ids: Sequence[str], shop_ids: Sequence[str], time_slot: str) -> np.ndarray:
        a = self._arrays()
        try:
            u = np.array([a["user_index"][x] for x in user_ids], dtype=np.int64)
            s = np.array([a["shop_index"][x] for x in shop_ids], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"unknown id in truth model: {exc.args[0]}") from None
        if len(u) != len(s):
            raise ValueError(f"user_ids ({len(u)}) and shop_ids ({len(s)}) must pair up elementwise")
        return self.utility(u, s, SLOTS.index(TimeSlot(time_slot).value))

    def _arrays(self) -> dict:
        """Numpy views of the parameter tables, built once per model."""
        if self._cache:
            return self._cache
        tu, ts = self.users, self.shops
        masks = ts["menu_masks"].to_list()
        width = max((len(m) for m in masks), default=1)
        menu_mask = np.full((len(ts), width), -1, dtype=np.int64)
        for i, m in enumerate(masks):
            menu_mask[i, : len(m)] = m
        self._cache.update({
            "user_index": {x: i for i, x in enumerate(tu["user_id"])},
            "shop_index": {x: i for i, x in enumerate(ts["shop_id"])},
            "u_lat": tu["lat"].to_numpy(), "u_lon": tu["lon"].to_numpy(),
            "s_lat": ts["lat"].to_numpy(), "s_lon": ts["lon"].to_numpy(),
            "aff": _narrow(tu, "aff_"), "taste_": _narrow(tu, "taste_"), "vec_": _narrow(ts, "vec_"),
            "menu_mask": menu_mask,
            "slot_category": np.array([[SLOT_CATEGORY[t][c] for c in CATEGORIES] for t in SLOTS]),
            **{k: tu[k].to_numpy() for k in ("allowance", "has_card", "allergy_mask", "dist_sens",
                                             "price_sens", "card_need")},
            **{k: ts[k].to_numpy() for k in ("category_idx", "min_price", "avg_price", "accepts_card",
                                             "good", "quality")},
        })
        return self._cache

    # ------------------------------------------------------------------------- persistence
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.users.to_parquet(directory / "users.parquet", index=False)
        self.shops.to_parquet(directory / "shops.parquet", index=False)
        params = {"bias": self.bias, "weights": WEIGHTS, "slot_category": SLOT_CATEGORY,
                  "categories": list(CATEGORIES), "slots": list(SLOTS), "allergens": list(ALLERGENS),
                  "latent_dim": LATENT_DIM}
        (directory / "params.json").write_text(json.dumps(params, ensure_ascii=False, indent=1, sort_keys=True),
                                               encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "TruthModel":
        directory = Path(directory)
        params = json.loads((directory / "params.json").read_text(encoding="utf-8"))
        if params["categories"] != list(CATEGORIES) or params["allergens"] != list(ALLERGENS):
            raise ValueError(f"truth model in {directory} was built with another lexicon; rebuild the data")
        shops = pd.read_parquet(directory / "shops.parquet")
        shops["menu_masks"] = shops["menu_masks"].map(list)
        return cls(users=pd.read_parquet(directory / "users.parquet"), shops=shops, bias=params["bias"])


def _wide(matrix: np.ndarray, prefix: str) -> pd.DataFrame:
    return pd.DataFrame(matrix, columns=[f"{prefix}{j:02d}" for j in range(matrix.shape[1])])


def _narrow(frame: pd.DataFrame, prefix: str) -> np.ndarray:
    return frame[[c for c in frame.columns if c.startswith(prefix)]].to_numpy(dtype=float)
