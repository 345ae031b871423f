"""The fast backend's frame update: one message -> dialogue act + slot operations.

It combines what the tagger read (food, money, meal card, place) with the slot grammar
(``naviyam.nlu.slots``). It sees the message only; ``naviyam.dialogue.policy`` applies the update
to the conversation's frame (where "refine" and "new search" meet what came before).
"""
from __future__ import annotations

import re

from naviyam.dialogue import places
from naviyam.dialogue.acts import Act, ChitChat, FrameUpdate, Reference
from naviyam.nlu.decision import BALANCE_WORDS
from naviyam.nlu.food import find_food
from naviyam.nlu.slots import SlotReadings, read_slots
from naviyam.schemas import Entities, FollowUp, Intent

# Places the child's own world names: the origin is then the school (or the device), not a named place.
_HOME_PLACES = ("학교", "학원", "집", "교문", "정문", "후문", "우리동네", "동네", "여기", "이근처", "근처", "주변", "놀이터",
                "도서관", "공원", "아파트", "정류장", "버스정류장", "교회", "성당", "체육관", "수영장", "태권도장", "문구점")
_NAMED_PLACE = re.compile(r"(?:역|동|구|시)$")
# Rice bowls read like a dong ("사케동", "규동"): food, not a neighbourhood.
_FOOD_DON = re.compile(r"(?:규|텐|사케|가츠|부타|오야코|카이센|에비|차슈|연어|돈|우나|치킨|카레|스테이크)동$")
_RIGHT_BY = ("앞", "옆", "건너편", "맞은편")
NEAR_RELATION_WALK_MIN = 10
_CHITCHAT_INTENTS = {Intent.GREETING, Intent.GOODBYE, Intent.OUT_OF_SCOPE}


def frame_update(intent: Intent, entities: Entities, followup: FollowUp, text: str,
                 slots: SlotReadings | None = None) -> FrameUpdate:
    slots = slots or read_slots(text)
    ops: list[dict] = []
    if entities.food_category and not (entities.menu_item and not _names_category(text, entities.food_category)):
        ops.append({"slot": "category", "op": "set", "value": entities.food_category})
    elif entities.menu_item and not slots.adds_menu:
        # "돈까스 먹을래": the dish, wherever it is sold (한식, 일식 and 도시락 shops all have one).
        ops.append({"slot": "category", "op": "clear"})
    if entities.menu_item:
        ops.append({"slot": "menu_items", "op": "add" if slots.adds_menu else "set", "value": [entities.menu_item]})
    elif entities.food_category:
        ops.append({"slot": "menu_items", "op": "clear"})
    if entities.budget is not None:
        ops.append({"slot": "budget", "op": "set", "value": entities.budget})
    if slots.party:
        ops.append({"slot": "party_size", "op": "set", "value": slots.party})
    if entities.payment_method == "meal_card" or (entities.payment_method is None and slots.card_ok):
        ops.append({"slot": "meal_card", "op": "set"})
    if slots.good_shop:
        ops.append({"slot": "good_shop", "op": "set"})
    if slots.not_spicy:
        ops.append({"slot": "not_spicy", "op": "set"})
    if slots.near:
        ops.append({"slot": "near", "op": "set"})
    if slots.allergens:
        ops.append({"slot": "allergens", "op": "add", "value": list(slots.allergens)})
    if slots.avoid_foods:
        ops.append({"slot": "avoid_foods", "op": "add", "value": list(slots.avoid_foods)})
    place_ops, unknown_place = _place_ops(entities.location, text)
    ops += place_ops
    if slots.time:
        ops.append({"slot": "time", "op": "set", "value": slots.time})
    if slots.walk_max_min:
        ops = [op for op in ops if op["slot"] != "walk_max_min"]
        ops.append({"slot": "walk_max_min", "op": "set", "value": slots.walk_max_min})
    if slots.sort:
        ops.append({"slot": "sort", "op": "set", "value": slots.sort})

    relative = {FollowUp.CHEAPER: "cheaper", FollowUp.CLOSER: "closer"}.get(followup)
    exclude = followup is not FollowUp.NONE
    food_named = bool(entities.food_category or entities.menu_item)
    lasting = {"allergens", "avoid_foods", "not_spicy", "party_size"}
    search_slots = {op["slot"] for op in ops} - lasting
    reference = slots.reference
    if reference is None and entities.shop_name:
        reference = Reference(name=entities.shop_name)

    if intent is Intent.UNSAFE_REQUEST:
        act = Act.SAFETY
    elif not exclude and _asks_about_shown(reference, slots, bool(search_slots) or food_named, intent):
        act = Act.ASK_SHOP
    elif slots.chitchat in (ChitChat.THANKS, ChitChat.GOODBYE) and not slots.asks_for_shops and not (
            search_slots - {"category", "menu_items"}):
        act = Act.CHITCHAT   # "고마워 덕분에 삼각김밥 먹음": thanks, not a new search
    elif ops and not search_slots and not exclude and not slots.asks_for_shops:
        act = Act.STATEMENT
    elif food_named and not slots.adds_menu:
        act = Act.NEW_SEARCH
    elif ops or exclude:
        act = Act.REFINE
    elif intent in _CHITCHAT_INTENTS or slots.chitchat is not None and not slots.asks_for_shops:
        act = Act.CHITCHAT
    elif intent is Intent.BUDGET_INQUIRY and not slots.asks_for_shops:
        act = Act.CHITCHAT
    else:
        act = Act.REFINE   # "추천해줘", "그 중에서 갈 만한 데": the search so far, again
    chitchat = None
    if act is Act.CHITCHAT:
        chitchat = slots.chitchat or {Intent.GREETING: ChitChat.GREETING,
                                      Intent.GOODBYE: ChitChat.GOODBYE}.get(intent, ChitChat.OTHER)
    return FrameUpdate.model_validate({
        "act": act, "ops": ops, "exclude_shown": exclude, "relative": relative,
        "reference": reference if act is Act.ASK_SHOP else None,
        "questions": list(slots.questions) if act is Act.ASK_SHOP else [],
        "chitchat": chitchat, "unknown_place": unknown_place,
    })


