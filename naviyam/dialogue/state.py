"""The frame of one conversation: everything the child has asked for or told us so far.

Stored with conversation memory after every turn and updated by the next turn's act
(``naviyam.dialogue.policy``), so "급식카드 되는 데만" narrows the chicken search instead of
starting a new one, and "우유 알레르기 있어" holds until the conversation ends.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from naviyam.bounds import CATEGORIES, MAX_BUDGET_WON, Bounded, Id, Latitude, Longitude, Terms

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
MAX_PARTY = 30          # a class outing at most; "100명이서" is not a party we can seat
MAX_WALK_MIN = 120
ShownIds = Annotated[list[Id], Field(max_length=20)]
SeenIds = Annotated[list[Id], Field(max_length=400)]
Sort = Literal["relevance", "nearest", "cheapest"]


class NamedPlace(Bounded):
    """A search origin the child named ("홍대입구역 근처"), resolved through the gazetteer."""

    name: str = Field(max_length=64)
    lat: Latitude
    lon: Longitude


class DialogueState(Bounded):
    # what
    category: str | None = None
    menu_items: Terms = Field(default_factory=list)
    # money: the amount the child has, for the whole party; per person is derived
    budget: int | None = Field(default=None, ge=0, le=MAX_BUDGET_WON)
    party_size: int = Field(default=1, ge=1, le=MAX_PARTY)
    # shop flags
    meal_card: bool = False
    good_shop: bool = False
    # avoid: allergen labels (lexicon.ALLERGEN_WORDS keys) and the words the child used
    allergens: Terms = Field(default_factory=list)
    avoid_foods: Terms = Field(default_factory=list)
    not_spicy: bool = False
    # place: None means the device position when sent, else the child's school
    place: NamedPlace | None = None
    # time: None = now (open shops first); "now" = only shops open now; "HH:MM" = open then
    time: str | None = Field(default=None, pattern=r"^(now|([01]\d|2[0-3]):[0-5]\d)$")
    walk_max_min: int | None = Field(default=None, ge=1, le=MAX_WALK_MIN)
    near: bool = False      # "근처", "가까운 데": the pick widens less far (policy.NEAR_WALK_MIN)
    sort: Sort = "relevance"
    # what the conversation has shown: the last answer's list (references point into it), the
    # shop the child last asked about ("그 집"), and every shop shown so far ("다른 데").
    shown: ShownIds = Field(default_factory=list)
    focus: Id | None = None
    seen: SeenIds = Field(default_factory=list)
    searched: bool = False   # a search has been made (a statement then re-runs it at once)

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}")
        return value

    @property
    def per_person_budget(self) -> int | None:
        return None if self.budget is None else self.budget // self.party_size

    def goal(self) -> dict:
        """The slots a child set, in the evaluation's vocabulary (joint goal accuracy)."""
        out: dict = {}
        if self.category:
            out["category"] = self.category
        if self.menu_items:
            out["menu"] = list(self.menu_items)
        if self.budget is not None:
            out["budget_per_person"] = self.per_person_budget
        if self.party_size > 1:
            out["party"] = self.party_size
        if self.meal_card:
            out["meal_card"] = True
        if self.good_shop:
            out["good"] = True
        if self.allergens:
            out["allergens"] = sorted(self.allergens)
        if self.not_spicy:
            out["not_spicy"] = True
        if self.place:
            out["place"] = self.place.name
        if self.time:
            out["time"] = self.time
        if self.walk_max_min is not None:
            out["walk_max"] = self.walk_max_min
        if self.sort != "relevance":
            out["sort"] = self.sort
        return out
