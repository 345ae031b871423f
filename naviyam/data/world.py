"""The static synthetic world: schools, shops around them, their menus, and the children.

Everything here is drawn from a ``numpy.random.Generator`` handed in by the caller, so the
same seed always yields the same world. Geography is real-ish (Seoul and Gyeonggi district
centres, dong and road names) so addresses and distances look like the real thing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from naviyam import lexicon
from naviyam.data.spatial import EARTH_RADIUS_KM
from naviyam.schemas import CATEGORIES

KM_PER_DEG_LAT = 111.0


@dataclass(frozen=True)
class District:
    province: str
    name: str          # as written in addresses, e.g. "강남구" or "성남시 분당구"
    lat: float
    lon: float
    dongs: tuple[str, ...]
    roads: tuple[str, ...]
    phone_prefix: str
    allowance: int     # per-meal meal-card allowance in won (Seoul 9,500; Gyeonggi 8,000-9,000)
    card_name: str     # what the local government calls its child meal card


DISTRICTS: tuple[District, ...] = (
    District("서울특별시", "강남구", 37.4979, 127.0476, ("역삼", "대치", "개포", "삼성", "도곡", "압구정"),
             ("역삼로", "테헤란로", "도곡로", "선릉로", "삼성로", "개포로"), "02", 9500, "꿈나무카드"),
    District("서울특별시", "서초구", 37.4837, 127.0124, ("서초", "반포", "방배", "잠원", "양재"),
             ("서초대로", "반포대로", "방배로", "강남대로", "양재대로"), "02", 9500, "꿈나무카드"),
    District("서울특별시", "송파구", 37.5105, 127.1059, ("잠실", "가락", "문정", "방이", "오금"),
             ("올림픽로", "송파대로", "가락로", "오금로", "백제고분로"), "02", 9500, "꿈나무카드"),
    District("서울특별시", "마포구", 37.5563, 126.9119, ("망원", "합정", "성산", "상암", "공덕"),
             ("월드컵로", "망원로", "성미산로", "마포대로", "독막로"), "02", 9500, "꿈나무카드"),
    District("서울특별시", "노원구", 37.6442, 127.0668, ("상계", "중계", "하계", "공릉", "월계"),
             ("동일로", "노원로", "한글비석로", "공릉로", "섬밭로"), "02", 9500, "꿈나무카드"),
    District("서울특별시", "관악구", 37.4784, 126.9416, ("봉천", "신림", "남현", "청룡", "은천"),
             ("관악로", "남부순환로", "봉천로", "신림로", "은천로"), "02", 9500, "꿈나무카드"),
    District("서울특별시", "강서구", 37.5509, 126.8495, ("화곡", "등촌", "가양", "발산", "방화"),
             ("화곡로", "강서로", "공항대로", "양천로", "등촌로"), "02", 9500, "꿈나무카드"),
    District("서울특별시", "은평구", 37.6027, 126.9291, ("불광", "응암", "녹번", "진관", "역촌"),
             ("통일로", "연서로", "은평로", "진관로", "서오릉로"), "02", 9500, "꿈나무카드"),
    District("경기도", "성남시 분당구", 37.3827, 127.1189, ("정자", "서현", "수내", "야탑", "이매"),
             ("분당로", "정자일로", "황새울로", "야탑로", "서현로"), "031", 9000, "아동급식카드"),
    District("경기도", "수원시 영통구", 37.2596, 127.0466, ("영통", "매탄", "망포", "원천", "광교"),
             ("영통로", "매탄로", "봉영로", "청명로", "광교로"), "031", 8000, "행복카드"),
    District("경기도", "고양시 일산동구", 37.6584, 126.7742, ("백석", "마두", "장항", "풍동", "정발산"),
             ("중앙로", "일산로", "백마로", "정발산로", "무궁화로"), "031", 8500, "드림카드"),
    District("경기도", "용인시 수지구", 37.3223, 127.0982, ("풍덕천", "죽전", "상현", "동천", "성복"),
             ("수지로", "포은대로", "죽전로", "문정로", "성복1로"), "031", 9000, "꿈자람카드"),
)

# Today's world is one metropolitan "tile": two schools per district above. A bigger world (a
# national catalog) repeats the tile side by side, TILE_SPACING_DEG apart, rather than crowding
# ever more schools into the same districts: a school's neighbourhood then holds as many shops at
# any size, as it does in a real country, and the first tile is exactly today's world.
TILE_SCHOOLS = 2 * len(DISTRICTS)
TILE_SPACING_DEG = 0.6   # > the tile's own extent (~0.4 deg lat, ~0.35 deg lon, plus 3 km of shops)
TILE_COLUMNS = 10

LEVEL_SUFFIX = {"초": "초등학교", "중": "중학교", "고": "고등학교"}
LEVEL_AGES = {"초": (8, 13), "중": (14, 16), "고": (17, 18)}
LEVEL_CYCLE = ("초", "중", "고", "초")  # elementary schools are the most numerous

# Shares of each category among shops near schools (분식/치킨/한식/편의점/카페 dominate).
CATEGORY_SHARE = {
    "치킨": 0.12, "피자": 0.06, "햄버거": 0.07, "분식": 0.16, "한식": 0.13, "중식": 0.06,
    "일식": 0.04, "양식": 0.03, "카페·디저트": 0.12, "베이커리": 0.05, "편의점": 0.12, "도시락": 0.04,
}
# Merchants that register for the meal card are mostly cheap everyday-meal places.
MEAL_CARD_RATE = {
    "치킨": 0.50, "피자": 0.50, "햄버거": 0.65, "분식": 0.88, "한식": 0.88, "중식": 0.75,
    "일식": 0.60, "양식": 0.45, "카페·디저트": 0.45, "베이커리": 0.70, "편의점": 0.95, "도시락": 0.92,
}
# Typical opening hours per category; "00:00"-"23:59" is a 24-hour shop and close < open passes midnight.
OPENING_HOURS = {
    "치킨": (("15:00", "01:00"), ("16:00", "02:00"), ("12:00", "00:00")),
    "피자": (("11:00", "22:00"), ("11:30", "23:00")),
    "햄버거": (("10:00", "22:00"), ("09:00", "23:00"), ("00:00", "23:59")),
    "분식": (("09:00", "21:00"), ("10:00", "20:30"), ("08:00", "20:00")),
    "한식": (("10:30", "21:00"), ("11:00", "21:30"), ("07:00", "21:00")),
    "중식": (("11:00", "21:00"), ("10:30", "21:30")),
    "일식": (("11:00", "21:00"), ("11:30", "21:30")),
    "양식": (("11:00", "22:00"), ("11:30", "21:30")),
    "카페·디저트": (("10:00", "22:00"), ("09:00", "22:00"), ("11:00", "23:00")),
    "베이커리": (("07:00", "22:00"), ("07:30", "21:00")),
    "편의점": (("00:00", "23:59"), ("00:00", "23:59"), ("00:00", "23:59"), ("07:00", "23:00")),
    "도시락": (("08:00", "21:00"), ("09:00", "21:00"), ("07:00", "20:00")),
}
# Relative liking per category for young children and for teens; blended by age.
KID_TASTE = {
    "치킨": 1.2, "피자": 1.0, "햄버거": 1.2, "분식": 1.5, "한식": 0.8, "중식": 0.9,
    "일식": 0.5, "양식": 0.5, "카페·디저트": 0.8, "베이커리": 0.9, "편의점": 1.2, "도시락": 0.7,
}
TEEN_TASTE = {
    "치킨": 1.2, "피자": 0.9, "햄버거": 1.1, "분식": 1.3, "한식": 0.8, "중식": 0.8,
    "일식": 1.0, "양식": 0.9, "카페·디저트": 1.4, "베이커리": 0.7, "편의점": 1.2, "도시락": 0.9,
}
# Only allergens that appear in the lexicon, so the allergy filter can actually act on them.
USER_ALLERGENS = ("우유", "달걀", "땅콩", "새우", "밀", "대두", "조개류")
USER_ALLERGEN_P = (0.25, 0.20, 0.20, 0.15, 0.08, 0.06, 0.06)


@dataclass
class World:
    schools: pd.DataFrame
    shops: pd.DataFrame   # without rating / view_count / order_count (those need truth + events)
    menus: pd.DataFrame
    users: pd.DataFrame


# ----------------------------------------------------------------------------------- schools

def build_schools(n_schools: int, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
    """Schools and the dong each one is in (shops near a school borrow it for branch names)."""
    order = rng.permutation(len(DISTRICTS))
    used_dongs: dict[str, list[str]] = {}
    names: set[str] = set()
    rows, dongs = [], []
    for i in range(n_schools):
        district = DISTRICTS[order[i % len(order)]]
        level = LEVEL_CYCLE[i % len(LEVEL_CYCLE)]
        tile = i // TILE_SCHOOLS
        dong = _next_dong(district, used_dongs.setdefault(f"{tile}/{district.name}", []), rng)
        dongs.append(dong)
        name = _unique(f"{dong}{LEVEL_SUFFIX[level]}", names, lambda k: f"{dong}{k}{LEVEL_SUFFIX[level]}")
        # Schools sit ~1 km around the district centre.
        lat = district.lat + rng.normal(0, 0.009)
        lon = district.lon + rng.normal(0, 0.009) / np.cos(np.radians(district.lat))
        if tile:
            row, column = divmod(tile, TILE_COLUMNS)
            lat, lon = lat - row * TILE_SPACING_DEG, lon + column * TILE_SPACING_DEG
        rows.append({
            "school_id": f"school_{i + 1:02d}", "name": name, "level": level,
            "district": district.name, "address": _road_address(district, rng),
            "lat": round(float(lat), 6), "lon": round(float(lon), 6),
        })
    return pd.DataFrame(rows), dongs


def _next_dong(district: District, taken: list[str], rng: np.random.Generator) -> str:
    """Spread a district's schools (in one tile) over different dongs before reusing one."""
    free = [d for d in district.dongs if d not in taken] or list(district.dongs)
    dong = free[int(rng.integers(len(free)))]
    taken.append(dong)
    return dong


