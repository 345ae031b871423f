"""The shipped offline default: it loads like a mounted model, answers NLU in JSON, and LoRA on it
(synthetic bootstrap, then feedback + incremental) beats it on validation perplexity."""
from __future__ import annotations

import json
import uuid

import pytest

from naviyam.data.catalog import Catalog
from naviyam.events import EventStore
from naviyam.llm import load_llm, train_lora
from naviyam.llm.data import SyntheticConversations
from naviyam.llm.lora import good_conversations
from naviyam.llm.prompts import nlu_prompt
from naviyam.llm.settings import LLMSettings
from naviyam.llm.wrapper import LLM
from naviyam.nlg.grounding import check_grounding
from naviyam.nlg.llm import LLMAnswerer
from naviyam.nlg.templates import AnswerInput, allowed_amounts
from naviyam.nlu.llm import InvalidOutput, LLMNLU, parse_output
from naviyam.registry import registry_of
from naviyam.schemas import FeedbackEvent, Preprocessed

MESSAGES = ["급식카드 되는 치킨집 추천해줘", "떡볶이 먹고 싶어", "안녕 나비얌", "만원으로 뭐 먹을 수 있어?", "오늘 숙제 너무 많아"]


@pytest.fixture(scope="module")
def catalog(shipped):
    settings, _ = shipped
    return Catalog.load(settings.data_dir)


@pytest.fixture(scope="module")
def first_adapter(shipped, tmp_path_factory, tiny_lora_settings):
    settings, base = shipped
    root = tmp_path_factory.mktemp("adapters")
    return root, train_lora(settings, None, base, root, llm=tiny_lora_settings)


def test_shipped_default_is_a_small_gpt_neox_with_our_tokenizer(shipped):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, base = shipped
    meta = json.loads((base / "meta.json").read_text())
    assert meta["architecture"] == "GPTNeoXForCausalLM" and meta["parameters"] < 2_000_000
    assert meta["final_loss"] < meta["first_loss"] / 5
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    assert model.config.hidden_size == 128 and model.config.num_hidden_layers == 2
    ids = tokenizer("급식카드 되는 치킨집 추천해줘")["input_ids"]
    assert len(ids) <= 8 and tokenizer.decode(ids) == "급식카드 되는 치킨집 추천해줘"   # Korean words, not bytes


def test_shipped_default_answers_nlu_in_json(shipped):
    _, base = shipped
    llm = LLM(base)
    valid = 0
    for text in MESSAGES:
        gen = llm.complete(nlu_prompt(text), task="nlu", seed=0)
        try:
            parse_output(gen.text)
            valid += 1
        except InvalidOutput:
            pass
    assert valid >= 4
    nlu = LLMNLU(llm, min_confidence=0.0)
    result = nlu.parse(Preprocessed(original_text=MESSAGES[0], cleaned_text=MESSAGES[0]))
    assert result is None or result.backend == "llm"


def test_real_generation_goes_out_only_when_grounded(shipped, catalog):
    _, base = shipped
    llm = LLM(base)
    names = catalog.shops["name"].tolist()
    answerer = LLMAnswerer(llm, names)
    rows = [{"text": "급식카드 되는 치킨집 추천해줘", "intent": "FOOD_RECOMMENDATION",
             "entities": {"food_category": "치킨", "payment_method": "meal_card"}}]
    conv = SyntheticConversations(catalog).conversations(rows, seed=1)[0]
    inp = AnswerInput(nlu=conv.nlu, recommendations=conv.recommendations, profile=conv.profile)
    for _ in range(3):   # sampled at temperature 0.7: whatever comes out, only grounded text leaves
        text, used, violations = answerer.answer(inp, conv.question)
        assert used == (violations == [])
        assert check_grounding(text, conv.recommendations, names, allowed_amounts(inp)).ok


