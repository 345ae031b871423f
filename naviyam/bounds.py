"""Bounded field types shared by every boundary model (schemas, the dialogue frame and its acts).

Apart from ``naviyam.schemas`` so the dialogue contracts can use them and schemas can carry the
dialogue contracts, without an import cycle.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CATEGORIES: tuple[str, ...] = (
    "치킨", "피자", "햄버거", "분식", "한식", "중식", "일식", "양식",
    "카페·디저트", "베이커리", "편의점", "도시락",
)
MAX_TEXT_CHARS = 1000

# Ids travel into SQLite keys, log lines, file names and Feast entity keys: one pattern for all.
ID_PATTERN = r"^[A-Za-z0-9_\-.:]+$"
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
UserId = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
# More than any menu costs: a child's "1억원" means "no limit", so the NLU's amount is capped here
# rather than refused (and numpy's int64 price filters can never overflow).
MAX_BUDGET_WON = 100_000_000
# Envelope bounds: generous for real turns (the catalogue has a few thousand shops, a turn a few
# hundred candidates), small enough that a forged envelope cannot make a node do unbounded work.
MAX_ENVELOPE_STR = 4096
MAX_SHOP_LIST = 5000
MAX_STEP_MAP = 64
MAX_TERMS = 256
ShopList = Annotated[list[Id], Field(max_length=MAX_SHOP_LIST)]
Terms = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=MAX_TERMS)]
StepMap = Annotated[dict[Annotated[str, Field(max_length=64)], float], Field(max_length=MAX_STEP_MAP)]
StepTextMap = Annotated[dict[Annotated[str, Field(max_length=64)], str], Field(max_length=MAX_STEP_MAP)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
# Who a turn or a feedback event came from. Only "live" (children through the app) and
# "simulated" (naviyam.simulate's users, the local stand-in for them) are learned from and
# monitored (``learning.traffic``); the rest are our own load and checks, kept apart in the log.
TrafficKind = Literal["live", "simulated", "bench", "soak", "eval", "demo", "test"]
TRAFFIC_KINDS: tuple[str, ...] = ("live", "simulated", "bench", "soak", "eval", "demo", "test")
TRAFFIC_HEADER = "X-Naviyam-Traffic"


class Bounded(BaseModel):
    """Base of everything an Envelope carries: no string longer than ``MAX_ENVELOPE_STR``."""

    model_config = ConfigDict(str_max_length=MAX_ENVELOPE_STR)
