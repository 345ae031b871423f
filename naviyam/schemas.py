"""Typed boundaries between the 8 inference steps (and, later, between graph nodes).

Every step takes and returns these models, so the in-process chatbot, the CLI and the served
graph exchange exactly the same shapes.

They are also the input boundary of every HTTP endpoint (graph nodes and feedback), so they carry
its hardening: the chat text is NFKC-normalised and refused when it holds control characters,
lone surrogates or bidi overrides or is too long; ids match one safe pattern; numbers have ranges;
and everything an Envelope carries (lists, maps, strings) has a size bound, so a forged envelope
sent straight to a node is refused with a 4xx instead of making the node do unbounded work.
"""
from __future__ import annotations

import time
import unicodedata
from datetime import datetime
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from naviyam.bounds import (  # noqa: F401 - re-exported: the boundary types live with the schemas
    CATEGORIES, ID_PATTERN, MAX_BUDGET_WON, MAX_ENVELOPE_STR, MAX_SHOP_LIST, MAX_STEP_MAP, MAX_TERMS, MAX_TEXT_CHARS,
    TRAFFIC_HEADER, TRAFFIC_KINDS, Bounded, Id, Latitude, Longitude, ShopList, StepMap, StepTextMap, Terms, TrafficKind, UserId,
)
from naviyam.dialogue.acts import FrameUpdate
from naviyam.dialogue.state import DialogueState
from naviyam.text import normalize_unicode

# Whitespace a child can type; every other C0/C1 control character is refused.
_ORDINARY_WHITESPACE = frozenset("\t\n\r")
# Bidi embeddings, overrides and isolates reorder what a reader (or a moderator) sees.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text_problem(text: str) -> str | None:
    """Why ``text`` may not be a chat message (None when it may): control characters, lone
    surrogates (unencodable in UTF-8: they would break every log, database and JSON answer)."""
    for pos, ch in enumerate(text):
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in _ORDINARY_WHITESPACE:
            return f"control character U+{ord(ch):04X} at position {pos}; only ordinary whitespace is allowed"
        if category == "Cs":
            return f"lone surrogate U+{ord(ch):04X} at position {pos} is not valid Unicode text"
        if ch in _BIDI_CONTROLS:
            return f"bidi control U+{ord(ch):04X} at position {pos} is not allowed"
    return None


def validation_problems(exc: ValidationError, limit: int = 5) -> list[str]:
    """``field.path: message`` lines for a 4xx answer (the first ``limit`` problems)."""
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:limit]]


class Intent(str, Enum):
    FOOD_RECOMMENDATION = "FOOD_RECOMMENDATION"
    MENU_INQUIRY = "MENU_INQUIRY"
    SHOP_INFO = "SHOP_INFO"
    BUDGET_INQUIRY = "BUDGET_INQUIRY"
    GREETING = "GREETING"
    GOODBYE = "GOODBYE"
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    UNSAFE_REQUEST = "UNSAFE_REQUEST"


class TimeSlot(str, Enum):
    MORNING = "morning"          # 아침, before school
    LUNCH = "lunch"              # 점심, weekend lunch
    AFTER_SCHOOL = "after_school"  # 방과후 / 학원 가기 전 (15-18h)
    DINNER = "dinner"            # 저녁
    NIGHT = "night"              # 야식 (after 21h)


class FollowUp(str, Enum):
    """How a turn refers to the previous recommendations (resolved with conversation memory)."""

    NONE = "none"
    OTHER = "other"      # "거기 말고 다른 데는?"
    CHEAPER = "cheaper"  # "더 싼 곳"
    CLOSER = "closer"    # "더 가까운 데"


def traffic_kind(header: str | None) -> TrafficKind:
    """The ``X-Naviyam-Traffic`` header's kind; absent is "live". An unknown value is refused
    (ValueError) rather than read as live: a load test with a typo must not train the ranker."""
    if header is None or not header.strip():
        return "live"
    value = header.strip().lower()
    if value not in TRAFFIC_KINDS:
        raise ValueError(f"{TRAFFIC_HEADER}: {header[:40]!r} is not one of {', '.join(TRAFFIC_KINDS)}")
    return value  # type: ignore[return-value]


