"""LoRA trains on the good conversations the retrain pipeline collected (its ``lora_data``
artifact), not on whatever the event store holds when the task runs: the store only gives each
listed turn its logged context (intent, entities, the shops the answer showed)."""
from __future__ import annotations

import json
import uuid

import pytest

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.events import EventStore
from naviyam.llm.data import SyntheticConversations, conversation_from_interaction
from naviyam.llm.lora import prepare_data
from naviyam.llm.prompts import NLG_INSTRUCTION

INSTRUCTION = "아동~청소년 대상 음식 추천 챗봇으로 친근하고 이해하기 쉽게 답변해주세요."
ROWS = [{"text": t, "intent": "FOOD_RECOMMENDATION",
         "entities": {"food_category": c, "payment_method": "meal_card"}}
        for t, c in [("급식카드 되는 치킨집 추천해줘", "치킨"), ("급식카드로 떡볶이 먹을래", "분식"),
                     ("급식카드 되는 피자집 알려줘", "피자"), ("급식카드로 김밥 먹고 싶어", "분식")]]


@pytest.fixture(scope="module")
def built():
    from naviyam.build import build_data

    settings = Settings.load()
    build_data(settings)
    return settings, Catalog.load(settings.data_dir)


@pytest.fixture()
def logged(built, tmp_path):
    """An event store of grounded logged turns; returns (db, [(request_id, question, answer)])."""
    _, catalog = built
    names = catalog.shops["name"].tolist()
    db = tmp_path / "events.sqlite"
    store = EventStore(db)
    turns = []
    for i, conv in enumerate(SyntheticConversations(catalog).conversations(ROWS * 4, seed=5)):
        rid = uuid.uuid4().hex
        payload = {"request_id": rid, "user_id": "user_1", "user_input": conv.question, "final_response": conv.answer,
                   "extracted_info": {"intent": conv.nlu.intent.value, "confidence": 0.9,
                                      "entities": conv.nlu.entities.model_dump(mode="json")},
                   "shown_recommendations": [{"shop_id": r.shop_id, "rank": r.rank, "score": 0.5}
                                             for r in conv.recommendations],
                   "response_time": 0.8}
        if conversation_from_interaction(catalog, payload, names) is None:
            continue
        store.log_interaction(rid, "user_1", f"2026-08-01T12:{i:02d}:00", payload)
        turns.append((rid, conv.question, conv.answer))
    store.close()
    assert len(turns) >= 8
    return db, turns


def _samples(path, rows) -> str:
    path.write_text("".join(json.dumps({"instruction": INSTRUCTION, "input": q, "output": a, "request_id": rid},
                                       ensure_ascii=False) + "\n" for rid, q, a in rows), encoding="utf-8")
    return path


def _answers(data: dict) -> set[str]:
    return {ex.output for ex in data["train"] + data["val"] if ex.instruction == NLG_INSTRUCTION}


def test_trains_on_exactly_the_listed_conversations(built, logged, tmp_path, tiny_lora_settings):
    settings, _ = built
    db, turns = logged
    listed, unlisted = turns[:6], turns[6:]
    samples = _samples(tmp_path / "lora_data.jsonl", [
        *listed,
        (uuid.uuid4().hex, "급식카드 되는 치킨집 추천해줘", "없는 대화"),  # not in the store
        (listed[0][0], listed[0][1], listed[0][2] + "\n1,234원짜리도 있어요"),  # not grounded
    ])
    data = prepare_data(settings, db, tiny_lora_settings, samples=samples)
    assert data["data_source"] == "feedback" and data["n_feedback_good"] == len(listed)
    assert data["samples"] == str(samples) and data["n_samples"] == len(listed) + 2
    assert data["selection"] == {"good": len(listed), "no_logged_turn": 1, "not_grounded": 1}
    assert _answers(data) == {a for _, _, a in listed}            # train + val: the listed ones, all of them
    assert not _answers(data) & {a for _, _, a in unlisted}       # in the store, not collected: not learned


def test_too_few_listed_falls_back_to_synthetic_with_them(built, logged, tmp_path, tiny_lora_settings):
    settings, _ = built
    db, turns = logged
    few = turns[:2]                                               # below lora_min_good_conversations (4)
    data = prepare_data(settings, db, tiny_lora_settings, samples=_samples(tmp_path / "few.jsonl", few))
    assert data["data_source"] == "synthetic" and data["n_feedback_good"] == 2
    train_answers = {ex.output for ex in data["train"] if ex.instruction == NLG_INSTRUCTION}
    assert {a for _, _, a in few} <= train_answers
    assert not train_answers & {a for _, _, a in turns[2:]}

    empty = prepare_data(settings, db, tiny_lora_settings, samples=_samples(tmp_path / "none.jsonl", []))
    assert empty["data_source"] == "synthetic" and empty["n_feedback_good"] == 0 and empty["n_samples"] == 0


def test_the_pipeline_step_hands_its_lora_data_to_the_trainer(tmp_path, monkeypatch):
    from naviyam.llm.settings import llm_settings
    from pipelines import steps

    settings = steps.load_settings(str(tmp_path / "home"), "")
    llm_settings(settings).resolved_base_path(settings.models_dir).mkdir(parents=True)
    calls = []

    def fake_train(settings_, events_db, base_path, adapter_dir, init_from=None, *, samples=None, promote=True):
        calls.append({"events_db": events_db, "samples": samples, "promote": promote})
        return {"version": "lora-x", "path": str(adapter_dir / "lora-x"), "data_source": "feedback",
                "n_samples": 3, "n_feedback_good": 3, "metrics": {"val_perplexity": 5.0, "base_val_perplexity": 6.0}}

    monkeypatch.setattr(steps.retrain, "lora_trainer", lambda: fake_train)  # where train_lora_step looks it up
    samples = tmp_path / "lora_data"
    samples.write_text("", encoding="utf-8")
    out = steps.train_lora_step(settings, samples, tmp_path / "adapter")
    assert calls == [{"events_db": steps.store_path(settings), "samples": samples, "promote": False}]
    assert out["skipped"] is False and out["n_samples"] == 3 and out["adapter_subdir"] == "lora-x"
