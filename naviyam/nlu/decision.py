"""From classifier scores + tagger readings to one intent and an honest confidence.

Rules here are few and each guards something the classifier alone gets wrong too often:
- safety words ("술", "담배", "죽고 싶") make a request UNSAFE whatever the classifier thinks;
- the classifier alone may not call a request unsafe without conviction;
- "거기 말고 다른 데는?" / "더 싼 곳" are food requests about the previous answer;
- a reading that contradicts the intent (SHOP_INFO with no shop, a greeting with a budget)
  lowers the confidence, so a low-confidence turn can be routed elsewhere.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from naviyam.schemas import Entities, FollowUp, Intent

RULE_CONFIDENCE = 0.9          # a safety or follow-up rule decided the intent
UNSAFE_MIN_PROBABILITY = 0.9   # classifier-only UNSAFE (no unsafe word) needs this much, else the runner-up
DISAGREEMENT_FACTOR = 0.75

# "거기/그 가게/여기" stand for the shop of the previous answer.
_SHOP_ANAPHORA = re.compile(r"거기|여기|그\s?(?:가게|집|곳|식당)|아까|저기|그데")
BALANCE_WORDS = re.compile(r"잔액|잔고|남았|남은|한도|얼마|충전|금액|돈")
_MENU_WORDS = re.compile(r"메뉴|가격|얼마|뭐\s?팔|맛있")


@dataclass(frozen=True)
class Decision:
    intent: Intent
    confidence: float


def decide(scores: dict[str, float], entities: Entities, followup: FollowUp, unsafe_words: bool,
           text: str) -> Decision:
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    intent, prob = Intent(ranked[0][0]), ranked[0][1]

    if unsafe_words:
        return Decision(Intent.UNSAFE_REQUEST, max(scores.get(Intent.UNSAFE_REQUEST.value, 0.0), RULE_CONFIDENCE))
    if intent is Intent.UNSAFE_REQUEST and prob < UNSAFE_MIN_PROBABILITY and len(ranked) > 1:
        intent, prob = Intent(ranked[1][0]), ranked[1][1] * DISAGREEMENT_FACTOR
    if followup is not FollowUp.NONE and intent is not Intent.UNSAFE_REQUEST:
        food = scores.get(Intent.FOOD_RECOMMENDATION.value, 0.0)
        return Decision(Intent.FOOD_RECOMMENDATION, max(food, RULE_CONFIDENCE))
    if not _consistent(intent, entities, text):
        prob *= DISAGREEMENT_FACTOR
    return Decision(intent, min(max(prob, 0.0), 1.0))


def _consistent(intent: Intent, entities: Entities, text: str) -> bool:
    """Does what the tagger read fit the intent the classifier chose?"""
    if intent is Intent.SHOP_INFO:
        return entities.shop_name is not None or _SHOP_ANAPHORA.search(text) is not None
    if intent is Intent.MENU_INQUIRY:
        return bool(entities.shop_name or entities.menu_item or entities.food_category
                    or _MENU_WORDS.search(text) or _SHOP_ANAPHORA.search(text))
    if intent is Intent.BUDGET_INQUIRY:
        return (entities.budget is not None or entities.payment_method == "meal_card"
                or BALANCE_WORDS.search(text) is not None)
    if intent in (Intent.GREETING, Intent.GOODBYE, Intent.OUT_OF_SCOPE):
        return not (entities.food_category or entities.menu_item or entities.budget or entities.shop_name)
    return True