class UserInput(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    user_id: UserId
    # The raw length is checked first (cheap refusal of huge bodies), the normalised one after.
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    session_id: Id | None = None
    # The device's clock: only the child's local time ("open now"), believed within a bounded
    # skew of the server's (naviyam.clock); never an event time.
    timestamp: datetime | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None

    @field_validator("text")
    @classmethod
    def _normalised_text(cls, value: str) -> str:
        problem = text_problem(value)
        if problem:
            raise ValueError(f"text has a {problem}")
        # Same jamo-safe NFKC as step 3, so what is stored, logged and quoted to the LLM is the
        # text the NLU saw.
        value = normalize_unicode(value).strip()
        if not value:
            raise ValueError("text is empty after unicode normalisation")
        if len(value) > MAX_TEXT_CHARS:
            raise ValueError(f"text is over {MAX_TEXT_CHARS} characters after unicode normalisation")
        return value


class Morpheme(Bounded):
    form: str = Field(max_length=MAX_TEXT_CHARS)
    tag: str = Field(max_length=16)


class Preprocessed(Bounded):
    original_text: str = Field(max_length=MAX_TEXT_CHARS)
    cleaned_text: str = Field(max_length=MAX_TEXT_CHARS)
    # A syllable splits into at most a few morphemes ("했었" -> 하/였/었): the text length bounds both lists.
    morphemes: list[Morpheme] = Field(default_factory=list, max_length=4 * MAX_TEXT_CHARS)
    keywords: list[Annotated[str, Field(max_length=MAX_TEXT_CHARS)]] = Field(
        default_factory=list, max_length=MAX_TEXT_CHARS)
    emotion: Literal["POSITIVE", "NEGATIVE", "NEUTRAL", "HUNGRY"] = "NEUTRAL"
    text_length: int = Field(default=0, ge=0, le=MAX_TEXT_CHARS)


class Entities(Bounded):
    food_category: str | None = None
    menu_item: str | None = Field(default=None, max_length=200)
    shop_name: str | None = Field(default=None, max_length=200)
    budget: int | None = Field(default=None, ge=0)
    location: str | None = Field(default=None, max_length=200)
    payment_method: Literal["meal_card", "cash", "card"] | None = None
    time_slot: TimeSlot | None = None

    @field_validator("food_category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"unknown food_category {value!r}")
        return value

    @field_validator("budget")
    @classmethod
    def _capped_budget(cls, value: int | None) -> int | None:
        return None if value is None else min(value, MAX_BUDGET_WON)


class SearchFilters(Bounded):
    """Hard constraints: a shop that fails any of these is never recommended."""

    category: str | None = None
    meal_card: bool = False
    max_price: int | None = Field(default=None, ge=0)  # the cheapest menu must fit
    shop_name: str | None = Field(default=None, max_length=200)
    menu_item: str | None = Field(default=None, max_length=200)
    exclude_shop_ids: ShopList = Field(default_factory=list)
    allergies: Terms = Field(default_factory=list)  # a shop needs >= 1 menu free of these
    near_school_id: Id | None = None
    # Any distance on Earth (a turn "farther than the last shops" can ask for thousands of km).
    max_distance_km: float | None = Field(default=None, ge=0, le=40_075, allow_inf_nan=False)
    open_at: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # shop must be open then
    prefer_good_influence: bool = False   # soft: boosts 착한가게, never excludes
    # From the conversation's frame (naviyam.dialogue.policy):
    menu_items: Terms = Field(default_factory=list)      # every one must be on the shop's menu
    good_shop: bool = False                              # only 착한가게 / 선한영향력가게
    avoid_words: Terms = Field(default_factory=list)     # menus naming these ("치즈") are not shown
    not_spicy: bool = False                              # spicy menus are not shown
    cheaper_than: int | None = Field(default=None, ge=0, le=MAX_BUDGET_WON)  # "더 싼 데": min_price below
    # Soft preferences the final order applies (hard limits above, these only order and widen):
    prefer_walk_min: int | None = Field(default=None, ge=1, le=120)   # a child's walk unless they said
    widen_walk_min: int | None = Field(default=None, ge=1, le=120)    # widest ring then (None: select's)
    prefer_open_at: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # "now": open first
    sort: Literal["relevance", "nearest", "cheapest"] = "relevance"

    @field_validator("max_price")
    @classmethod
    def _capped_price(cls, value: int | None) -> int | None:
        # Same cap as Entities.budget: filters stored in conversation memory before the cap existed
        # still load, and the price filter stays int64-safe.
        return None if value is None else min(value, MAX_BUDGET_WON)

    def describe(self) -> list[str]:
        """Human-readable list for ``metadata.filters_applied`` (e.g. ``category:치킨``)."""
        out: list[str] = []
        if self.category:
            out.append(f"category:{self.category}")
        if self.meal_card:
            out.append("payment:급식카드")
        if self.max_price is not None:
            out.append(f"max_price:{self.max_price}")
        if self.shop_name:
            out.append(f"shop:{self.shop_name}")
        if self.menu_item:
            out.append(f"menu:{self.menu_item}")
        if self.exclude_shop_ids:
            out.append(f"exclude:{len(self.exclude_shop_ids)}")
        if self.allergies:
            out.append("allergy_free:" + ",".join(self.allergies))
        if self.max_distance_km is not None:
            out.append(f"within_km:{self.max_distance_km:g}")
        if self.open_at:
            out.append(f"open_at:{self.open_at}")
        if self.menu_items:
            out.append("menus:" + ",".join(self.menu_items))
        if self.good_shop:
            out.append("good_shop")
        if self.avoid_words:
            out.append("avoid:" + ",".join(self.avoid_words))
        if self.not_spicy:
            out.append("not_spicy")
        if self.cheaper_than is not None:
            out.append(f"cheaper_than:{self.cheaper_than}")
        if self.prefer_walk_min is not None:
            out.append(f"prefer_walk_min:{self.prefer_walk_min}")
        if self.widen_walk_min is not None:
            out.append(f"widen_walk_min:{self.widen_walk_min}")
        if self.sort != "relevance":
            out.append(f"sort:{self.sort}")
        return out


class NLUResult(Bounded):
    intent: Intent
    entities: Entities = Field(default_factory=Entities)
    confidence: float = Field(ge=0.0, le=1.0)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    semantic_query: str = Field(default="", max_length=MAX_TEXT_CHARS)
    followup: FollowUp = FollowUp.NONE
    backend: str = Field(default="fast", max_length=64)
    intent_scores: StepMap = Field(default_factory=dict)
    # What the turn does to the conversation (the contract every NLU backend fills).
    frame: FrameUpdate | None = None


class MenuItem(Bounded):
    name: str = Field(max_length=200)
    price: int = Field(ge=0, le=MAX_BUDGET_WON)
    allergens: Terms = Field(default_factory=list)
    is_signature: bool = False


class Shop(BaseModel):
    shop_id: str
    name: str
    category: str
    school_id: str
    address: str
    lat: float
    lon: float
    open_time: str
    close_time: str
    phone: str = ""
    accepts_meal_card: bool
    is_good_influence_shop: bool
    rating: float
    view_count: int
    order_count: int
    min_price: int
    avg_price: int
    menus: list[MenuItem] = Field(default_factory=list)

    @property
    def opening_hours(self) -> str:
        return f"{self.open_time}-{self.close_time}"


class UserProfile(Bounded):
    user_id: UserId
    age: int = Field(ge=0, le=150)
    school_id: Id
    preferred_categories: Terms = Field(default_factory=list)
    allergies: Terms = Field(default_factory=list)
    has_meal_card: bool = True
    meal_card_name: str | None = Field(default=None, max_length=200)
    meal_card_balance: int = Field(default=0, ge=0, le=MAX_BUDGET_WON)
    per_meal_allowance: int = Field(default=9500, ge=0, le=MAX_BUDGET_WON)
    is_new: bool = False


class RetrievalHit(Bounded):
    shop_id: Id
    rag_score: float
    dense_score: float = 0.0
    bm25_score: float = 0.0
    matched_content: str = ""


class Candidate(Bounded):
    shop_id: Id
    scores: StepMap = Field(default_factory=dict)  # per funnel (+ "rag")

    @property
    def base_score(self) -> float:
        return max(self.scores.values(), default=0.0)


class Recommendation(Bounded):
    rank: int = Field(ge=0, le=MAX_SHOP_LIST)
    shop_id: Id
    name: str
    category: str
    address: str
    distance_m: int | None = None
    walk_minutes: int | None = None
    menus: list[MenuItem] = Field(default_factory=list, max_length=100)  # the menus the answer shows
    min_price: int
    accepts_meal_card: bool
    is_good_influence_shop: bool
    opening_hours: str
    phone: str = Field(default="", max_length=32)
    open_now: bool = True          # open at the time the child asked about (or now)
    rating: float
    personalized_score: float
    funnel_scores: StepMap = Field(default_factory=dict)


class ResponseMetadata(BaseModel):
    intent: Intent
    entities: Entities
    filters_applied: list[str] = Field(default_factory=list)
    recommendation_method: str = ""
    model_versions: dict[str, str] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    degraded: bool = False
    nlu_backend: str = "fast"
    request_id: str = ""
    session_id: str | None = None
    dialogue_state: dict | None = None   # the conversation's frame after this turn (DialogueState.goal())


class ChatbotResponse(BaseModel):
    response: str
    recommendations: list[Recommendation] = Field(default_factory=list)
    confidence: float
    response_time: float
    metadata: ResponseMetadata


FeedbackType = Literal["clicked", "ordered", "favorited", "rated"]


class FeedbackEvent(BaseModel):
    event_id: Id
    user_id: UserId
    shop_id: Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
    feedback_type: FeedbackType
    satisfaction_score: float | None = Field(default=None, ge=1.0, le=5.0, allow_inf_nan=False)
    request_id: Id | None = None
    # The device's clock, kept for reference; the event time is the server's receipt time.
    timestamp: datetime | None = None
    order_amount: int | None = Field(default=None, ge=0, le=MAX_BUDGET_WON)


class RequestContext(Bounded):
    """Where and when the child is asking; shared by the candidate funnels and the ranker."""

    now: datetime
    time_slot: TimeSlot
    origin_lat: Latitude
    origin_lon: Longitude
    school_id: Id | None = None


def time_slot_of(moment: datetime) -> TimeSlot:
    """Default time slot from the clock when the child did not say one."""
    hour = moment.hour
    if 5 <= hour < 10:
        return TimeSlot.MORNING
    if 10 <= hour < 14:
        return TimeSlot.LUNCH
    if 14 <= hour < 18:
        return TimeSlot.AFTER_SCHOOL
    if 18 <= hour < 21:
        return TimeSlot.DINNER
    return TimeSlot.NIGHT


ENVELOPE_VERSION = "1"


# Step 5's output and step 6's only input: no later step reads them. The served ranker's answer
# leaves them out (components/ranker_transformer.py): with ~150 candidates they were most of the
# bytes every later hop wrote, sent, parsed and validated.
STEP5_POOLS = frozenset({"retrieval", "candidates"})


class Envelope(Bounded):
    """The state of one chat turn as it moves through the steps (and, served, the graph nodes).

    Each step fills its own fields and leaves the others alone, so nothing is recomputed
    downstream; ``errors`` records steps that failed or were skipped and ``degraded`` tells the
    app the answer was built without them.
    """

    schema_version: str = Field(default=ENVELOPE_VERSION, max_length=16)
    request_id: Id
    # Epoch seconds, for response_time across nodes.
    started_at: float = Field(default_factory=time.time, ge=0, allow_inf_nan=False)
    input: UserInput
    # Step 1 (naviyam.clock.receive): the server's receipt time (the event time), the local time
    # the turn is about, and whether the device's clock was believed.
    received_at: datetime | None = None
    local_time: datetime | None = None
    client_clock: Literal["ok", "missing", "skewed"] = "missing"
    traffic: TrafficKind = "live"
    profile: UserProfile | None = None
    preprocessed: Preprocessed | None = None
    nlu: NLUResult | None = None
    unsafe_terms: Terms = Field(default_factory=list)
    unsafe_kinds: Terms = Field(default_factory=list)
    filters: SearchFilters | None = None
    context: RequestContext | None = None
    dialogue: DialogueState | None = None     # the conversation's frame after this turn's act
    update: FrameUpdate | None = None         # the act applied (the NLU's, or SAFETY)
    focus_shop: Id | None = None              # the shown shop a reference resolved to
    relaxed_distance: bool = False
    needs_search: bool = False  # the graph's Switch routes on this
    retrieval: list[RetrievalHit] | None = Field(default=None, max_length=MAX_SHOP_LIST)
    candidates: list[Candidate] | None = Field(default=None, max_length=MAX_SHOP_LIST)
    recommendations: list[Recommendation] = Field(default_factory=list, max_length=100)
    recommendation_method: str = Field(default="", max_length=200)
    answer: str | None = None
    model_versions: StepTextMap = Field(default_factory=dict)
    timings_ms: StepMap = Field(default_factory=dict)
    errors: StepTextMap = Field(default_factory=dict)
    degraded: bool = False
