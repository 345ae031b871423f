"""``FeatureSpace``: id vocabularies (user, shop, category -> embedding row).

Row 0 of every vocabulary is "unknown" (a new user, a shop added after training).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from naviyam.schemas import CATEGORIES


@dataclass(frozen=True)
class FeatureSpace:
    """Id vocabularies; index 0 of each is reserved for unknown ids."""

    users: tuple[str, ...]
    shops: tuple[str, ...]
    categories: tuple[str, ...] = CATEGORIES
    _user_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _shop_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _category_index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, ids in (("_user_index", self.users), ("_shop_index", self.shops),
                          ("_category_index", self.categories)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate ids in {name[1:]}")
            object.__setattr__(self, name, {v: i + 1 for i, v in enumerate(ids)})

    @classmethod
    def fit(cls, events: pd.DataFrame) -> "FeatureSpace":
        """Vocabulary of the ids seen in the training events.

        An id never seen in training would get an untrained (random) embedding row, so it is
        left out and falls back to row 0, which training teaches to mean "an average user/shop".
        """
        return cls(users=tuple(sorted(events["user_id"].unique())),
                   shops=tuple(sorted(events["shop_id"].unique())))

    def extend(self, events: pd.DataFrame) -> "FeatureSpace":
        """Keeps every existing index (so a checkpoint's embedding rows stay valid), appends new ids."""
        new_u = sorted(set(events["user_id"].unique()) - set(self.users))
        new_s = sorted(set(events["shop_id"].unique()) - set(self.shops))
        return FeatureSpace(users=self.users + tuple(new_u), shops=self.shops + tuple(new_s),
                            categories=self.categories)

    @property
    def n_users(self) -> int:
        return len(self.users) + 1

    @property
    def n_shops(self) -> int:
        return len(self.shops) + 1

    @property
    def n_categories(self) -> int:
        return len(self.categories) + 1

    def has_user(self, user_id: str) -> bool:
        return user_id in self._user_index

    def user_index(self, ids: Sequence[str]) -> np.ndarray:
        return _lookup(self._user_index, ids)

    def shop_index(self, ids: Sequence[str]) -> np.ndarray:
        return _lookup(self._shop_index, ids)

    def category_index(self, names: Sequence[str]) -> np.ndarray:
        return _lookup(self._category_index, names)

    def to_dict(self) -> dict:
        return {"users": list(self.users), "shops": list(self.shops), "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, raw: Mapping) -> "FeatureSpace":
        return cls(users=tuple(raw["users"]), shops=tuple(raw["shops"]), categories=tuple(raw["categories"]))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "FeatureSpace":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _lookup(index: Mapping[str, int], ids: Sequence[str]) -> np.ndarray:
    get = index.get
    return np.fromiter((get(i, 0) for i in ids), dtype=np.int64, count=len(ids))
