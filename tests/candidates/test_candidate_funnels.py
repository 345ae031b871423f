"""Each funnel on its own: hard constraints are never crossed, and each ranks by its own signal."""
from __future__ import annotations

import numpy as np
import pytest

from naviyam.candidates import CollaborativeFunnel, ContentFunnel, ContextualFunnel, PopularityFunnel
from naviyam.candidates.contextual import SLOTS
from naviyam.filtering import shop_mask
from naviyam.schemas import CATEGORIES, SearchFilters, TimeSlot

FUNNEL_TYPES = (PopularityFunnel, ContentFunnel, CollaborativeFunnel, ContextualFunnel)

FILTER_CASES = [
    SearchFilters(),
    SearchFilters(category="분식"),
    SearchFilters(meal_card=True),
    SearchFilters(max_price=4000),
    SearchFilters(allergies=["밀"]),
    SearchFilters(exclude_shop_ids=["s01", "s03", "s12"]),
    SearchFilters(max_distance_km=0.45, meal_card=True),
    SearchFilters(open_at="08:00"),
    SearchFilters(category="치킨", meal_card=True, prefer_good_influence=True),
    SearchFilters(shop_name="분식집"),
    SearchFilters(category="일식"),  # nothing matches
]


def build(kind, catalog, events, settings):
    if kind is ContentFunnel:
        return ContentFunnel(catalog, settings)
    return kind.build(catalog, events, settings)


def ids(pairs):
    return [sid for sid, _ in pairs]


# -- shared contract ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", FUNNEL_TYPES, ids=lambda k: k.name)
@pytest.mark.parametrize("filters", FILTER_CASES, ids=lambda f: ",".join(f.describe()) or "none")
@pytest.mark.parametrize("user_id", ["ua", "uf"])
def test_funnel_never_returns_a_disallowed_shop(kind, filters, user_id, catalog, events, settings, context, make_user):
    funnel = build(kind, catalog, events, settings)
    mask = shop_mask(catalog, filters, origin=(context.origin_lat, context.origin_lon))
    allowed_ids = set(catalog.shops["shop_id"][mask])
    for out in (
        funnel.generate(make_user(user_id), filters, context, limit=50),                 # computes the mask
        funnel.generate(make_user(user_id), filters, context, limit=50, allowed=mask),   # generator path
    ):
        assert set(ids(out)) <= allowed_ids
        assert len(ids(out)) == len(set(ids(out)))
        assert all(0.0 < s <= 1.0 for _, s in out)
        assert [s for _, s in out] == sorted((s for _, s in out), reverse=True)


@pytest.mark.parametrize("kind", FUNNEL_TYPES, ids=lambda k: k.name)
def test_funnel_honours_an_arbitrary_allowed_mask_and_limit(kind, catalog, events, settings, context, make_user):
    funnel = build(kind, catalog, events, settings)
    rng = np.random.default_rng(3)
    for _ in range(5):
        mask = rng.random(len(catalog.shops)) < 0.5
        out = funnel.generate(make_user("ub"), SearchFilters(), context, limit=3, allowed=mask)
        assert len(out) <= 3
        assert set(ids(out)) <= set(catalog.shops["shop_id"][mask])
    assert funnel.generate(make_user("ub"), SearchFilters(), context, limit=0) == []


# -- popularity --------------------------------------------------------------------------------
def test_popularity_orders_by_views_and_orders_within_reach(catalog, events, settings, context, make_user):
    out = PopularityFunnel.build(catalog, events, settings).generate(make_user(), SearchFilters(), context, limit=50)
    # s01-s03 get views and orders, s12/s04 only the CF users' few orders; s10 is the most popular
    # overall but 10 km away; shops without any traffic are not "popular" at all.
    assert ids(out) == ["s01", "s02", "s03", "s12", "s04"]


def test_popularity_falls_back_to_shop_counters_without_events(catalog, settings, context, make_user):
    out = PopularityFunnel.build(catalog, None, settings).generate(make_user(), SearchFilters(), context, limit=50)
    near = catalog.shops[catalog.shops["shop_id"] != "s10"]
    expected = near.assign(
        s=0.4 * np.log1p(near.view_count) / np.log1p(5000) + 0.6 * np.log1p(near.order_count) / np.log1p(2000)
    ).sort_values("s", ascending=False)["shop_id"].tolist()
    assert ids(out) == expected


def test_popularity_respects_max_distance_setting(catalog, events, settings, context, make_user):
    tight = settings.model_copy(update={"max_distance_km": 0.25})
    out = PopularityFunnel.build(catalog, events, tight).generate(make_user(), SearchFilters(), context, limit=50)
    assert ids(out) == ["s01"]


# -- content -----------------------------------------------------------------------------------
def test_content_prefers_preferred_categories(catalog, settings, context, make_user):
    funnel = ContentFunnel(catalog, settings)
    category = catalog.shops.set_index("shop_id")["category"]
    for prefs in (["분식"], ["베이커리", "카페·디저트"], ["한식"]):
        out = funnel.generate(make_user("new", prefs=prefs), SearchFilters(), context, limit=30)
        n_pref = int(catalog.shops["category"].isin(prefs).sum())
        top = [category[sid] for sid in ids(out)[:n_pref]]
        assert top and all(cat in prefs for cat in top), (prefs, ids(out))


