"""Typed boundaries between the 8 inference steps (and, later, between graph nodes).

Every step takes and returns these models, so the in-process chatbot, the CLI and the served
graph exchange exactly the same shapes.
"""
from __future__ import annotations

import time
from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CATEGORIES: tuple[str, ...] = (
    "치킨", "피자", "햄버거", "분식", "한식", "중식", "일식", "양식",
    "카페·디저트", "베이커리", "편의점", "도시락",
)
MAX_TEXT_CHARS = 1000


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


class UserInput(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    user_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    session_id: str | None = Field(default=None, max_length=128)
    timestamp: datetime = Field(default_factory=datetime.now)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class Morpheme(BaseModel):
    form: str
    tag: str


class Preprocessed(BaseModel):
    original_text: str
    cleaned_text: str
    morphemes: list[Morpheme] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    emotion: Literal["POSITIVE", "NEGATIVE", "NEUTRAL", "HUNGRY"] = "NEUTRAL"
    text_length: int = 0


class Entities(BaseModel):
    food_category: str | None = None
    menu_item: str | None = None
    shop_name: str | None = None
    budget: int | None = Field(default=None, ge=0)
    location: str | None = None
    payment_method: Literal["meal_card", "cash", "card"] | None = None
    time_slot: TimeSlot | None = None

    @field_validator("food_category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"unknown food_category {value!r}")
        return value


class SearchFilters(BaseModel):
    """Hard constraints: a shop that fails any of these is never recommended."""

    category: str | None = None
    meal_card: bool = False
    max_price: int | None = None          # the cheapest menu must fit
    shop_name: str | None = None
    menu_item: str | None = None
    exclude_shop_ids: list[str] = Field(default_factory=list)
    allergies: list[str] = Field(default_factory=list)  # a shop needs >= 1 menu free of these
    near_school_id: str | None = None
    max_distance_km: float | None = None
    open_at: str | None = None            # "HH:MM"; shop must be open then
    prefer_good_influence: bool = False   # soft: boosts 착한가게, never excludes

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
        return out


class NLUResult(BaseModel):
    intent: Intent
    entities: Entities = Field(default_factory=Entities)
    confidence: float = Field(ge=0.0, le=1.0)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    semantic_query: str = ""
    followup: FollowUp = FollowUp.NONE
    backend: str = "fast"
    intent_scores: dict[str, float] = Field(default_factory=dict)


class MenuItem(BaseModel):
    name: str
    price: int
    allergens: list[str] = Field(default_factory=list)
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


class UserProfile(BaseModel):
    user_id: str
    age: int
    school_id: str
    preferred_categories: list[str] = Field(default_factory=list)
    allergies: list[str] = Field(default_factory=list)
    has_meal_card: bool = True
    meal_card_name: str | None = None
    meal_card_balance: int = 0
    per_meal_allowance: int = 9500
    is_new: bool = False


class RetrievalHit(BaseModel):
    shop_id: str
    rag_score: float
    dense_score: float = 0.0
    bm25_score: float = 0.0
    matched_content: str = ""


class Candidate(BaseModel):
    shop_id: str
    scores: dict[str, float] = Field(default_factory=dict)  # per funnel (+ "rag")

    @property
    def base_score(self) -> float:
        return max(self.scores.values(), default=0.0)


class Recommendation(BaseModel):
    rank: int
    shop_id: str
    name: str
    category: str
    address: str
    distance_m: int | None = None
    walk_minutes: int | None = None
    menus: list[MenuItem] = Field(default_factory=list)  # the menus the answer shows
    min_price: int
    accepts_meal_card: bool
    is_good_influence_shop: bool
    opening_hours: str
    rating: float
    personalized_score: float
    funnel_scores: dict[str, float] = Field(default_factory=dict)


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


class ChatbotResponse(BaseModel):
    response: str
    recommendations: list[Recommendation] = Field(default_factory=list)
    confidence: float
    response_time: float
    metadata: ResponseMetadata


FeedbackType = Literal["clicked", "ordered", "favorited", "rated"]


class FeedbackEvent(BaseModel):
    event_id: str = Field(min_length=1, max_length=128)
    user_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.:]+$")
    shop_id: str = Field(min_length=1, max_length=64)
    feedback_type: FeedbackType
    satisfaction_score: float | None = Field(default=None, ge=1.0, le=5.0)
    request_id: str | None = None
    timestamp: datetime = Field(default_factory=datetime.now)
    order_amount: int | None = Field(default=None, ge=0)


class RequestContext(BaseModel):
    """Where and when the child is asking; shared by the candidate funnels and the ranker."""

    now: datetime
    time_slot: TimeSlot
    origin_lat: float
    origin_lon: float
    school_id: str | None = None


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


class Envelope(BaseModel):
    """The state of one chat turn as it moves through the steps (and, served, the graph nodes).

    Each step fills its own fields and leaves the others alone, so nothing is recomputed
    downstream; ``errors`` records steps that failed or were skipped and ``degraded`` tells the
    app the answer was built without them.
    """

    schema_version: str = ENVELOPE_VERSION
    request_id: str
    started_at: float = Field(default_factory=time.time)  # epoch seconds, for response_time across nodes
    input: UserInput
    profile: UserProfile | None = None
    preprocessed: Preprocessed | None = None
    nlu: NLUResult | None = None
    unsafe_terms: list[str] = Field(default_factory=list)
    unsafe_kinds: list[str] = Field(default_factory=list)
    filters: SearchFilters | None = None
    context: RequestContext | None = None
    relaxed_distance: bool = False
    needs_search: bool = False  # the graph's Switch routes on this
    retrieval: list[RetrievalHit] | None = None
    candidates: list[Candidate] | None = None
    recommendations: list[Recommendation] = Field(default_factory=list)
    recommendation_method: str = ""
    answer: str | None = None
    model_versions: dict[str, str] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    errors: dict[str, str] = Field(default_factory=dict)
    degraded: bool = False
