"""Turn the NLU result into the search of this turn: profile constraints, follow-ups, place, time.

NLU reads one message; this module adds what the message leaves implicit — the child's
allergies, where they are, and, for "거기 말고 다른 데는?" or "더 싼 곳", the previous turn.
"""
from __future__ import annotations

from datetime import datetime

from naviyam.data.catalog import Catalog, haversine_km
from naviyam.memory import Turn
from naviyam.schemas import (
    FollowUp, Intent, NLUResult, RequestContext, SearchFilters, UserInput, UserProfile, time_slot_of,
)

DEFAULT_ALLOWANCE = 9500  # Seoul per-meal allowance 2025 (see DATA.md); for children we don't know yet


def profile_for(catalog: Catalog, user: UserInput) -> UserProfile:
    """Stored profile, or a new-user profile anchored at the school nearest to the child."""
    profile = catalog.user(user.user_id)
    if profile is not None:
        return profile
    schools = catalog.schools
    if user.lat is not None and user.lon is not None:
        dist = haversine_km(user.lat, user.lon, schools["lat"].to_numpy(), schools["lon"].to_numpy())
        school_id = str(schools.index[int(dist.argmin())])
    else:
        school_id = str(schools.index[0])
    return UserProfile(user_id=user.user_id, age=12, school_id=school_id, has_meal_card=True,
                       per_meal_allowance=DEFAULT_ALLOWANCE, is_new=True)


def resolve_origin(catalog: Catalog, user: UserInput, profile: UserProfile, location: str | None) -> tuple[float, float, str]:
    """(lat, lon, school_id): the device position, a place the child named, else their school."""
    if user.lat is not None and user.lon is not None:
        return user.lat, user.lon, profile.school_id
    if location:
        schools = catalog.schools
        key = location.replace(" ", "")
        for column in ("name", "district", "address"):
            hit = schools[schools[column].str.replace(" ", "", regex=False).str.contains(key, regex=False)]
            if len(hit):
                row = hit.iloc[0]
                return float(row.lat), float(row.lon), str(row.school_id)
    lat, lon = catalog.school_location(profile.school_id)
    return lat, lon, profile.school_id


def resolve_turn(
    nlu: NLUResult,
    previous: Turn | None,
    profile: UserProfile,
    max_distance_km: float,
    now: datetime,
    origin: tuple[float, float, str],
) -> tuple[NLUResult, SearchFilters, RequestContext]:
    filters = nlu.filters.model_copy(deep=True)
    entities = nlu.entities.model_copy()
    if nlu.followup is not FollowUp.NONE and previous is not None:
        filters = _carry_over(filters, previous, nlu.followup)
        if entities.food_category is None:
            entities.food_category = filters.category
    # Allergies are never negotiable, whatever the message says.
    filters.allergies = sorted(set(filters.allergies) | set(profile.allergies))
    # A shop asked for by name is wanted wherever it is; otherwise "nearby" means walking distance.
    if filters.max_distance_km is None and not filters.shop_name:
        filters.max_distance_km = max_distance_km
    filters.near_school_id = origin[2]
    slot = entities.time_slot or time_slot_of(now)
    context = RequestContext(now=now, time_slot=slot, origin_lat=origin[0], origin_lon=origin[1], school_id=origin[2])
    intent = nlu.intent
    if nlu.followup is not FollowUp.NONE and intent in (Intent.OUT_OF_SCOPE, Intent.GREETING):
        intent = Intent.FOOD_RECOMMENDATION  # "다른 데는?" is a follow-up, whatever the classifier thought
    resolved = nlu.model_copy(update={"intent": intent, "entities": entities, "filters": filters})
    return resolved, filters, context


def _carry_over(filters: SearchFilters, previous: Turn, followup: FollowUp) -> SearchFilters:
    """Start from the previous search; the new message only narrows it."""
    base = previous.filters.model_copy(deep=True)
    for field in ("category", "max_price", "menu_item", "shop_name"):
        value = getattr(filters, field)
        if value is not None:
            setattr(base, field, value)
    base.meal_card = base.meal_card or filters.meal_card
    shown_ids = [s.shop_id for s in previous.shown]
    base.exclude_shop_ids = sorted(set(base.exclude_shop_ids) | set(shown_ids))
    if followup is FollowUp.CHEAPER and previous.shown:
        cheapest = min(s.min_price for s in previous.shown)
        base.max_price = min(cheapest - 1, base.max_price or cheapest)
    if followup is FollowUp.CLOSER and previous.shown:
        distances = [s.distance_m for s in previous.shown if s.distance_m is not None]
        if distances:
            base.max_distance_km = max(0.05, (min(distances) - 1) / 1000)
    return base
