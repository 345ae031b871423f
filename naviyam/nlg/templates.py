"""Grounded answers: every shop, menu, price and property comes from a Recommendation.

This is the default NLG and the fallback for the LLM: it cannot invent anything because it only
formats fields of the recommendations it is given.
"""
from __future__ import annotations

from dataclasses import dataclass

from naviyam.dialogue.acts import Act, FrameUpdate
from naviyam.dialogue.state import DialogueState
from naviyam.nlg import conversation
from naviyam.nlg.words import MAX_WALK_MINUTES, josa, won  # noqa: F401 - part of this module's API
from naviyam.safety import SELF_HARM_RESOURCES, SafetyVerdict
from naviyam.schemas import FollowUp, Intent, NLUResult, Recommendation, UserProfile




@dataclass(frozen=True)
class AnswerInput:
    nlu: NLUResult
    recommendations: list[Recommendation]
    profile: UserProfile
    safety: SafetyVerdict | None = None
    relaxed_distance: bool = False  # too few were near, so the list reaches a bit further
    update: FrameUpdate | None = None       # the turn's act (None: a bare single-turn answer)
    state: DialogueState | None = None      # the conversation's frame after it
    focus_shop: str | None = None           # the shown shop a reference points at
    at: str | None = None                   # "HH:MM" the shops' opening is judged at


def allowed_amounts(inp: AnswerInput) -> set[int]:
    """Amounts besides menu prices that an answer may state (for the grounding guard)."""
    out = {inp.profile.per_meal_allowance}
    if inp.profile.has_meal_card:
        out.add(inp.profile.meal_card_balance)
    if inp.nlu.entities.budget is not None:
        out.add(inp.nlu.entities.budget)
    return out


def stated_words(inp: AnswerInput) -> set[str]:
    """Words the child said that an answer may repeat back ("우유 들어간 메뉴는 빼고")."""
    state = inp.state
    return set(state.allergens) | set(state.avoid_foods) if state else set()


def compose_answer(inp: AnswerInput) -> str:
    intent = inp.nlu.intent
    if intent is Intent.UNSAFE_REQUEST or (inp.safety and inp.safety.unsafe):
        return _unsafe(inp.safety)
    act = inp.update.act if inp.update else None
    if act is Act.CHITCHAT:
        return conversation.chitchat(inp.update.chitchat)
    if inp.update is not None and inp.update.unknown_place:
        return conversation.unknown_place(inp.update.unknown_place)
    if act is Act.ASK_SHOP:
        return conversation.shop_answer(inp)
    if act is Act.STATEMENT:
        ack = conversation.acknowledge(inp)
        if not inp.state or not inp.state.searched:
            return ack + " 뭐 먹고 싶어요? 😊"
        return ack + "\n" + _recommendations(inp)
    if intent is Intent.GREETING:
        return "안녕! 나는 맛집 친구 나비얌이야. 배고프면 \"급식카드 되는 분식집 알려줘\"처럼 물어봐 줘! 😊"
    if intent is Intent.GOODBYE:
        return "다음에 또 배고프면 불러 줘! 맛있게 먹어~ 👋"
    if intent is Intent.OUT_OF_SCOPE:
        return "그건 내가 잘 모르는 이야기야 😅 나는 근처 맛집이랑 메뉴를 알려 줄 수 있어. 뭐 먹고 싶어?"
    if intent is Intent.SHOP_INFO:
        return _shop_info(inp)
    if intent is Intent.MENU_INQUIRY:
        return _menu_info(inp)
    if intent is Intent.BUDGET_INQUIRY:
        return _budget(inp)
    return _recommendations(inp)


# Refusal: no lecture, no shop, and a way back to food.
UNSAFE_ANSWER = (
    "그건 어린이와 청소년에게 알려 줄 수 없는 거야 🙅 대신 맛있는 음식점을 찾아 줄게! "
    "\"분식 먹고 싶어\"처럼 물어봐 줘."
)
# Self-harm cue: no refusal tone; warmth first, then people who help, any time (1388 and 109 run 24/7).
SELF_HARM_ANSWER = (
    "많이 힘들었구나. 이야기해 줘서 고마워. 혼자 견디지 않아도 괜찮아. "
    f"지금 바로 믿을 수 있는 어른이나 선생님께 이야기하거나 {SELF_HARM_RESOURCES}에 전화해 줘 "
    "(1388은 문자 #1388로도 돼). 언제든 도와줄 사람이 있어. 💛 "
    "배가 고프면 따뜻한 밥 먹을 곳도 같이 찾아 줄게."
)
# The recheck after ranking/NLG found something a child must not see: say nothing about it.
UNSAFE_OUTPUT_ANSWER = "미안해요, 그 답은 보여 줄 수 없어요 🙏 다른 음식이나 가게를 물어봐 줄래요?"