def test_content_boosts_good_influence_only_when_asked(catalog, settings, context, make_user):
    funnel = ContentFunnel(catalog, settings)
    plain = dict(funnel.generate(make_user("new", prefs=[]), SearchFilters(), context, limit=30))
    asked = dict(funnel.generate(make_user("new", prefs=[]), SearchFilters(prefer_good_influence=True), context, limit=30))
    good = set(catalog.shops["shop_id"][catalog.shops["is_good_influence_shop"]]) - {"s10"}
    top_asked = sorted(asked, key=asked.get, reverse=True)[: len(good)]
    assert set(top_asked) == good
    assert sorted(plain, key=plain.get, reverse=True)[: len(good)] != top_asked


def test_content_price_fit_follows_the_budget(catalog, settings, context, make_user):
    funnel = ContentFunnel(catalog, settings)
    rich = dict(funnel.generate(make_user("new", prefs=[], per_meal_allowance=30000), SearchFilters(), context, 30))
    poor = dict(funnel.generate(make_user("new", prefs=[], per_meal_allowance=4000), SearchFilters(), context, 30))
    # s04 (pizza, cheapest menu 12,000) fits a 30,000 budget but not a 4,000 one.
    assert rich["s04"] > poor["s04"]
    # The convenience store (menus 1,500 / 4,500 won) fits both budgets equally well.
    assert rich["s05"] == pytest.approx(poor["s05"])


def test_content_stays_within_walking_reach(catalog, settings, context, make_user):
    out = ContentFunnel(catalog, settings).generate(make_user("new", prefs=["치킨"]), SearchFilters(), context, 30)
    assert "s10" not in ids(out)
    assert ids(out)[0] == "s01"


# -- collaborative -----------------------------------------------------------------------------
def test_collaborative_recommends_what_similar_users_liked(catalog, events, settings, context, make_user):
    out = CollaborativeFunnel.build(catalog, events, settings).generate(make_user("ua"), SearchFilters(), context, 25)
    assert "s12" in ids(out)                               # ub and uc love it; ua never tried it
    assert not {"s04", "s09"} & set(ids(out))              # the other taste group's shops
    assert ids(out)[0] == "s12"                            # most-voted by the closest neighbours


def test_collaborative_returns_nothing_for_new_users(catalog, events, settings, context, make_user):
    funnel = CollaborativeFunnel.build(catalog, events, settings)
    assert funnel.generate(make_user("never-seen", prefs=["치킨"]), SearchFilters(), context, 25) == []
    assert "cold_start" in funnel.empty_reason(make_user("never-seen"))
    assert CollaborativeFunnel.build(catalog, None, settings).generate(make_user("ua"), SearchFilters(), context, 25) == []


def test_collaborative_uses_only_the_nearest_neighbours(catalog, events, settings, context, make_user):
    one = settings.model_copy(update={"neighbours": 1})
    out = CollaborativeFunnel.build(catalog, events, one).generate(make_user("ud"), SearchFilters(), context, 25)
    assert set(ids(out)) == {"s04", "s09"}


# -- contextual --------------------------------------------------------------------------------
def test_contextual_prefers_open_near_shops(catalog, settings, make_user, make_context):
    funnel = ContextualFunnel.build(catalog, None, settings)
    scores = dict(funnel.generate(make_user(), SearchFilters(), make_context(15, 30), limit=20))
    assert scores["s02"] > scores["s11"]   # both 분식 ~0.3 vs 0.6 km; s11 is closed after 09:00
    assert scores["s03"] > scores["s08"]   # 한식 0.5 km vs 중식 1.5 km, both open, similar prior
    assert "s10" not in scores             # beyond walking reach
    assert ids(funnel.generate(make_user(), SearchFilters(), make_context(15, 30), limit=20))[0] in {"s02", "s05"}


def test_contextual_follows_the_time_slot(catalog, settings, make_user, make_context):
    funnel = ContextualFunnel.build(catalog, None, settings)
    category = catalog.shops.set_index("shop_id")["category"]
    morning = ids(funnel.generate(make_user(), SearchFilters(), make_context(8, 0), limit=3))
    night = ids(funnel.generate(make_user(), SearchFilters(), make_context(22, 0), limit=3))
    assert {category[s] for s in morning} <= {"베이커리", "편의점", "도시락", "분식"}
    assert {category[s] for s in night} <= {"치킨", "피자", "편의점"}
    assert "s04" in night                   # pizza 1 km away, open until 02:00


def test_contextual_slot_prior_learns_from_the_log(catalog, events, settings):
    lunch, after_school = SLOTS.index(TimeSlot.LUNCH), SLOTS.index(TimeSlot.AFTER_SCHOOL)
    hand = ContextualFunnel.build(catalog, None, settings).state()["prior"]
    learnt = ContextualFunnel.build(catalog, events, settings).state()["prior"]
    # After school the log has >100 orders (mostly chicken): blended in. Lunch has 15 orders, below
    # MIN_SLOT_EVENTS: the hand prior stays.
    chicken = CATEGORIES.index("치킨")
    assert learnt[after_school, chicken] > hand[after_school, chicken]
    assert np.array_equal(learnt[lunch], hand[lunch])
    learnt = ContextualFunnel.build(catalog, events.loc[events.index.repeat(5)], settings).state()["prior"]
    assert not np.array_equal(learnt[lunch], hand[lunch])
    assert (learnt >= 0).all() and (learnt <= 1).all()


def test_funnels_realign_saved_state_to_a_reordered_catalog(catalog, events, settings, context, make_user, fresh_catalog):
    shuffled = fresh_catalog()
    shuffled.shops = shuffled.shops.iloc[::-1]
    for kind in (PopularityFunnel, CollaborativeFunnel, ContextualFunnel):
        original = kind.build(catalog, events, settings)
        moved = kind.from_state(shuffled, settings, original.state())
        assert original.generate(make_user("ua"), SearchFilters(), context, 50) == moved.generate(
            make_user("ua"), SearchFilters(), context, 50)