def _unique(first: str, taken: set[str], fallback) -> str:
    name, k = first, 2
    while name in taken:
        name, k = fallback(k), k + 1
    taken.add(name)
    return name


def _road_address(district: District, rng: np.random.Generator) -> str:
    road = district.roads[int(rng.integers(len(district.roads)))]
    number = int(rng.integers(1, 400))
    if rng.random() < 0.3:
        return f"{district.province} {district.name} {road} {number}-{int(rng.integers(1, 30))}"
    return f"{district.province} {district.name} {road} {number}"


def district_of(name: str) -> District:
    return next(d for d in DISTRICTS if d.name == name)


# ------------------------------------------------------------------------------------- shops

def build_shops(schools: pd.DataFrame, dongs: list[str], n_shops: int, rng: np.random.Generator) -> pd.DataFrame:
    # Some schools sit on busier streets than others.
    weights = rng.gamma(6.0, 1.0, len(schools))
    per_school = rng.multinomial(n_shops, weights / weights.sum())
    anchor = np.repeat(np.arange(len(schools)), per_school)
    categories = rng.choice(np.array(CATEGORIES), size=n_shops, p=[CATEGORY_SHARE[c] for c in CATEGORIES])
    lat, lon = _scatter_around(schools["lat"].to_numpy()[anchor], schools["lon"].to_numpy()[anchor], rng)
    districts = [district_of(d) for d in schools["district"].to_numpy()[anchor]]
    school_dongs = [dongs[i] for i in anchor]

    hours = [OPENING_HOURS[c][int(rng.integers(len(OPENING_HOURS[c])))] for c in categories]
    card_p = np.array([MEAL_CARD_RATE[c] for c in categories])
    accepts = rng.random(n_shops) < card_p
    # 착한가게 are mostly merchants already in the meal-card scheme; ~12 % overall.
    good = rng.random(n_shops) < np.where(accepts, 0.14, 0.07)
    names = _shop_names(categories, districts, school_dongs, rng)
    return pd.DataFrame({
        "shop_id": [f"shop_{i + 1:04d}" for i in range(n_shops)],
        "name": names,
        "category": categories,
        "school_id": schools["school_id"].to_numpy()[anchor],
        "address": [_road_address(d, rng) for d in districts],
        "district": [d.name for d in districts],
        "lat": np.round(lat, 6),
        "lon": np.round(lon, 6),
        "open_time": [h[0] for h in hours],
        "close_time": [h[1] for h in hours],
        "phone": [_phone(d, rng) for d in districts],
        "accepts_meal_card": accepts,
        "is_good_influence_shop": good,
    })


