"""Apply a turn's act to the frame, and turn the frame into this turn's search.

A refinement keeps every slot it does not touch. A new request for another food replaces the
food slots (and the order asked for) but keeps what lasts: allergies, party, money, place, time,
meal card. References, small talk and safety leave the frame as it was. The frame, not the
single message, becomes the hard filters.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from naviyam.data.catalog import WALK_METERS_PER_MINUTE, Catalog, haversine_km
from naviyam.dialogue.acts import Act, AvoidOp, ChitChat, FrameUpdate
from naviyam.dialogue.state import DialogueState
from naviyam.schemas import Intent, RequestContext, SearchFilters, UserInput, UserProfile, time_slot_of

CHILD_WALK_MIN = 15     # the default pick is within a short walk; widened only when too few qualify
# "여기 근처 치킨": the child put nearness first, so the pick widens to this walk at most, not to
# select.WIDER_WALK_MIN (fewer shops rather than a 25-minute walk; ~1.3 km at a child's pace).
NEAR_WALK_MIN = 20
_LIST_SLOTS = {"menu_items", "allergens", "avoid_foods"}
_DEFAULTS = DialogueState()


def settle(update: FrameUpdate, state: DialogueState, intent: Intent, *, unsafe: bool,
           stated_allergens: list[str]) -> FrameUpdate:
    """The act the conversation applies, from the NLU's (any backend's) and what only this layer knows.

    - An unsafe request is a safety act, whatever the backend read.
    - An allergy the child stated binds whatever the backend read ("never ignore an allergy").
    - A question about a shop when none is on screen and the classifier heard small talk
      ("방학 언제 해?") is small talk.
    """
    if unsafe:
        return FrameUpdate(act=Act.SAFETY)
    if stated_allergens:
        update = update.model_copy(update={"ops": [*update.ops, AvoidOp(slot="allergens", op="add", value=stated_allergens)]})
        if update.act in (Act.CHITCHAT, Act.ASK_SHOP) and not update.reference:
            update = update.model_copy(update={"act": Act.STATEMENT})
    if update.act is Act.ASK_SHOP and update.reference is None and not state.shown and intent in (
            Intent.GREETING, Intent.GOODBYE, Intent.OUT_OF_SCOPE):
        update = update.model_copy(update={"act": Act.CHITCHAT, "questions": [], "chitchat": ChitChat.OTHER})
    return update


def apply(state: DialogueState, update: FrameUpdate) -> DialogueState:
    if update.act in (Act.SAFETY, Act.CHITCHAT, Act.ASK_SHOP):
        return state
    data = state.model_dump()
    if update.act is Act.NEW_SEARCH:
        for slot in ("category", "menu_items", "sort"):
            data[slot] = getattr(_DEFAULTS, slot)
    for op in update.ops:
        slot, kind = op.slot, op.op
        value = getattr(op, "value", None)
        if kind == "clear":
            data[slot] = getattr(_DEFAULTS, slot)
        elif slot in _LIST_SLOTS:
            items = list(data[slot])
            if kind == "set":
                items = list(value or [])
            elif kind == "add":
                items += [v for v in value or [] if v not in items]
            elif kind == "remove":
                items = [v for v in items if v not in (value or [])]
            data[slot] = items
        elif slot in ("meal_card", "good_shop", "not_spicy", "near"):
            data[slot] = kind == "set"
        else:
            data[slot] = value.model_dump() if hasattr(value, "model_dump") else value
    if update.act in (Act.NEW_SEARCH, Act.REFINE):
        data["searched"] = True
    return DialogueState.model_validate(data)


@dataclass(frozen=True)
class Search:
    filters: SearchFilters
    context: RequestContext


def search(state: DialogueState, update: FrameUpdate, profile: UserProfile, user: UserInput, catalog: Catalog,
           max_distance_km: float, local: datetime) -> Search:
    """The hard filters and the where/when of this turn, from the frame; ``local`` is the
    turn's local time (naviyam.clock.receive)."""
    lat, lon = origin(state, user, profile, catalog)
    at = state.time if state.time not in (None, "now") else f"{local:%H:%M}"
    filters = SearchFilters(
        category=state.category,
        menu_item=state.menu_items[-1] if state.menu_items else None,
        menu_items=list(state.menu_items),
        meal_card=state.meal_card,
        good_shop=state.good_shop,
        max_price=state.per_person_budget,
        allergies=sorted(set(state.allergens) | set(profile.allergies)),
        avoid_words=list(state.avoid_foods),
        not_spicy=state.not_spicy,
        near_school_id=profile.school_id,
        open_at=at if state.time is not None else None,
        prefer_open_at=None if state.time is not None else at,
        sort=state.sort,
        prefer_good_influence=state.good_shop,
    )
    if state.walk_max_min is not None:
        filters.max_distance_km = state.walk_max_min * WALK_METERS_PER_MINUTE / 1000
    else:
        filters.max_distance_km = max_distance_km
        filters.prefer_walk_min = CHILD_WALK_MIN
        if state.near:
            filters.widen_walk_min = NEAR_WALK_MIN
    if update.exclude_shown:
        filters.exclude_shop_ids = list(state.seen)
    shown = [sid for sid in state.shown if sid in catalog.shops.index]
    if update.relative == "cheaper" and shown:
        # Cheaper than what was on screen on average, cheapest first: "below the cheapest shown"
        # leaves most children with nothing, yet every pick still beats most of what they saw.
        filters.cheaper_than = int(catalog.shops.loc[shown, "min_price"].mean())
        filters.sort = "cheapest"
    if update.relative == "closer" and shown:
        rows = catalog.shops.loc[shown]
        dist = haversine_km(lat, lon, rows["lat"].to_numpy(), rows["lon"].to_numpy())
        filters.max_distance_km = min(filters.max_distance_km or 1e9, max(0.05, float(dist.max())))
        filters.sort = "nearest"
    moment = local
    if state.time not in (None, "now"):
        hh, mm = map(int, state.time.split(":"))
        moment = local.replace(hour=hh, minute=mm)
    context = RequestContext(now=local, time_slot=time_slot_of(moment), origin_lat=lat, origin_lon=lon,
                             school_id=profile.school_id)
    return Search(filters, context)


def origin(state: DialogueState, user: UserInput, profile: UserProfile, catalog: Catalog) -> tuple[float, float]:
    """A place the child named, else the device position, else their school."""
    if state.place is not None:
        return state.place.lat, state.place.lon
    if user.lat is not None and user.lon is not None:
        return user.lat, user.lon
    return catalog.school_location(profile.school_id)


def after_answer(state: DialogueState, update: FrameUpdate, shown: list[str], focus: str | None) -> DialogueState:
    """The frame as memory keeps it: what this answer showed (a reference keeps the list on screen)."""
    if update.act is Act.ASK_SHOP:
        # The answer shows the list again, or only the shop named when it was not on it.
        return state.model_copy(update={"focus": focus, "shown": shown[:20] or state.shown})
    if update.act in (Act.SAFETY, Act.CHITCHAT) or not shown and not state.searched:
        return state
    seen = list(dict.fromkeys([*state.seen, *shown]))[-400:]
    return state.model_copy(update={"shown": shown[:20], "seen": seen, "focus": None})