# The classifier can call a message unsafe with no listed word, so its kind is unknown - and it may
# be distress in words no list has. The refusal then also says, gently, where help is.
UNKNOWN_UNSAFE_CARE = " 혹시 마음이 힘든 일이 있다면 청소년상담전화 1388(문자 #1388)에 언제든 이야기해도 돼 💛"


# Grooming cue (a stranger or someone met online offering food, money, a gift or a meeting): no shop,
# no blame; don't go, tell a trusted adult first, 112 in danger.
GROOMING_ANSWER = (
    "말해 줘서 고마워요. 모르는 사람이나 인터넷·게임에서 만난 사람이 음식이나 돈, 선물을 준다며 만나자고 하면 "
    "혼자 가지도, 만나지도 말아요. 꼭 부모님이나 선생님, 믿을 수 있는 어른께 먼저 말해요. "
    "무섭거나 위험하다고 느껴지면 바로 112에 전화해요. 🙏"
)
# Distress without a self-harm word (lonely, sad, left out, no appetite): warmth and 1388 before any food.
DISTRESS_ANSWER = (
    "많이 외롭고 힘들었겠어요. 그런 마음을 말해 줘서 고마워요. 혼자 참지 않아도 괜찮아요. "
    "믿을 수 있는 어른께 이야기하거나, 청소년상담전화 1388(문자 #1388, 카카오톡 상담도 돼요)에 언제든 연락해요. "
    "배가 고파지면 그때 같이 먹을 곳을 찾아봐요. 🫶"
)
# Both at once ("외로워서 게임에서 만난 형 만나러 갈래"): the danger first, then the feeling.
GROOMING_DISTRESS_CARE = " 마음이 힘들 때는 청소년상담전화 1388에 언제든 이야기해도 돼요."


def _unsafe(verdict: SafetyVerdict | None) -> str:
    if verdict and verdict.self_harm:
        return SELF_HARM_ANSWER
    if verdict and "grooming" in verdict.kinds:
        return GROOMING_ANSWER + (GROOMING_DISTRESS_CARE if "distress" in verdict.kinds else "")
    if verdict and "distress" in verdict.kinds:
        return DISTRESS_ANSWER
    if verdict is None or not verdict.kinds:
        return UNSAFE_ANSWER + UNKNOWN_UNSAFE_CARE
    return UNSAFE_ANSWER


def _headline(inp: AnswerInput) -> str:
    ents, follow = inp.nlu.entities, inp.nlu.followup
    what = f"{ents.food_category} 가게" if ents.food_category else "맛집"
    if ents.menu_item and not ents.food_category:
        what = f"{ents.menu_item} 파는 곳"
    if ents.food_category == "치킨":
        what = "치킨집"
    if follow is FollowUp.CHEAPER:
        return f"더 싸게 먹을 수 있는 {josa(what, '을', '를')} 찾아봤어요!"
    if follow is FollowUp.OTHER:
        return f"다른 {what}도 찾아봤어요!"
    if follow is FollowUp.CLOSER:
        return f"더 가까운 {josa(what, '을', '를')} 찾아봤어요!"
    if inp.nlu.filters.meal_card:
        return f"급식카드로 먹을 수 있는 {josa(what, '을', '를')} 찾았어요!"
    if ents.budget is not None:
        return f"{won(ents.budget)}으로 먹을 수 있는 {josa(what, '이에요', '예요')}!"
    return f"근처 {josa(what, '을', '를')} 추천해 줄게요!"


