"""The synthetic data generator: layout, realism, reproducibility and the hidden truth model."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from naviyam import lexicon
from naviyam.config import Settings
from naviyam.data.catalog import Catalog, DataNotBuiltError, haversine_km
from naviyam.data.generate import SCHEMAS, build_dataset, load_events, load_truth, truth_scores
from naviyam.data.world import LEVEL_AGES, LEVEL_SUFFIX
from naviyam.schemas import CATEGORIES, TimeSlot, time_slot_of

SMALL = {"n_schools": 4, "n_shops": 120, "n_users": 200}
CATALOG_COLUMNS = {  # from the naviyam.data.catalog docstring
    "schools": ["school_id", "name", "level", "district", "address", "lat", "lon"],
    "shops": ["shop_id", "name", "category", "school_id", "address", "district", "lat", "lon", "open_time",
              "close_time", "phone", "accepts_meal_card", "is_good_influence_shop", "rating", "view_count",
              "order_count", "min_price", "avg_price"],
    "menus": ["menu_id", "shop_id", "name", "price", "allergens", "is_signature"],
    "users": ["user_id", "age", "school_id", "preferred_categories", "allergies", "has_meal_card",
              "meal_card_name", "meal_card_balance", "per_meal_allowance", "created_at"],
    "events": ["event_id", "user_id", "shop_id", "event_type", "timestamp", "session_id", "position",
               "time_slot", "rating", "order_amount"],
}
LEXICON_ALLERGENS = {a for menus in lexicon.MENUS.values() for *_, al in menus.values() for a in al}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Settings, dict]:
    settings = Settings(home=tmp_path_factory.mktemp("small"))
    return settings, build_dataset(settings, **SMALL)


@pytest.fixture(scope="module")
def small_catalog(small) -> Catalog:
    return Catalog.load(small[0].data_dir)


@pytest.fixture(scope="module")
def small_events(small) -> pd.DataFrame:
    return load_events(small[0].data_dir)


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Settings, dict]:
    """The default-size data set, built once (the build must stay well under a minute)."""
    settings = Settings(home=tmp_path_factory.mktemp("full"))
    return settings, build_dataset(settings)


# ------------------------------------------------------------------------------------ layout

@pytest.mark.parametrize("table", list(CATALOG_COLUMNS))
def test_tables_have_catalog_columns_and_types(small, table):
    data_dir = small[0].data_dir
    schema = pq.read_schema(data_dir / f"{table}.parquet")
    assert schema.names == CATALOG_COLUMNS[table]
    for f in SCHEMAS[table]:
        assert schema.field(f.name).type == f.type, f.name


def test_pandas_dtypes_on_read(small):
    data_dir = small[0].data_dir
    users = pd.read_parquet(data_dir / "users.parquet")
    events = pd.read_parquet(data_dir / "events.parquet")
    assert pd.api.types.is_datetime64_any_dtype(users["created_at"])
    assert pd.api.types.is_datetime64_any_dtype(events["timestamp"])
    assert str(events["order_amount"].dtype) == "Int64"
    assert events["rating"].dtype == np.float64
    assert (data_dir / "truth" / "params.json").exists()


def test_catalog_loads_and_builds_models(small, small_catalog):
    cat = small_catalog
    shop = cat.shop("shop_0001")
    assert shop.menus and shop.min_price == min(m.price for m in shop.menus)
    assert cat.user("user_1") is not None and cat.user("user_999999") is None
    no_card = cat.users.loc[~cat.users["has_meal_card"], "user_id"]
    assert len(no_card) and cat.user(no_card.iloc[0]).meal_card_name is None
    assert cat.school_location(shop.school_id)


def test_summary_counts_match_files(small, small_catalog, small_events):
    summary = small[1]
    assert summary["shops"] == len(small_catalog.shops) == SMALL["n_shops"]
    assert summary["users"] == len(small_catalog.users) == SMALL["n_users"]
    assert summary["schools"] == SMALL["n_schools"]
    assert summary["events"] == len(small_events)
    assert sum(summary["event_types"].values()) == len(small_events)


def test_missing_data_raises(tmp_path):
    with pytest.raises(DataNotBuiltError):
        load_events(tmp_path)
    with pytest.raises(DataNotBuiltError):
        load_truth(tmp_path)


# ----------------------------------------------------------------------------- determinism

def _file_bytes(data_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(small, tmp_path):
    again = Settings(home=tmp_path / "again")
    build_dataset(again, **SMALL)
    first, second = _file_bytes(small[0].data_dir), _file_bytes(again.data_dir)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_other_seed_gives_other_data(small, tmp_path):
    other = Settings(home=tmp_path / "other", seed=small[0].seed + 1)
    build_dataset(other, **SMALL)
    a = pd.read_parquet(small[0].data_dir / "shops.parquet")
    b = pd.read_parquet(other.data_dir / "shops.parquet")
    assert not a["name"].equals(b["name"])


# ------------------------------------------------------------------------------ world facts

def test_id_formats(small_catalog, small_events):
    cat = small_catalog
    assert all(re.fullmatch(r"school_\d{2}", x) for x in cat.schools["school_id"])
    assert all(re.fullmatch(r"shop_\d{4}", x) for x in cat.shops["shop_id"])
    assert list(cat.users["user_id"]) == [f"user_{i}" for i in range(1, SMALL["n_users"] + 1)]
    assert small_events["event_id"].str.fullmatch(r"evt_\d+").all()
    assert small_events["event_id"].is_unique
    assert cat.menus["menu_id"].is_unique


def test_schools_are_korean_and_placed_in_seoul_or_gyeonggi(full):
    schools = Catalog.load(full[0].data_dir).schools
    assert schools["name"].is_unique
    for row in schools.itertuples():
        assert row.name.endswith(LEVEL_SUFFIX[row.level])
        assert row.address.startswith(("서울특별시 ", "경기도 ")) and row.district in row.address
    assert schools["lat"].between(37.2, 37.7).all() and schools["lon"].between(126.7, 127.2).all()
    assert schools["district"].nunique() >= 6
    assert set(schools["level"]) == {"초", "중", "고"}


def test_shops_are_realistic(small_catalog):
    cat = small_catalog
    shops = cat.shops
    assert set(shops["category"]) <= set(CATEGORIES)
    assert shops["name"].is_unique
    assert shops["open_time"].str.fullmatch(r"\d{2}:\d{2}").all()
    assert shops["close_time"].str.fullmatch(r"\d{2}:\d{2}").all()
    assert shops["phone"].str.fullmatch(r"0\d{1,2}-\d{3,4}-\d{4}").all()
    assert shops["rating"].between(3.0, 5.0).all()
    assert (shops["rating"] * 10).round(6).mod(1).eq(0).all()
    school = cat.schools.loc[shops["school_id"]]
    dist = haversine_km(school["lat"].to_numpy(), school["lon"].to_numpy(), shops["lat"].to_numpy(),
                        shops["lon"].to_numpy())
    assert dist.max() <= 3.05 and np.mean(dist <= 1.5) >= 0.6


def test_menus_follow_the_lexicon(small_catalog):
    cat = small_catalog
    menus = cat.menus.merge(cat.shops[["shop_id", "category"]].reset_index(drop=True), on="shop_id")
    for row in menus.itertuples():
        low, high, allergens = lexicon.MENUS[row.category][row.name]
        assert low <= row.price <= high and row.price % 500 == 0
        assert list(row.allergens) == list(allergens)
    per_shop = menus.groupby("shop_id")
    assert per_shop.size().between(4, 8).all()
    assert per_shop["is_signature"].sum().between(1, 2).all()
    stats = per_shop["price"].agg(["min", "mean"])
    shops = cat.shops.loc[stats.index]
    assert (shops["min_price"] == stats["min"]).all()
    assert (np.abs(shops["avg_price"] - stats["mean"]) <= 50).all()


def test_shares_are_plausible(full):
    shops = pd.read_parquet(full[0].data_dir / "shops.parquet")
    assert 0.62 <= shops["accepts_meal_card"].mean() <= 0.80
    assert 0.08 <= shops["is_good_influence_shop"].mean() <= 0.16
    shares = shops["category"].value_counts(normalize=True)
    assert set(shares.index) == set(CATEGORIES)
    assert shares.nlargest(5).index.isin(["분식", "치킨", "한식", "편의점", "카페·디저트"]).all()
    by_cat = shops.groupby("category")["accepts_meal_card"].mean()
    assert by_cat["편의점"] > by_cat["양식"] and by_cat["분식"] > by_cat["치킨"]


def test_users_are_consistent(small_catalog):
    cat = small_catalog
    users = cat.users
    level = cat.schools.loc[users["school_id"], "level"].to_numpy()
    for age, lv in zip(users["age"], level):
        low, high = LEVEL_AGES[lv]
        assert low <= age <= high
    assert users["preferred_categories"].map(len).between(1, 3).all()
    assert all(set(p) <= set(CATEGORIES) for p in users["preferred_categories"])
    assert all(set(a) <= LEXICON_ALLERGENS for a in users["allergies"])
    card = users["has_meal_card"]
    assert users.loc[card, "meal_card_name"].isin(lexicon.MEAL_CARD_NAMES).all()
    assert users.loc[~card, "meal_card_name"].isna().all()
    assert (users.loc[~card, "meal_card_balance"] == 0).all()
    district = cat.schools.loc[users["school_id"], "district"].to_numpy()
    seoul = np.array([d.endswith("구") and " " not in d for d in district])
    assert (users["per_meal_allowance"].to_numpy()[seoul] == 9500).all()
    assert np.isin(users["per_meal_allowance"].to_numpy()[~seoul], [8000, 8500, 9000]).all()


def test_user_shares_are_plausible(full):
    users = pd.read_parquet(full[0].data_dir / "users.parquet")
    assert 0.80 <= users["has_meal_card"].mean() <= 0.90
    assert 0.10 <= (users["allergies"].map(len) > 0).mean() <= 0.20
    assert users["age"].between(8, 18).all()


# ---------------------------------------------------------------------------------- events

def test_events_reference_known_entities(small_catalog, small_events):
    ev = small_events
    assert ev["user_id"].isin(small_catalog.users.index).all()
    assert ev["shop_id"].isin(small_catalog.shops.index).all()
    assert set(ev["event_type"]) == {"view", "click", "order", "favorite", "rating"}
    assert ev["position"].between(0, 14).all()
    assert set(ev["time_slot"]) <= {t.value for t in TimeSlot}
    assert ev["timestamp"].is_monotonic_increasing
    assert ev["timestamp"].min() >= pd.Timestamp("2026-08-02")
    assert ev["timestamp"].max() < pd.Timestamp("2026-11-01")
    created = small_catalog.users.loc[ev["user_id"], "created_at"].to_numpy()
    assert (created < ev["timestamp"].to_numpy()).all()


def test_event_payloads(small_events):
    ev = small_events
    rated = ev["event_type"] == "rating"
    ordered = ev["event_type"] == "order"
    assert ev.loc[rated, "rating"].between(1, 5).all() and ev.loc[~rated, "rating"].isna().all()
    assert (ev.loc[ordered, "order_amount"] > 0).all() and ev.loc[~ordered, "order_amount"].isna().all()


def test_sessions_show_a_page_of_open_shops(small_catalog, small_events):
    views = small_events[small_events["event_type"] == "view"]
    per_session = views.groupby("session_id")
    assert per_session.size().max() <= 15
    assert not views.duplicated(["session_id", "position"]).any()
    assert not views.duplicated(["session_id", "shop_id"]).any()
    assert all(time_slot_of(ts).value == slot for ts, slot in zip(views["timestamp"], views["time_slot"]))
    from naviyam.filtering import is_open
    shops = small_catalog.shops
    sample = views.iloc[:: max(1, len(views) // 500)]
    for row in sample.itertuples():
        shop = shops.loc[row.shop_id]
        assert is_open(shop.open_time, shop.close_time, row.timestamp.strftime("%H:%M"))


def test_actions_follow_impressions(small_events):
    ev = small_events
    views = set(zip(*ev.loc[ev["event_type"] == "view", ["session_id", "shop_id"]].T.to_numpy()))
    clicks = set(zip(*ev.loc[ev["event_type"] == "click", ["session_id", "shop_id"]].T.to_numpy()))
    orders = ev.loc[ev["event_type"] == "order", ["session_id", "shop_id"]]
    assert clicks <= views
    assert set(zip(orders["session_id"], orders["shop_id"])) <= clicks
    assert not orders["session_id"].duplicated().any()   # at most one order per session


def test_popularity_counts_match_events(small_catalog, small_events):
    shops = small_catalog.shops
    counts = small_events.groupby(["shop_id", "event_type"]).size().unstack(fill_value=0)
    views = counts["view"].reindex(shops.index, fill_value=0)
    orders = counts["order"].reindex(shops.index, fill_value=0)
    assert (shops["view_count"] == views).all() and (shops["order_count"] == orders).all()


def test_click_through_rate_is_realistic(small):
    assert 0.12 <= small[1]["ctr"] <= 0.18


# ------------------------------------------------------------------------------------ truth

def test_truth_scores_are_elementwise_and_personal(small, small_catalog):
    data_dir = small[0].data_dir
    cat = small_catalog
    shop = "shop_0001"
    users = list(cat.users.index[cat.users["school_id"] == cat.shops.loc[shop, "school_id"]])
    scores = truth_scores(data_dir, users, [shop] * len(users), "after_school")
    assert scores.shape == (len(users),) and np.isfinite(scores).all()
    assert scores.std() > 0.8   # children disagree strongly about the same shop
    pair = truth_scores(data_dir, [users[0], users[1]], [shop, "shop_0002"], TimeSlot.AFTER_SCHOOL)
    assert pair[0] == pytest.approx(scores[0]) and pair[1] == pytest.approx(
        truth_scores(data_dir, [users[1]], ["shop_0002"], "after_school")[0])


def test_truth_depends_on_time_slot(small, small_catalog):
    chicken = small_catalog.shops.index[small_catalog.shops["category"] == "치킨"][:5]
    users = ["user_1"] * len(chicken)
    night = truth_scores(small[0].data_dir, users, list(chicken), "night")
    morning = truth_scores(small[0].data_dir, users, list(chicken), "morning")
    assert (night > morning).all()


def test_truth_rejects_unknown_ids(small):
    with pytest.raises(KeyError):
        truth_scores(small[0].data_dir, ["user_999999"], ["shop_0001"], "lunch")
    with pytest.raises(ValueError):
        truth_scores(small[0].data_dir, ["user_1", "user_2"], ["shop_0001"], "lunch")


def test_personal_signal_beats_popularity(full):
    """A crude personal scorer (stated favourites + walking distance) must beat raw popularity."""
    data_dir = full[0].data_dir
    cat = Catalog.load(data_dir)
    truth = load_truth(data_dir)
    shops = cat.shops.reset_index(drop=True)
    popularity = (shops["order_count"] + 0.1 * shops["view_count"]).to_numpy(dtype=float)
    rng = np.random.default_rng(0)
    gains = []
    for user_id in rng.choice(cat.users.index.to_numpy(), 150, replace=False):
        user = cat.users.loc[user_id]
        lat, lon = cat.school_location(user["school_id"])
        dist = haversine_km(lat, lon, shops["lat"].to_numpy(), shops["lon"].to_numpy())
        near = np.flatnonzero(dist <= 1.5)
        utility = truth.scores([user_id] * len(near), shops["shop_id"].to_numpy()[near], "after_school")
        liked = shops["category"].to_numpy()[near]
        personal = np.isin(liked, list(user["preferred_categories"])) - 0.5 * dist[near]
        top = lambda score: utility[np.argsort(-score)[:5]].mean()  # noqa: E731
        gains.append(top(personal) - top(popularity[near]))
    assert np.mean(gains) > 0.8


# ------------------------------------------------------------------------------ full size

def test_full_size_build(full):
    summary = full[1]
    assert summary["schools"] >= 20 and summary["shops"] >= 2000 and summary["users"] >= 5000
    assert summary["events"] >= 200_000
    assert summary["seconds"] < 60
    users = pd.read_parquet(full[0].data_dir / "users.parquet")
    assert "user_123" in set(users["user_id"])
