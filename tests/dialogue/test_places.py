"""The gazetteer: named places around every school district of the data set, and no false places."""
from __future__ import annotations

import time

import pytest

from naviyam.data.catalog import haversine_km
from naviyam.data.world import DISTRICTS
from naviyam.dialogue.places import PLACES, find_places, is_known_place_word, lookup


def test_every_place_is_real_and_in_the_region():
    for place in PLACES:
        assert 37.0 < place.lat < 37.8 and 126.6 < place.lon < 127.3, place
        assert place.kind in ("station", "dong", "landmark", "district"), place
        # A typo in a coordinate lands far from every district the data covers.
        nearest = min(haversine_km(place.lat, place.lon, d.lat, d.lon) for d in DISTRICTS)
        assert nearest < 8, (place, nearest)


def test_every_canonical_name_finds_its_own_place():
    assert len({p.name for p in PLACES}) == len(PLACES)
    for place in PLACES:
        assert lookup(place.name) == place


@pytest.mark.parametrize("district", DISTRICTS, ids=lambda d: d.name)
def test_every_dong_of_the_data_resolves_near_its_district(district):
    for dong in district.dongs:
        name = dong if dong.endswith("동") else f"{dong}동"
        place = lookup(name)
        assert place is not None and place.kind == "dong" and place.name == name, dong
        assert haversine_km(place.lat, place.lon, district.lat, district.lon) < 6, (dong, place)
        assert [m.place for m in find_places(f"{name} 떡볶이")] == [place]


@pytest.mark.parametrize("name, lat, lon", [
    ("홍대입구역", 37.5572, 126.9245), ("강남역", 37.4979, 127.0276), ("잠실역", 37.5133, 127.1001),
])
def test_known_coordinates(name, lat, lon):
    place = lookup(name)
    assert haversine_km(place.lat, place.lon, lat, lon) < 0.3


@pytest.mark.parametrize("station", ["강남역", "홍대입구역", "잠실역", "정자역", "서현역", "노원역", "신림역", "발산역",
                                     "불광역", "영통역", "정발산역", "죽전역"])
def test_stations_resolve_with_relations_and_particles(station):
    for text in (station, f"{station} 근처", f"{station}에서", f"{station} 앞", f"{station[:-1]} 쪽", station[:-1]):
        place = lookup(text)
        assert place is not None and place.name == station and place.kind == "station", text
    assert [m.place.name for m in find_places(f"{station} 근처 떡볶이")] == [station]


@pytest.mark.parametrize("text, name", [
    ("강남역 근처", "강남역"), ("강남역에서", "강남역"), ("강남 쪽", "강남역"), ("홍대 앞", "홍대입구역"),
    ("홍대", "홍대입구역"), ("잠실 쪽", "잠실역"), ("역삼동", "역삼동"), ("역삼", "역삼역"), ("역삼1동", "역삼동"),
    ("강남역 바로 앞에서", "강남역"), ("서울 강남역", "강남역"), ("분당 정자동", "정자동"), ("코엑스", "코엑스"),
    ("롯데월드", "롯데월드"), ("석촌호수 주변", "석촌호수"), ("광교호수공원", "광교호수공원"), ("서울대입구", "서울대입구역"),
    ("개포동", "개포동"), ("개포동역", "개포동역"), ("분당", "성남시 분당구"), ("일산", "고양시 일산동구"),
])
def test_lookup_variants(text, name):
    assert lookup(text).name == name


@pytest.mark.parametrize("text", ["학교", "학원", "집", "우리 집", "우리 동네", "동네", "여기", "거기", "근처", "이 근처",
                                  "학교 앞", "미술학원 근처", "뉴욕역", "뉴욕역 근처", ""])
def test_generic_or_unknown_places_are_none(text):
    assert lookup(text) is None
    assert not is_known_place_word(text)


@pytest.mark.parametrize("text, names", [
    ("홍대입구역 근처 분식집", ["홍대입구역"]), ("역삼동 떡볶이", ["역삼동"]), ("잠실 쪽 치킨", ["잠실역"]),
    ("잠실역 김밥", ["잠실역"]), ("잠실 치킨 먹고 싶어", ["잠실역"]), ("코엑스에서 친구 만나", ["코엑스"]),
    ("나홍대입구역근처야", ["홍대입구역"]), ("롯데월드 가는 길에", ["롯데월드"]), ("석촌호수 산책하고", ["석촌호수"]),
    ("합정 떡볶이", ["합정역"]), ("삼성 근처", ["삼성역"]), ("신사역 앞", ["신사역"]), ("방이동 치킨", ["방이동"]),
    ("오금 쪽에서", ["오금역"]), ("가락 근처 피자", ["가락동"]), ("문정에서 만나", ["문정역"]), ("상수 쪽", ["상수역"]),
    ("정자 근처", ["정자역"]), ("홍대 입구역", ["홍대입구역"]), ("역삼1동 김밥", ["역삼동"]),
    ("분당 정자동 떡볶이", ["정자동"]), ("강남역이랑 잠실역 중에", ["강남역", "잠실역"]),
])
def test_mentions_in_free_text(text, names):
    assert [m.place.name for m in find_places(text)] == names


@pytest.mark.parametrize("text", [
    "신사임당 김밥 먹을래", "삼성페이 되는 곳", "상수도 공사", "공덕을 쌓자", "대치하다", "대치 중이야", "학교 앞 분식",
    "이 근처 치킨", "우리 동네 피자", "새싹김밥 압구정점 어때", "든든분식나라 잠원점", "역삼초 앞", "잠실고 앞",
    "축구 중계에서 봤어", "교대로 먹자", "오리 먹을래", "오리고기", "망원경", "관악기 배워", "서울대 가고 싶어",
    "서울대공원", "강남대로", "강남스타일", "이하동문", "가방이 동생", "시장 지역", "이 지역 맛집", "신사 숙녀",
    "삼성 폰", "운동 끝나고", "정자 위에서", "대화에서 나온",
])
def test_ordinary_words_are_no_places(text):
    assert find_places(text) == []


def test_spans_point_into_the_text():
    text = "나 강남역 근처에 있는데 홍대 쪽도 괜찮아"
    found = find_places(text)
    assert [m.surface for m in found] == ["강남역", "홍대"]
    assert all(text[m.start:m.end] == m.surface for m in found)


def test_find_places_is_fast():
    text = "우리 강남역 근처에서 친구랑 떡볶이 먹을 건데 급식카드 되는 데 있어?"
    start = time.perf_counter()
    for _ in range(200):
        find_places(text)
    assert (time.perf_counter() - start) / 200 < 0.001
