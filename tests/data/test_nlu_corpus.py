"""The labelled NLU corpus: shape, variety, held-out construction and label consistency."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from naviyam.data.nlu_corpus import (
    apply_josa, build_nlu_corpus, korean_number, make_pools, render, spell_won, split_templates,
)
from naviyam.nlu import phrasebook as pb
from naviyam.nlu.budget import parse_budget
from naviyam.nlu.entities import tag_entities
from naviyam.nlu.followup import detect_followup
from naviyam.nlu.shops import ShopMatcher
from naviyam.schemas import Entities, FollowUp, Intent


def _read(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    summary = build_nlu_corpus(out, seed=5, n_train=800, n_test=300)
    return summary, _read(out / "nlu_train.jsonl"), _read(out / "nlu_test.jsonl")


def test_files_and_row_shape(corpus):
    summary, train, test = corpus
    assert (summary["n_train"], summary["n_test"]) == (len(train), len(test)) == (800, 300)
    for row in train + test:
        assert set(row) == {"text", "intent", "entities", "followup"}
        assert row["text"] and Intent(row["intent"]) and FollowUp(row["followup"])
        assert set(row["entities"]) == set(Entities.model_fields)
        Entities(**row["entities"])
    assert set(Counter(r["intent"] for r in train)) == {i.value for i in Intent}
    assert set(Counter(r["intent"] for r in test)) == {i.value for i in Intent}


def test_same_seed_same_corpus(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_nlu_corpus(a, seed=9, n_train=100, n_test=50)
    build_nlu_corpus(b, seed=9, n_train=100, n_test=50)
    assert (a / "nlu_train.jsonl").read_bytes() == (b / "nlu_train.jsonl").read_bytes()
    assert (a / "nlu_test.jsonl").read_bytes() == (b / "nlu_test.jsonl").read_bytes()


def test_enough_templates_per_intent():
    for intent, templates in pb.TEMPLATES.items():
        assert len(set(templates)) == len(templates), intent
        assert len(templates) >= 25, intent


def test_test_split_is_held_out_by_construction(corpus):
    _, train, test = corpus
    for templates in pb.TEMPLATES.values():
        train_t, test_t = split_templates(templates)
        assert train_t and test_t and not set(train_t) & set(test_t)
    assert not {r["text"] for r in test} & {r["text"] for r in train}
    # Some test fillers are words the train split never uses.
    train_pools, test_pools = make_pools(random.Random(5))
    for name, held in test_pools.held_out.items():
        assert not set(held) & set(train_pools.words[name]), name
    held_shops = set(test_pools.held_out["shops"])
    assert held_shops & {r["entities"]["shop_name"] for r in test}


def test_child_style_noise_is_present(corpus):
    _, train, _ = corpus
    texts = [r["text"] for r in train]
    assert sum(" " not in t and len(t) > 8 for t in texts) > 30           # missing spaces
    assert sum(any(s in t for s in ("ㅋㅋ", "ㅠㅠ", "ㅎㅎ")) for t in texts) > 50
    assert sum(any(ord(ch) > 0x1F000 for ch in t) for t in texts) > 20   # emoji


def test_gold_labels_agree_with_the_tagger(corpus, preprocessor):
    """Gold comes from the fillers; on the corpus the tagger must read (nearly) the same."""
    _, train, _ = corpus
    matcher = ShopMatcher(sorted({r["entities"]["shop_name"] for r in train} - {None}))
    agree: Counter = Counter()
    for row in train:
        p = preprocessor(row["text"])
        hit = matcher.find(p.cleaned_text, fuzzy=False) if row["entities"]["shop_name"] else None
        read = tag_entities(p, hit).entities.model_dump(mode="json")
        for field, gold in row["entities"].items():
            agree[field] += read[field] == gold
        agree["followup"] += detect_followup(p.cleaned_text).value == row["followup"]
    for field, n in agree.items():
        # Typos and glued words make a few rows unreadable on purpose; the rest must agree.
        assert n / len(train) >= 0.97, (field, n / len(train))


def test_template_words_name_no_entity(preprocessor):
    """Entities come from slots only: template text itself must tag as nothing."""
    for templates in pb.TEMPLATES.values():
        for template in templates:
            literal = template
            for slot in ("{" + s for s in literal.split("{")[1:]):
                literal = literal.replace(slot[:slot.index("}") + 1], " ")
            literal = literal.replace("[", "").replace("]", "").replace("<", "").replace(">", "").replace("|", " ")
            entities = tag_entities(preprocessor(literal)).entities
            assert entities.food_category is None and entities.payment_method is None, template
            assert entities.budget is None and entities.time_slot is None and entities.location is None, template


@pytest.mark.parametrize("value", [500, 1000, 3500, 5000, 7000, 9500, 10000, 12000, 15000, 20000, 26000])
def test_every_spelling_parses_back(value):
    rng = random.Random(value)
    assert parse_budget(korean_number(value) + "원") == value
    for _ in range(20):
        assert parse_budget(spell_won(value, rng)) == value
        assert parse_budget(spell_won(value, rng, bare=True) + "으로 뭐 먹지") == value


def test_particles_follow_the_word():
    assert apply_josa("떡볶이(을)를 먹을래") == "떡볶이를 먹을래"
    assert apply_josa("치킨(을)를 먹을래") == "치킨을 먹을래"
    assert apply_josa("만원(으)로") == "만원으로" and apply_josa("피자(으)로") == "피자로"
    assert apply_josa("(이)랑", before="라면") == "이랑"


def test_render_records_gold_from_fillers():
    train_pools, _ = make_pools(random.Random(1))
    text, gold = render("{card} 되는 {menu} 추천해줘", train_pools, random.Random(2))
    assert gold["payment_method"] == "meal_card" and gold["food_category"] and gold["menu_item"]
    assert gold["menu_item"].replace(" ", "") in text.replace(" ", "")