def shop_lines(rec: Recommendation) -> list[str]:
    if rec.walk_minutes and rec.walk_minutes <= MAX_WALK_MINUTES:
        where = f" (걸어서 {rec.walk_minutes}분)"
    elif rec.distance_m is not None:
        where = f" ({rec.distance_m / 1000:.1f}km)"
    else:
        where = ""
    lines = [f"{rec.rank}. {rec.name}{where}"]
    if rec.menus:
        lines.append("   · " + ", ".join(f"{m.name} {won(m.price)}" for m in rec.menus))
    tags = ["급식카드 OK" if rec.accepts_meal_card else "급식카드는 안 돼요"]
    if rec.is_good_influence_shop:
        tags.append("착한가게 💚")
    tags.append(f"여는 시간 {rec.opening_hours}")
    if not rec.open_now:
        # Never a closed shop as if open: say when it opens.
        tags.append(f"지금은 문을 닫았어요 ({rec.opening_hours.split('-')[0]}에 열어요)")
    lines.append("   · " + " · ".join(tags))
    return lines


def _none_found(inp: AnswerInput) -> str:
    if inp.nlu.followup is FollowUp.CHEAPER:
        return "아쉽지만 더 싼 곳은 못 찾았어요 😢 다른 음식도 찾아볼까요?"
    return "조건에 맞는 가게를 못 찾았어요 😢 다른 음식이나 가격으로 다시 물어봐 줄래요?"


def _recommendations(inp: AnswerInput) -> str:
    recs = inp.recommendations
    if not recs:
        return _none_found(inp)
    lines = [_headline(inp)]
    if inp.relaxed_distance:
        lines.append("걸어서 금방 가는 곳이 적어서 조금 더 먼 곳까지 찾아봤어요.")
    for rec in recs:
        lines.extend(shop_lines(rec))
    if all(r.accepts_meal_card for r in recs) and inp.nlu.filters.meal_card:
        lines.append("모두 급식카드를 쓸 수 있는 곳이에요. 어디가 마음에 들어요? 😊")
    else:
        lines.append("어디가 마음에 들어요? 😊")
    return "\n".join(lines)


def _shop_info(inp: AnswerInput) -> str:
    if not inp.recommendations:
        name = inp.nlu.entities.shop_name
        if name:
            return f"'{name}'(이)라는 가게는 내가 아는 가게 목록에 없어요 😢 이름을 다시 알려 줄래요?"
        return "어느 가게가 궁금한지 가게 이름을 알려 줄래요? 내가 아는 가게면 여는 시간이랑 메뉴를 알려 줄게요 😊"
    rec = inp.recommendations[0]
    card = "급식카드를 쓸 수 있어요" if rec.accepts_meal_card else "급식카드는 안 돼요"
    lines = [f"{josa(rec.name, '은', '는')} {rec.opening_hours}에 열어요.", f"주소는 {rec.address}이고, {card}."]
    if rec.walk_minutes and rec.walk_minutes <= MAX_WALK_MINUTES:
        lines.append(f"학교에서 걸어서 {rec.walk_minutes}분 걸려요.")
    elif rec.distance_m is not None:
        lines.append(f"학교에서 {rec.distance_m / 1000:.1f}km 떨어져 있어서 걸어가기엔 멀어요.")
    if rec.menus:
        lines.append("메뉴: " + ", ".join(f"{m.name} {won(m.price)}" for m in rec.menus))
    return "\n".join(lines)


def _menu_info(inp: AnswerInput) -> str:
    if not inp.recommendations:
        return _none_found(inp)
    item = inp.nlu.entities.menu_item
    lines = [f"{item} 파는 곳을 알려 줄게요!" if item else "메뉴를 알려 줄게요!"]
    for rec in inp.recommendations:
        lines.extend(shop_lines(rec))
    return "\n".join(lines)


def _budget(inp: AnswerInput) -> str:
    profile, budget = inp.profile, inp.nlu.entities.budget
    lines: list[str] = []
    if profile.has_meal_card and not profile.is_new:
        lines.append(
            f"급식카드 잔액은 {won(profile.meal_card_balance)}이고, 한 끼에 {won(profile.per_meal_allowance)}까지 쓸 수 있어요."
        )
    if inp.recommendations:
        if budget is not None:
            lines.append(f"{won(budget)}으로 먹을 수 있는 곳이에요!")
        for rec in inp.recommendations:
            lines.extend(shop_lines(rec))
    elif not lines:
        lines.append(_none_found(inp))
    return "\n".join(lines)
