"""Instruction data for the language model: NLU targets and grounded answers over the real catalog.

Two sources give the same ``Conversation`` shape:

- ``SyntheticConversations``: labelled NLU corpus rows + shops of the real catalog that fit the
  row's entities (as the search would) + the grounded template answer. Used to pretrain the
  offline default model and to bootstrap LoRA on a fresh install.
- ``conversation_from_interaction``: a logged turn (``EventStore.interactions()``) rebuilt with
  the catalog (what the answer showed), for LoRA retraining on good conversations.

Every answer kept here passes ``check_grounding``; the model is never taught to invent.
"""
from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from naviyam.data.catalog import Catalog
from naviyam.filtering import allowed_menus
from naviyam.llm.prompts import (
    NLG_INSTRUCTION, NLU_INSTRUCTION, InstructionExample, facts_block, nlg_input, nlu_input, nlu_target,
)
from naviyam.nlg.grounding import check_grounding
from naviyam.nlg.normalizer import normalise_for_children
from naviyam.nlg.templates import AnswerInput, allowed_amounts, compose_answer
from naviyam.nlu.filters import to_filters
from naviyam.nlu.followup import detect_followup
from naviyam.schemas import (
    Entities, FollowUp, Intent, MenuItem, NLUResult, Recommendation, UserProfile,
)

# Intents whose answer is always the fixed template (never generated): nothing to learn there.
TEMPLATE_ONLY = frozenset({Intent.GREETING, Intent.GOODBYE, Intent.OUT_OF_SCOPE, Intent.UNSAFE_REQUEST})


@dataclass
class Conversation:
    question: str
    nlu: NLUResult
    recommendations: list[Recommendation]
    profile: UserProfile
    answer: str
    source: str = "synthetic"
    meta: dict = field(default_factory=dict)

    def facts(self) -> str:
        return facts_block(self.nlu.intent, self.nlu.entities, self.recommendations, self.profile,
                           self.nlu.followup.value, self.nlu.filters.meal_card)


def nlu_example(text: str, intent: str | Intent, entities: dict | Entities | None) -> InstructionExample:
    return InstructionExample(NLU_INSTRUCTION, nlu_input(text), nlu_target(intent, entities), task="nlu")


def nlg_example(conv: Conversation) -> InstructionExample:
    return InstructionExample(NLG_INSTRUCTION, nlg_input(conv.question, conv.facts()), conv.answer, task="nlg")


def make_nlu(intent: Intent, entities: Entities, followup: FollowUp = FollowUp.NONE, confidence: float = 0.9) -> NLUResult:
    return NLUResult(intent=intent, entities=entities, confidence=confidence, filters=to_filters(entities),
                     followup=followup, backend="synthetic")


def _entities(raw: dict) -> Entities | None:
    try:
        return Entities.model_validate({k: v for k, v in (raw or {}).items() if k in Entities.model_fields})
    except ValueError:
        return None


