"""What one turn does to the conversation: a dialogue act plus slot operations.

This is the contract between NLU backends: the fast default (``naviyam.nlu.frame``) and the LLM
backend (``naviyam.nlu.llm``, strictly parsed) both fill a ``FrameUpdate``; ``policy.apply``
is the only code that changes the frame.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field

from naviyam.dialogue.state import HHMM, MAX_PARTY, MAX_WALK_MIN, NamedPlace, Sort
from naviyam.bounds import CATEGORIES, MAX_BUDGET_WON, Bounded


class Act(str, Enum):
    NEW_SEARCH = "new_search"   # "치킨 먹고 싶어": food slots replaced, lasting facts kept
    REFINE = "refine"           # "급식카드 되는 데만", "그럼 칠천원까지": everything else kept
    ASK_SHOP = "ask_shop"       # "두 번째 가게 몇 시까지 해?"
    STATEMENT = "statement"     # "우유 알레르기 있어", "친구랑 둘이야"
    CHITCHAT = "chitchat"       # greetings, thanks, "넌 뭐 할 수 있어?"
    SAFETY = "safety"           # unsafe request, grooming cue, distress


class ShopFact(str, Enum):
    HOURS = "hours"
    OPEN = "open"          # when it opens
    CLOSE = "close"        # until when
    ADDRESS = "address"
    WALK = "walk"
    MENU = "menu"
    PRICE = "price"
    MEAL_CARD = "meal_card"
    PHONE = "phone"
    GOOD = "good"


class ChitChat(str, Enum):
    GREETING = "greeting"
    GOODBYE = "goodbye"
    THANKS = "thanks"
    CAPABILITIES = "capabilities"
    NAME = "name"
    OTHER = "other"


class Strict(Bounded):
    model_config = ConfigDict(extra="forbid", str_max_length=200)


class SetCategory(Strict):
    slot: Literal["category"]
    op: Literal["set", "clear"]
    value: Literal[CATEGORIES] | None = None  # type: ignore[valid-type]


class MenuOp(Strict):
    slot: Literal["menu_items"]
    op: Literal["set", "add", "remove", "clear"]
    value: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=8)


class BudgetOp(Strict):
    slot: Literal["budget"]
    op: Literal["set", "clear"]
    value: int | None = Field(default=None, ge=0, le=MAX_BUDGET_WON)


class PartyOp(Strict):
    slot: Literal["party_size"]
    op: Literal["set", "clear"]
    value: int | None = Field(default=None, ge=1, le=MAX_PARTY)


class FlagOp(Strict):
    slot: Literal["meal_card", "good_shop", "not_spicy", "near"]
    op: Literal["set", "clear"]


class AvoidOp(Strict):
    slot: Literal["allergens", "avoid_foods"]
    op: Literal["add", "remove", "clear"]
    value: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=16)


class PlaceOp(Strict):
    slot: Literal["place"]
    op: Literal["set", "clear"]
    value: NamedPlace | None = None


class TimeOp(Strict):
    slot: Literal["time"]
    op: Literal["set", "clear"]
    value: Annotated[str, Field(pattern=rf"^now$|{HHMM}")] | None = None


class WalkOp(Strict):
    slot: Literal["walk_max_min"]
    op: Literal["set", "clear"]
    value: int | None = Field(default=None, ge=1, le=MAX_WALK_MIN)


class SortOp(Strict):
    slot: Literal["sort"]
    op: Literal["set", "clear"]
    value: Sort | None = None


SlotOp = Annotated[
    Union[SetCategory, MenuOp, BudgetOp, PartyOp, FlagOp, AvoidOp, PlaceOp, TimeOp, WalkOp, SortOp],
    Field(discriminator="slot"),
]


class Reference(Strict):
    """A shown shop the child points at: an ordinal (1-based, -1 = last), a demonstrative, a name."""

    ordinal: int | None = Field(default=None, ge=-20, le=20)
    demonstrative: bool = False
    name: str | None = Field(default=None, max_length=64)


class FrameUpdate(Strict):
    act: Act
    ops: list[SlotOp] = Field(default_factory=list, max_length=32)
    # "다른 데": leave out the shops already shown; "더 싼/가까운": relative to them.
    exclude_shown: bool = False
    relative: Literal["cheaper", "closer"] | None = None
    reference: Reference | None = None
    questions: list[ShopFact] = Field(default_factory=list, max_length=10)
    chitchat: ChitChat | None = None
    unknown_place: str | None = Field(default=None, max_length=64)  # named, not in the gazetteer