CHITCHAT_INTENT = {ChitChat.GREETING: Intent.GREETING, ChitChat.CAPABILITIES: Intent.GREETING,
                   ChitChat.NAME: Intent.GREETING, ChitChat.THANKS: Intent.GOODBYE, ChitChat.GOODBYE: Intent.GOODBYE}


def intent_of(update: FrameUpdate, intent: Intent, shops_on_screen: bool = False, text: str = "") -> Intent:
    """The intent a turn's act stands for: one reading for the metadata, the metrics and the graph.

    ``shops_on_screen``: the conversation knows a question without a reference is about a shown shop.
    """
    act = update.act
    if act is Act.SAFETY:
        return Intent.UNSAFE_REQUEST
    if act is Act.ASK_SHOP:
        if update.reference is None and intent in _CHITCHAT_INTENTS and not shops_on_screen:
            return intent   # "방학 언제 해?": a question, about no shop; the conversation decides
        return intent if intent in (Intent.SHOP_INFO, Intent.MENU_INQUIRY) else Intent.SHOP_INFO
    if act is Act.CHITCHAT:
        fallback = intent if intent in (Intent.GREETING, Intent.GOODBYE, Intent.BUDGET_INQUIRY) else Intent.OUT_OF_SCOPE
        return CHITCHAT_INTENT.get(update.chitchat, fallback)
    if intent is Intent.BUDGET_INQUIRY and act is Act.REFINE and update.ops and not any(
            op.slot == "budget" for op in update.ops) and not BALANCE_WORDS.search(text):
        return Intent.FOOD_RECOMMENDATION   # "꿈나무카드로" narrows the search; it asks no balance
    if intent in (Intent.MENU_INQUIRY, Intent.BUDGET_INQUIRY):
        return intent
    return Intent.FOOD_RECOMMENDATION


def _names_category(text: str, category: str) -> bool:
    """Does the message name the category itself ("분식집 떡볶이"), not only a dish of it?"""
    return any(h.entry.menu is None and h.entry.category == category and not h.negated for h in find_food(text))


def _asks_about_shown(reference: Reference | None, slots: SlotReadings, searching: bool, intent: Intent) -> bool:
    """Is the turn a question about a shop on screen (or one named)?

    "두 번째 가게 몇 시까지 해?", "세번째 카페 몇 시에 닫음?", "그 집 메뉴 더 알려줘": a reference asks
    whatever else the message holds. Without one, a question about a shop's facts ("걸어서 몇 분이야?")
    is about the shop last shown, unless the message also asks for shops ("지금 문 연 데 있어?",
    "급식카드 되는 데", "걸어서 10분 이내").
    """
    if reference is not None:
        return bool(slots.questions) or reference.ordinal is not None or reference.name is not None
    if searching or slots.time is not None or intent is Intent.BUDGET_INQUIRY:
        return False   # "잔액 얼마 남았어?" is about the card, not a shop
    return bool(slots.questions) and not slots.asks_for_shops or intent is Intent.SHOP_INFO


def _place_ops(location: str | None, text: str) -> tuple[list[dict], str | None]:
    found = places.find_places(text)
    if found:
        place = found[0].place
        return [{"slot": "place", "op": "set", "value": {"name": place.name, "lat": place.lat, "lon": place.lon}}], None
    if not location:
        return [], None
    key = location.replace(" ", "")
    if any(key.startswith(home) for home in _HOME_PLACES):
        ops = [{"slot": "place", "op": "clear"}]
        if key.endswith(_RIGHT_BY):   # "학교 앞": right by it, not just the neighbourhood
            ops.append({"slot": "walk_max_min", "op": "set", "value": NEAR_RELATION_WALK_MIN})
        return ops, None
    place = places.lookup(location)
    if place is not None:
        return [{"slot": "place", "op": "set", "value": {"name": place.name, "lat": place.lat, "lon": place.lon}}], None
    name = location.split(" ")[0]
    if not _NAMED_PLACE.search(name) or _FOOD_DON.search(name):
        return [], None   # "미술학원 근처", "축구장": the child's own surroundings, searched from school
    # A station or neighbourhood we don't know: ask, never fall back to the school silently.
    return [], name[:64]