def _scatter_around(lat0: np.ndarray, lon0: np.ndarray, rng: np.random.Generator):
    """Most shops within walking distance (~1.5 km) of their school, a fifth up to 3 km away."""
    n = len(lat0)
    near = np.minimum(rng.rayleigh(0.55, n), 1.5)
    far = rng.uniform(1.5, 3.0, n)
    r_km = np.where(rng.random(n) < 0.8, near, far)
    theta = rng.uniform(0, 2 * np.pi, n)
    lat = lat0 + r_km * np.cos(theta) / KM_PER_DEG_LAT
    lon = lon0 + r_km * np.sin(theta) / (KM_PER_DEG_LAT * np.cos(np.radians(lat0)))
    return lat, lon


def _shop_names(categories, districts, school_dongs, rng: np.random.Generator) -> list[str]:
    """prefix + stem (+ branch dong) names, unique across all shops."""
    taken: set[str] = set()
    out = []
    for category, district, dong in zip(categories, districts, school_dongs):
        stems = lexicon.SHOP_NAME_STEMS[category]
        base = lexicon.SHOP_NAME_PREFIXES[int(rng.integers(len(lexicon.SHOP_NAME_PREFIXES)))] + stems[
            int(rng.integers(len(stems)))]
        # Branches are named after the dong near the school, sometimes another dong in the district.
        branch = dong if rng.random() < 0.6 else district.dongs[int(rng.integers(len(district.dongs)))]
        tries = [f"{base} {branch}점"] if rng.random() < 0.75 else [base, f"{base} {branch}점"]
        tries += [f"{base} {d}점" for d in district.dongs]
        name = next((t for t in tries if t not in taken), None)
        if name is None:
            name = _unique(f"{base} {branch}2호점", taken, lambda k: f"{base} {branch}{k}호점")
        taken.add(name)
        out.append(name)
    return out


