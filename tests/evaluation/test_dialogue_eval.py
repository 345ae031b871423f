"""The conversation corpus and its checker: well-formed, split, disjoint from training, checks that bite."""
from __future__ import annotations

import json

import pytest

from naviyam.config import Settings
from naviyam.dialogue.state import DialogueState
from naviyam.evaluation.dialogue import CORPUS_DIR, check_turn, load_corpus, open_at


@pytest.fixture(scope="module")
def corpus():
    return {split: load_corpus(CORPUS_DIR / f"{split}.jsonl") for split in ("dev", "test")}


def test_corpus_size_split_and_gold_states(corpus):
    assert sum(len(c) for c in corpus.values()) >= 150
    ids = [c["id"] for split in corpus.values() for c in split]
    assert len(ids) == len(set(ids))
    dev_texts = {t["text"] for c in corpus["dev"] for t in c["turns"]}
    test_texts = {t["text"] for c in corpus["test"] for t in c["turns"]}
    # Short fragments ("고마워", "5분 이내") may recur across splits; whole conversations do not.
    assert len(dev_texts & test_texts) <= 0.1 * len(test_texts)
    dev_convs = {tuple(t["text"] for t in c["turns"]) for c in corpus["dev"]}
    assert not dev_convs & {tuple(t["text"] for t in c["turns"]) for c in corpus["test"]}
    for split in corpus.values():
        for conv in split:
            for turn in conv["turns"]:
                assert set(turn["state"]) <= set(DialogueState(category="치킨", menu_items=["x"], budget=1, party_size=2,
                                                               meal_card=True, good_shop=True, allergens=["우유"],
                                                               not_spicy=True, time="now", walk_max_min=5,
                                                               sort="nearest").goal()) | {"place"}, turn


def test_corpus_is_disjoint_from_the_training_corpus(corpus):
    train = Settings.load().data_dir / "nlu" / "nlu_train.jsonl"
    if not train.exists():
        pytest.skip(f"no built NLU corpus at {train} (run `make build`); disjointness not checked")
    seen = {json.loads(line)["text"].replace(" ", "") for line in train.read_text(encoding="utf-8").splitlines()}
    ours = {t["text"].replace(" ", "") for split in corpus.values() for c in split for t in c["turns"]}
    overlap = ours & seen
    assert len(overlap) <= 0.02 * len(ours), sorted(overlap)[:20]


REC = {"shop_id": "s1", "name": "행복분식", "category": "분식", "accepts_meal_card": True, "is_good_influence_shop": False,
       "walk_minutes": 12, "opening_hours": "10:00-21:00", "address": "서울 어딘가 1",
       "menus": [{"name": "떡볶이", "price": 4000, "allergens": ["밀"]}, {"name": "치즈떡볶이", "price": 5000,
                                                                     "allergens": ["밀", "우유"]}]}


@pytest.mark.parametrize("check, ok", [
    ({"cat": "분식"}, True), ({"cat": "치킨"}, False), ({"card": True}, True), ({"good": True}, False),
    ({"item_max": 4000}, True), ({"item_max": 3000}, False), ({"allergen_free": ["우유"]}, False),
    ({"allergen_free": ["달걀"]}, True), ({"walk_max": 15}, True), ({"walk_max": 10}, False),
    ({"open_at": "20:30"}, True), ({"open_at": "21:30"}, False), ({"menu_has": "떡볶이"}, True),
    ({"recs_max": 0}, False), ({"text_any": ["분식"]}, True), ({"text_none": ["행복"]}, False),
])
def test_checks(check, ok):
    answer = {"response": "행복분식을 추천해요", "recommendations": [REC]}
    assert (check_turn(check, answer, {}, {"s1": (37.5, 127.0)}) == []) is ok


def test_reference_checks_look_at_the_previous_answer():
    previous = {"recommendations": [REC, {**REC, "shop_id": "s2", "name": "두번째집", "opening_hours": "11:00-20:00"}]}
    good = {"response": "두번째집은 11:00에 열고 20:00까지 해요", "recommendations": []}
    assert check_turn({"ref_name": 2, "ref_open": 2, "ref_close": -1}, good, previous, {}) == []
    assert check_turn({"ref_name": 1}, good, previous, {})
    assert check_turn({"ref_name": 3}, good, previous, {})


def test_empty_list_fails_a_shop_check_unless_counts_are_asked():
    empty = {"response": "없어요", "recommendations": []}
    assert check_turn({"cat": "분식"}, empty, {}, {}) and not check_turn({"cat": "분식", "recs_max": 5}, empty, {}, {})


def test_opening_hours_past_midnight():
    assert open_at("17:00-02:00", "01:30") and not open_at("17:00-02:00", "03:00")
