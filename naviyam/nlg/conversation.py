"""Answers that belong to the conversation rather than to one search: a shown shop's facts,
an acknowledged statement, small talk, and a place we don't know.

Like the search answer, every fact comes from a Recommendation built from the data (hours,
address, walk, menus, phone, meal card); nothing here is invented.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from naviyam.dialogue.acts import ChitChat, ShopFact
from naviyam.nlg.words import MAX_WALK_MINUTES, josa, won
from naviyam.schemas import Recommendation

if TYPE_CHECKING:   # templates imports this module
    from naviyam.nlg.templates import AnswerInput

CAPABILITIES = (
    "나는 나비얌이에요! 🦋 근처에서 급식카드로 먹을 수 있는 가게를 찾아 줘요. "
    "\"급식카드 되는 치킨집\", \"오천원으로 먹을 수 있는 분식\", \"지금 문 연 데\", \"걸어서 10분 안에\"처럼 물어보면 돼요. "
    "알레르기가 있으면 말해 줘요, 그 메뉴는 빼고 찾을게요. 보여 준 가게의 여는 시간이랑 주소도 알려 줄 수 있어요 😊"
)
_CHITCHAT = {
    ChitChat.GREETING: "안녕! 나는 맛집 친구 나비얌이야. 배고프면 \"급식카드 되는 분식집 알려줘\"처럼 물어봐 줘! 😊",
    ChitChat.GOODBYE: "다음에 또 배고프면 불러 줘! 맛있게 먹어~ 👋",
    ChitChat.THANKS: "천만에요! 맛있게 먹어요 😋 또 궁금한 거 있으면 물어봐 줘요.",
    ChitChat.CAPABILITIES: CAPABILITIES,
    ChitChat.NAME: "내 이름은 나비얌이에요 🦋 근처 맛집이랑 급식카드 되는 가게를 찾아 주는 친구예요!",
    ChitChat.OTHER: "그 얘기는 내가 도와주기 어려워요 😅 나는 근처 맛집이랑 메뉴를 알려 줄 수 있어요. 뭐 먹고 싶어요?",
}


def chitchat(kind: ChitChat | None) -> str:
    return _CHITCHAT[kind or ChitChat.OTHER]


def unknown_place(name: str) -> str:
    return (f"'{name}'{'은' if _batchim(name) else '는'} 내가 아직 모르는 곳이에요 😢 "
            "근처 지하철역이나 동 이름으로 다시 알려 줄래요? (예: \"강남역 근처\", \"역삼동\")")


def acknowledge(inp: AnswerInput) -> str:
    """"알겠어요, 우유 들어간 메뉴는 빼고 찾을게요." for what the turn just told us."""
    state, update = inp.state, inp.update
    said: list[str] = []
    slots = {op.slot for op in update.ops} if update else set()
    if state is not None:
        if slots & {"allergens", "avoid_foods"}:
            words = list(state.avoid_foods) or list(state.allergens)
            said.append(f"{', '.join(words)} 들어간 메뉴는 빼고 찾을게요")
        if "not_spicy" in slots and state.not_spicy:
            said.append("안 매운 메뉴로 찾을게요")
        if "party_size" in slots and state.party_size > 1:
            if state.budget is not None:
                said.append(f"{state.party_size}명이니까 한 사람에 {won(state.per_person_budget)}씩으로 찾을게요")
            else:
                said.append(f"{state.party_size}명이 같이 먹을 곳으로 찾을게요")
        if "place" in slots and state.place is not None:
            said.append(f"{state.place.name} 근처에서 찾을게요")
    if not said:
        return "알겠어요! 기억해 둘게요."
    return "알겠어요, " + ", ".join(said) + "."


def shop_answer(inp: AnswerInput) -> str:
    rec = next((r for r in inp.recommendations if r.shop_id == inp.focus_shop), None)
    if rec is None:
        if inp.nlu.entities.shop_name:
            return f"'{inp.nlu.entities.shop_name}'(이)라는 가게는 내가 아는 가게 목록에 없어요 😢 이름을 다시 알려 줄래요?"
        return "어느 가게가 궁금한지 가게 이름을 알려 줄래요? 먹고 싶은 음식을 말해 주면 가게를 찾아 줄 수도 있어요 😊"
    questions = list(inp.update.questions) if inp.update else []
    if not questions:
        questions = [ShopFact.HOURS, ShopFact.ADDRESS, ShopFact.WALK, ShopFact.MENU]
    lines = [f"{josa(rec.name, '은', '는')} 이래요!"]
    for fact in dict.fromkeys(questions):
        lines.append(_FACTS[fact](rec))
    if not rec.open_now and not {ShopFact.HOURS, ShopFact.OPEN, ShopFact.CLOSE} & set(questions):
        lines.append(f"지금은 문을 닫았어요 ({rec.opening_hours.split('-')[0]}에 열어요).")
    return "\n".join(line for line in lines if line)


def _hours(rec: Recommendation) -> str:
    opens, closes = (rec.opening_hours.split("-") + [""])[:2]
    line = f"영업시간은 {rec.opening_hours}이에요 ({opens}에 문을 열고 {closes}까지 해요)."
    return line if rec.open_now else line + " 지금은 문을 닫은 시간이에요."


def _walk(rec: Recommendation) -> str:
    if rec.walk_minutes and rec.walk_minutes <= MAX_WALK_MINUTES:
        return f"걸어서 {rec.walk_minutes}분 걸려요 ({rec.distance_m}m)."
    if rec.distance_m is not None:
        return f"거리가 {rec.distance_m / 1000:.1f}km라서 걸어가기엔 멀어요 (걸어서 {rec.walk_minutes}분)."
    return ""


def _menu(rec: Recommendation) -> str:
    if not rec.menus:
        return "보여 줄 수 있는 메뉴가 없어요."
    return "메뉴: " + ", ".join(f"{m.name} {won(m.price)}" for m in rec.menus)


def _price(rec: Recommendation) -> str:
    if not rec.menus:
        return f"제일 싼 메뉴는 {won(rec.min_price)}부터예요."
    cheapest = min(rec.menus, key=lambda m: m.price)
    return f"{cheapest.name} {won(cheapest.price)}부터 있어요. " + _menu(rec)


def _card(rec: Recommendation) -> str:
    return "급식카드를 쓸 수 있어요." if rec.accepts_meal_card else "여기는 급식카드가 안 돼요."


def _phone(rec: Recommendation) -> str:
    return f"전화번호는 {rec.phone}이에요." if rec.phone else "전화번호는 내가 가진 정보에 없어요."


def _good(rec: Recommendation) -> str:
    return "착한가게예요 💚" if rec.is_good_influence_shop else "착한가게로 등록된 곳은 아니에요."


_FACTS = {
    ShopFact.HOURS: _hours, ShopFact.OPEN: _hours, ShopFact.CLOSE: _hours,
    ShopFact.ADDRESS: lambda rec: f"주소는 {rec.address}예요.",
    ShopFact.WALK: _walk, ShopFact.MENU: _menu, ShopFact.PRICE: _price, ShopFact.MEAL_CARD: _card,
    ShopFact.PHONE: _phone, ShopFact.GOOD: _good,
}


def _batchim(word: str) -> bool:
    last = word[-1] if word else ""
    return "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0