def test_train_lora_bootstraps_and_beats_the_base(first_adapter, shipped):
    root, result = first_adapter
    metrics = result["metrics"]
    assert result["data_source"] == "synthetic" and result["n_train"] > 0
    assert metrics["val_perplexity"] < metrics["base_val_perplexity"]
    meta = json.loads((root / result["version"] / "meta.json").read_text())
    assert {"version", "base_model", "metrics", "n_train", "created_at"} <= meta.keys()
    assert meta["base_model"].startswith("tiny-neox-") and meta["lora"]["r"] == 16 and meta["lora"]["alpha"] == 32
    assert sorted(meta["lora"]["target_modules"]) == ["dense", "query_key_value"]
    assert (root / result["version"] / "adapter_model.safetensors").exists()
    registry, model = registry_of(root)
    assert result["promoted"] and registry.current_version(model) == result["version"]
    settings, base = shipped
    llm = load_llm(settings, llm=LLMSettings(base_path=str(base), adapter_dir=str(root)))
    assert llm.version.endswith("+" + result["version"])


def _event_store(path, catalog, n_good: int) -> EventStore:
    """Logged turns as the chatbot writes them, with feedback: n_good good ones and one of each bad kind."""
    rows = [{"text": t, "intent": "FOOD_RECOMMENDATION", "entities": {"food_category": c, "payment_method": "meal_card"}}
            for t, c in [("급식카드 되는 치킨집 추천해줘", "치킨"), ("급식카드로 떡볶이 먹을래", "분식"),
                         ("급식카드 되는 피자집 알려줘", "피자"), ("급식카드로 김밥 먹고 싶어", "분식")]]
    convs = SyntheticConversations(catalog).conversations(rows * (n_good // 4 + 2), seed=5)
    store = EventStore(path)
    kinds = ["good"] * n_good + ["low", "no_selection", "slow", "ungrounded"]
    for i, (conv, kind) in enumerate(zip(convs, kinds)):
        rid = uuid.uuid4().hex
        answer = conv.answer + ("\n1,234원짜리도 있어요" if kind == "ungrounded" else "")
        store.log_interaction(rid, "user_1", f"2026-08-01T12:{i:02d}:00", {
            "request_id": rid, "user_id": "user_1", "user_input": conv.question, "final_response": answer,
            "extracted_info": {"intent": conv.nlu.intent.value, "confidence": 0.9,
                               "entities": conv.nlu.entities.model_dump(mode="json")},
            "shown_recommendations": [{"shop_id": r.shop_id, "rank": r.rank, "score": 0.5} for r in conv.recommendations],
            "response_time": 4.5 if kind == "slow" else 0.8,
        })
        shop = "shop_9999" if kind == "no_selection" else conv.recommendations[0].shop_id
        store.add_feedback(FeedbackEvent(event_id=f"e{i}", user_id="user_1", shop_id=shop, feedback_type="rated",
                                         satisfaction_score=3.0 if kind == "low" else 4.5, request_id=rid))
    return store


def test_good_conversation_selection(catalog, tmp_path, tiny_lora_settings):
    store = _event_store(tmp_path / "events.sqlite", catalog, n_good=6)
    good, reasons = good_conversations(store, catalog, catalog.shops["name"].tolist(), tiny_lora_settings)
    store.close()
    assert reasons["low_satisfaction"] == 1 and reasons["no_shop_selected"] == 1 and reasons["slow"] == 1
    assert reasons["not_grounded"] == 1
    assert reasons["good"] == len(good) and 1 <= len(good) <= 6
    assert all(c.source == "feedback" and c.recommendations for c in good)


def test_train_lora_on_feedback_continues_the_current_adapter(first_adapter, shipped, catalog, tmp_path,
                                                              tiny_lora_settings):
    settings, base = shipped
    root, first = first_adapter
    db = tmp_path / "events.sqlite"
    _event_store(db, catalog, n_good=12).close()
    result = train_lora(settings, db, base, root, init_from=root / first["version"], llm=tiny_lora_settings)
    assert result["data_source"] == "feedback" and result["n_feedback_good"] >= tiny_lora_settings.lora_min_good_conversations
    assert result["init_from"] == str(root / first["version"]) and "init_val_perplexity" in result["metrics"]
    assert result["metrics"]["val_perplexity"] < result["metrics"]["base_val_perplexity"]
    registry, model = registry_of(root)
    assert set(registry.versions(model)) == {first["version"], result["version"]}
    assert registry.current_version(model) == (result["version"] if result["promoted"] else first["version"])
