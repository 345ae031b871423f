"""The gazetteer: named places around every school district of the data set, and no false places."""
from __future__ import annotations

import pytest

from naviyam.data.catalog import haversine_km
from naviyam.data.world import DISTRICTS
from naviyam.dialogue.places import find_places, lookup


@pytest.mark.parametrize("district", DISTRICTS, ids=lambda d: d.name)
def test_every_dong_of_the_data_resolves_near_its_district(district):
    for dong in district.dongs:
        place = lookup(dong if dong.endswith("동") else f"{dong}동")
        assert place is not None, dong
        assert haversine_km(place.lat, place.lon, district.lat, district.lon) < 7, (dong, place)


@pytest.mark.parametrize("text, name", [
    ("강남역 근처", "강남역"), ("강남역에서", "강남역"), ("강남 쪽", "강남역"), ("홍대 앞", "홍대입구역"), ("잠실역", "잠실역"),
    ("정자역 근처", "정자역"), ("서현역", "서현역"), ("노원역", "노원역"), ("신림역 주변", "신림역"), ("발산역", "발산역"),
    ("불광역", "불광역"), ("영통역", "영통역"), ("정발산역", "정발산역"), ("죽전역", "죽전역"), ("역삼동", "역삼동"),
])
def test_stations_and_dongs_with_relations_and_particles(text, name):
    assert lookup(text).name == name


@pytest.mark.parametrize("text", ["학교", "학원", "집", "우리 동네", "동네", "여기", "거기", "근처", "뉴욕역"])
def test_generic_or_unknown_places_are_none(text):
    assert lookup(text) is None


@pytest.mark.parametrize("text, names", [
    ("홍대입구역 근처 분식집", ["홍대입구역"]), ("역삼동 떡볶이", ["역삼동"]), ("잠실 쪽 치킨", ["잠실역"]),
    ("코엑스에서 친구 만나", ["코엑스"]), ("신사임당 김밥 먹을래", []), ("삼성페이 되는 곳", []), ("상수도 공사", []),
    ("공덕을 쌓자", []), ("학교 앞 분식", []), ("이 근처 치킨", []), ("대치하다", []),
])
def test_mentions_in_free_text(text, names):
    assert [m.place.name for m in find_places(text)] == names


def test_coordinates_are_real_and_in_the_region():
    hongdae = lookup("홍대입구역")
    assert haversine_km(hongdae.lat, hongdae.lon, 37.5572, 126.9245) < 0.3
    for text in ("강남역", "잠실역", "정자역", "백석역", "죽전역", "광교호수공원", "롯데월드"):
        place = lookup(text)
        assert 37.0 < place.lat < 37.8 and 126.6 < place.lon < 127.3, place