def _phone(district: District, rng: np.random.Generator) -> str:
    middle = int(rng.integers(200, 1000)) if rng.random() < 0.5 else int(rng.integers(2000, 10000))
    return f"{district.phone_prefix}-{middle}-{int(rng.integers(0, 10000)):04d}"


# ------------------------------------------------------------------------------------- menus

def build_menus(shops: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """4-8 items per shop; one price level per shop so a shop is consistently cheap or pricey."""
    rows = []
    levels = rng.beta(2.0, 2.0, len(shops))
    for shop_id, category, level in zip(shops["shop_id"], shops["category"], levels):
        catalogue = lexicon.MENUS[category]
        names = list(catalogue)
        k = min(int(rng.integers(4, 9)), len(names))
        picked = [names[i] for i in sorted(rng.choice(len(names), size=k, replace=False))]
        signature = set(rng.choice(k, size=1 if rng.random() < 0.6 else 2, replace=False).tolist())
        for j, name in enumerate(picked):
            low, high, allergens = catalogue[name]
            rows.append({
                "menu_id": f"{shop_id}_m{j + 1}", "shop_id": shop_id, "name": name,
                "price": _price(low, high, level, rng), "allergens": list(allergens),
                "is_signature": j in signature,
            })
    return pd.DataFrame(rows)


def _price(low: int, high: int, level: float, rng: np.random.Generator) -> int:
    """A multiple of 500 won inside the lexicon range, near the shop's price level."""
    lo, hi = -(-low // 500), high // 500
    q = float(np.clip(level + rng.normal(0, 0.2), 0.0, 1.0))
    return 500 * (lo + int(round(q * (hi - lo))))


def menu_price_stats(menus: pd.DataFrame) -> pd.DataFrame:
    """min_price and avg_price (rounded to 100 won) per shop_id."""
    grouped = menus.groupby("shop_id")["price"]
    return pd.DataFrame({
        "min_price": grouped.min().astype("int64"),
        "avg_price": (grouped.mean() / 100).round().astype("int64") * 100,
    })


# ------------------------------------------------------------------------------------- users

def build_users(schools: pd.DataFrame, n_users: int, window_start: datetime,
                rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Users and their (hidden) category affinities; preferred_categories are the stated top ones."""
    level_weight = schools["level"].map({"초": 1.3, "중": 1.0, "고": 0.8}).to_numpy()
    weights = level_weight * rng.gamma(10.0, 1.0, len(schools))
    school_idx = rng.choice(len(schools), size=n_users, p=weights / weights.sum())
    levels = schools["level"].to_numpy()[school_idx]
    ages = np.array([rng.integers(LEVEL_AGES[lv][0], LEVEL_AGES[lv][1] + 1) for lv in levels])
    affinity, preferred = _category_affinity(ages, rng)
    districts = [district_of(d) for d in schools["district"].to_numpy()[school_idx]]
    allowance = np.array([d.allowance for d in districts])
    has_card = rng.random(n_users) < 0.85
    balance = np.round(allowance * rng.uniform(0.5, 40.0, n_users) / 100).astype(np.int64) * 100
    created = [window_start - timedelta(days=float(x)) for x in rng.uniform(1, 540, n_users)]
    users = pd.DataFrame({
        "user_id": [f"user_{i + 1}" for i in range(n_users)],
        "age": ages.astype(np.int64),
        "school_id": schools["school_id"].to_numpy()[school_idx],
        "preferred_categories": preferred,
        "allergies": _allergies(n_users, rng),
        "has_meal_card": has_card,
        "meal_card_name": [d.card_name if c else None for d, c in zip(districts, has_card)],
        "meal_card_balance": np.where(has_card, balance, 0).astype(np.int64),
        "per_meal_allowance": allowance.astype(np.int64),
        "created_at": pd.to_datetime(created).floor("s"),
    })
    return users, affinity


def _category_affinity(ages: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[list[str]]]:
    """Per-user log-affinity over CATEGORIES: age prior + personal noise, peaked on stated favourites."""
    kid = np.log([KID_TASTE[c] for c in CATEGORIES])
    teen = np.log([TEEN_TASTE[c] for c in CATEGORIES])
    t = np.clip((ages - 9) / 8.0, 0.0, 1.0)[:, None]
    raw = 1.5 * ((1 - t) * kid + t * teen) + rng.normal(0, 1.0, (len(ages), len(CATEGORIES)))
    n_pref = rng.choice([1, 2, 3], size=len(ages), p=[0.3, 0.45, 0.25])
    # Children name their favourites a little noisily, so stated != exact top of the affinity.
    ranked = np.argsort(-(raw + rng.normal(0, 0.3, raw.shape)), axis=1)
    preferred_mask = np.zeros_like(raw, dtype=bool)
    preferred = []
    for i, k in enumerate(n_pref):
        preferred_mask[i, ranked[i, :k]] = True
        preferred.append([CATEGORIES[j] for j in ranked[i, :k]])
    affinity = raw + 0.8 * preferred_mask
    return affinity - affinity.mean(axis=1, keepdims=True), preferred


def _allergies(n_users: int, rng: np.random.Generator) -> list[list[str]]:
    out: list[list[str]] = []
    has = rng.random(n_users) < 0.15
    count = np.where(rng.random(n_users) < 0.7, 1, 2)
    for flag, k in zip(has, count):
        if not flag:
            out.append([])
            continue
        picks = rng.choice(len(USER_ALLERGENS), size=k, replace=False, p=USER_ALLERGEN_P)
        out.append([USER_ALLERGENS[j] for j in sorted(picks)])
    return out


def build_world(n_schools: int, n_shops: int, n_users: int, window_start: datetime,
                rng: np.random.Generator) -> tuple[World, np.ndarray]:
    schools, dongs = build_schools(n_schools, rng)
    shops = build_shops(schools, dongs, n_shops, rng)
    menus = build_menus(shops, rng)
    shops = shops.join(menu_price_stats(menus), on="shop_id")
    users, affinity = build_users(schools, n_users, window_start, rng)
    return World(schools=schools, shops=shops, menus=menus, users=users), affinity


class SchoolDistances:
    """(n_schools, n_shops) walking-distance proxy in km, one school's row at a time.

    The simulator reads it row by row; a national world (thousands of schools x hundreds of
    thousands of shops) would need tens of GB as one dense matrix. Each row is computed with the
    same per-element operations as the dense form.
    """

    def __init__(self, schools: pd.DataFrame, shops: pd.DataFrame) -> None:
        self._lat1 = np.radians(schools["lat"].to_numpy()[:, None])
        self._lon1 = np.radians(schools["lon"].to_numpy()[:, None])
        self._cos1 = np.cos(self._lat1)
        self._lat2 = np.radians(shops["lat"].to_numpy()[None, :])
        self._lon2 = np.radians(shops["lon"].to_numpy()[None, :])
        self._cos2 = np.cos(self._lat2)

    @property
    def shape(self) -> tuple[int, int]:
        return self._lat1.shape[0], self._lat2.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, school: int) -> np.ndarray:
        g = slice(school, school + 1)
        a = np.sin((self._lat2 - self._lat1[g]) / 2) ** 2 + self._cos1[g] * self._cos2 * np.sin(
            (self._lon2 - self._lon1[g]) / 2) ** 2
        return (EARTH_RADIUS_KM * 2 * np.arcsin(np.sqrt(a)))[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        dense = np.stack([self[g] for g in range(len(self))]) if len(self) else np.zeros(self.shape)
        return dense if dtype is None else dense.astype(dtype)


def distances_to_schools(schools: pd.DataFrame, shops: pd.DataFrame) -> SchoolDistances:
    """(n_schools, n_shops) walking-distance proxy in km, row by row (``dist[g]``)."""
    return SchoolDistances(schools, shops)