class SyntheticConversations:
    """Grounded conversations made from NLU corpus rows and the real catalog."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        shops = catalog.shops
        self._rows = list(shops[["shop_id", "name", "category", "school_id", "accepts_meal_card", "min_price"]]
                          .itertuples(index=False, name=None))
        self._by_category: dict[str, list[tuple]] = defaultdict(list)
        for row in self._rows:
            self._by_category[row[2]].append(row)
        self.shop_names: list[str] = shops["name"].tolist()

    def conversation(self, row: dict, rng: random.Random) -> Conversation | None:
        """None for rows the LLM never answers (unsafe; greetings, goodbyes and off-topic messages
        keep their fixed template answers) or whose answer would not be grounded."""
        intent = Intent(row["intent"])
        entities = _entities(row.get("entities") or {})
        if entities is None or intent in TEMPLATE_ONLY:
            return None
        followup = FollowUp(row.get("followup") or "none")
        nlu = make_nlu(intent, entities, followup)
        profile = self._profile(rng)
        recs = self._recommend(nlu, rng)
        inp = AnswerInput(nlu=nlu, recommendations=recs, profile=profile)
        answer = normalise_for_children(compose_answer(inp), entities.food_category)
        if not check_grounding(answer, recs, self.shop_names, allowed_amounts(inp)).ok:
            return None
        return Conversation(row["text"], nlu, recs, profile, answer, "synthetic")

    def conversations(self, rows: Iterable[dict], seed: int) -> list[Conversation]:
        rng = random.Random(seed)
        out = []
        for row in rows:
            conv = self.conversation(row, rng)
            if conv is not None:
                out.append(conv)
        return out

    # -- parts ----------------------------------------------------------------------------
    @staticmethod
    def _profile(rng: random.Random) -> UserProfile:
        return UserProfile(
            user_id="synthetic", age=rng.randint(8, 17), school_id="school_01",
            has_meal_card=rng.random() < 0.9, meal_card_balance=500 * rng.randint(0, 120),
            per_meal_allowance=rng.choice((8000, 9000, 9500)), is_new=rng.random() < 0.15,
        )

    def _recommend(self, nlu: NLUResult, rng: random.Random) -> list[Recommendation]:
        ents, filters = nlu.entities, nlu.filters
        if nlu.intent is Intent.BUDGET_INQUIRY and ents.budget is None and ents.food_category is None:
            return []   # the chatbot does not search for "잔액 얼마야?"
        if nlu.intent is Intent.SHOP_INFO:
            if ents.shop_name:
                named = [r for r in self._rows if ents.shop_name in r[1]]
                return [self._rec(1, rng.choice(named)[0], nlu, rng)] if named else []
            return [self._rec(1, rng.choice(self._rows)[0], nlu, rng)]
        pool = self._by_category[ents.food_category] if ents.food_category else self._rows
        school = rng.choice(pool)[3] if pool else None
        picked: list[tuple] = []
        for local in (True, False):
            for row in rng.sample(pool, len(pool)) if len(pool) < 400 else (rng.choice(pool) for _ in range(400)):
                if local and row[3] != school:
                    continue
                if filters.meal_card and not row[4]:
                    continue
                if filters.max_price is not None and row[5] > filters.max_price:
                    continue
                if filters.menu_item and not any(filters.menu_item in m.name for m in self.catalog.menus_of(row[0])):
                    continue
                if row not in picked:
                    picked.append(row)
                if len(picked) >= 3:
                    break
            if picked:
                break
        return [self._rec(i + 1, row[0], nlu, rng) for i, row in enumerate(picked[: rng.choice((1, 2, 3, 3))])]

    def _rec(self, rank: int, shop_id: str, nlu: NLUResult, rng: random.Random) -> Recommendation:
        shop = self.catalog.shop(shop_id)
        menus = allowed_menus(self.catalog, shop_id, nlu.filters)
        wanted = nlu.filters.menu_item
        menus.sort(key=lambda m: (not (wanted and wanted in m.name), not m.is_signature, m.price))
        n_menus = 4 if nlu.intent in (Intent.MENU_INQUIRY, Intent.SHOP_INFO) else 2
        walk = rng.randint(2, 20)
        return Recommendation(
            rank=rank, shop_id=shop_id, name=shop.name, category=shop.category, address=shop.address,
            distance_m=walk * 67, walk_minutes=walk, menus=menus[:n_menus], min_price=shop.min_price,
            accepts_meal_card=shop.accepts_meal_card, is_good_influence_shop=shop.is_good_influence_shop,
            opening_hours=shop.opening_hours, rating=shop.rating, personalized_score=round(1 - 0.1 * rank, 3),
        )


def recommendations_from_log(catalog: Catalog, shown: Sequence[dict], answer: str) -> list[Recommendation]:
    """The recommendations a logged answer showed, rebuilt from the catalog.

    Only ``shop_id`` and rank are logged; the menus are those of the shop that the answer names
    (in the order it names them), which is what the child saw.
    """
    recs = []
    for i, item in enumerate(sorted(shown, key=lambda s: s.get("rank", 0))):
        shop_id = item.get("shop_id")
        if not shop_id or not catalog.has_shop(shop_id):
            continue
        shop = catalog.shop(shop_id)
        named: list[tuple[int, MenuItem]] = [(answer.find(m.name), m) for m in shop.menus if m.name in answer]
        menus = [m for _, m in sorted(named, key=lambda t: t[0])]
        walk = re.search(re.escape(shop.name) + r"\s*\(걸어서 (\d+)분\)", answer)
        recs.append(Recommendation(
            rank=int(item.get("rank", i + 1)), shop_id=shop_id, name=shop.name, category=shop.category,
            address=shop.address, walk_minutes=int(walk.group(1)) if walk else None,
            distance_m=int(walk.group(1)) * 67 if walk else None, menus=menus, min_price=shop.min_price, accepts_meal_card=shop.accepts_meal_card,
            is_good_influence_shop=shop.is_good_influence_shop, opening_hours=shop.opening_hours,
            rating=shop.rating, personalized_score=float(item.get("score", 0.0)),
        ))
    return recs


def conversation_from_interaction(catalog: Catalog, payload: dict, shop_names: Sequence[str]) -> Conversation | None:
    """A logged turn as a training conversation; None when it cannot be rebuilt or is not grounded."""
    question, answer = payload.get("user_input"), payload.get("final_response")
    info = payload.get("extracted_info") or {}
    if not question or not answer or not info.get("intent"):
        return None
    try:
        intent = Intent(info["intent"])
    except ValueError:
        return None
    entities = _entities(info.get("entities") or {})
    if entities is None or intent in TEMPLATE_ONLY:
        return None
    nlu = make_nlu(intent, entities, detect_followup(question), float(info.get("confidence") or 0.9))
    profile = catalog.user(payload.get("user_id") or "") or UserProfile(
        user_id="guest", age=12, school_id="school_01", is_new=True)
    recs = recommendations_from_log(catalog, payload.get("shown_recommendations") or [], answer)
    inp = AnswerInput(nlu=nlu, recommendations=recs, profile=profile)
    # Walk minutes depend on where the child was; the logged answer states them, so allow them.
    if not check_grounding(answer, recs, shop_names, allowed_amounts(inp)).ok:
        return None
    return Conversation(question, nlu, recs, profile, answer, "feedback",
                        meta={"request_id": payload.get("request_id")})
