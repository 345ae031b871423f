"""Entities → hard search filters and the compact retrieval query.

Only what the message itself says becomes a filter here; the chatbot adds the child's profile
(allergies, school, distance) and follow-up carry-over later (``naviyam.dialogue``).
"""
from __future__ import annotations

from naviyam.schemas import Entities, SearchFilters

MEAL_CARD_QUERY_WORD = "급식카드"
_PAYMENT_QUERY_WORDS = {"meal_card": MEAL_CARD_QUERY_WORD, "cash": "현금", "card": "카드"}


def to_filters(entities: Entities) -> SearchFilters:
    return SearchFilters(
        category=entities.food_category,
        meal_card=entities.payment_method == "meal_card",
        max_price=entities.budget,
        shop_name=entities.shop_name,
        menu_item=entities.menu_item,
    )


def semantic_query(entities: Entities, keywords: list[str]) -> str:
    """"급식카드 치킨" for "급식카드 되는 치킨집 추천해줘": the words retrieval should match on.

    Falls back to the message keywords when no entity was found ("맛있는 거 추천해줘").
    """
    parts: list[str] = []
    if entities.payment_method:
        parts.append(_PAYMENT_QUERY_WORDS[entities.payment_method])
    if entities.shop_name:
        parts.append(entities.shop_name)
    if entities.food_category:
        parts.append(entities.food_category)
    if entities.menu_item and entities.menu_item != entities.food_category:
        parts.append(entities.menu_item)
    if entities.location:
        parts.append(entities.location)
    if not parts:
        parts = keywords[:5]
    return " ".join(dict.fromkeys(parts))
