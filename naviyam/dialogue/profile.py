"""Who is asking: the stored profile, or a new child's profile anchored at the nearest school."""
from __future__ import annotations

from naviyam.data.catalog import Catalog, haversine_km
from naviyam.schemas import UserInput, UserProfile

DEFAULT_ALLOWANCE = 9500  # Seoul's per-meal child meal-card allowance in 2025 (won); for children we don't know yet


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
