"""ShopNames finds exactly the names a scan over every name would, in the same order."""
from __future__ import annotations

import random

from naviyam.nlg.grounding import check_grounding
from naviyam.shop_names import ShopNames


def test_found_in_equals_a_scan_over_every_name():
    rng = random.Random(3)
    syllables = "김밥치킨떡볶이분식피자행복한우리동네역삼점"
    names = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 6))) for _ in range(400)]
    index = ShopNames(names)
    for _ in range(300):
        text = "".join(rng.choice(syllables + " ,.") for _ in range(rng.randint(0, 60)))
        scanned = list(dict.fromkeys(n for n in names if n in text))
        assert index.found_in(text) == scanned


def test_it_reads_as_the_tuple_of_names():
    index = ShopNames(["행복한치킨", "하늘식당"])
    assert list(index) == ["행복한치킨", "하늘식당"] and len(index) == 2 and "하늘식당" in index


def test_grounding_flags_an_unrecommended_shop_with_either_form():
    text = "하늘식당 가 봐요!"
    assert not check_grounding(text, [], ["하늘식당", "행복한치킨"]).ok
    assert not check_grounding(text, [], ShopNames(["하늘식당", "행복한치킨"])).ok
    assert check_grounding("치킨 먹어요", [], ShopNames(["하늘식당"])).ok
