"""The slot grammar: what a message says about time, party, walking, sort, what to avoid, and
which shown shop it points at, read from the spacing-free text.

The classifier and tagger (``naviyam.nlu.fast``) read intent, food, money, meal card and place;
these readings are what a conversation adds on top ("9시에", "친구랑 둘이", "걸어서 10분 안에",
"가까운 순", "치즈 못 먹어", "두 번째 가게 몇 시까지 해?"). Each reading is a small pattern over
a closed vocabulary, so it generalises over spelling and spacing rather than over sentences.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from naviyam.data.catalog import WALK_METERS_PER_MINUTE
from naviyam.dialogue.acts import ChitChat, Reference, ShopFact
from naviyam.nlu.text_index import Squashed
from naviyam.safety import stated_avoidance


WALKABLE_MIN = 15   # "걸어서 갈 만한 데": what a child walks without complaint

_NATIVE_HOURS = {"한": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9, "열": 10,
                 "열한": 11, "열두": 12}
_NATIVE_COUNT = {"혼자": 1, "둘": 2, "두": 2, "셋": 3, "세": 3, "넷": 4, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7,
                 "여덟": 8, "아홉": 9, "열": 10}
_SINO = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7, "팔": 8, "구": 9, "십": 10, "이십": 20,
         "삼십": 30, "사십": 40, "오십": 50}
_HOUR_WORD = "|".join(sorted(_NATIVE_HOURS, key=len, reverse=True))
_MORNING = r"아침|오전|새벽|등교|학교가기전|학교가기 전|조식"
_EVENING = r"오후|저녁|밤|야식|학원끝나고|학원마치고|학원끝나면"
# "8시 반", "20:30", "밤 10시", "아홉시에"; not "몇 시", "시간", "세 시간", "N시간".
_CLOCK = re.compile(
    rf"(?P<part>{_MORNING}|{_EVENING}|점심|낮)?(?P<h>\d{{1,2}}|{_HOUR_WORD})시(?!간)(?P<m>반|\d{{1,2}}분|(?:{'|'.join(_SINO)})분)?"
    r"|(?P<hh>[01]?\d|2[0-3]):(?P<mm>[0-5]\d)"
)
_OPEN_NOW = re.compile(r"지금(?:도|당장|바로)?(?:문)?(?:연|여는|열려|열린|열었|열어|영업|하는|하고있|운영|갈수있|먹을수있|되는|가능한|가도되는)"
                       r"|(?:문|아직)(?:연|여는|열려|열린|안닫)|영업중|열려있는|열린곳|열린데|안닫은")
_SINO_NUMBER = "|".join(sorted(_SINO, key=len, reverse=True))
# "걸어서 10분 안에", "5분 이내", "걸어서 칠분" (a walk named is a limit); not "걸어서 몇 분이야?".
_WALK = re.compile(
    rf"(?:걸어서|도보로?|걸어)(?P<lead>\d{{1,3}}|{_SINO_NUMBER})분(?!이야|이에|걸|정도걸|쯤걸|이나)"
    rf"|(?P<n>\d{{1,3}}|{_SINO_NUMBER})분(?:안|이내|내|거리|컷|정도|만에|안쪽|밖에안|이하|까지)"
)
_DISTANCE = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<unit>km|킬로|키로|m|미터)(?:안|이내|내|거리|이하|까지)")
_NEAREST = re.compile(r"(?:제일|가장|젤|젤루|최대한|젤로)가까|가까운(?:거|것|곳|데|집|가게|애)?(?:부터|먼저|순|순서|위주|로|으로|걸로|거로|데가)"
                      r"|거리순|가까운순|짧은순")
# "여기 근처", "가까운 데", "주변에": the child asks for shops close by (not "근처 말고").
_NEAR = re.compile(r"(?:근처|주변|근방|부근|인근|가까운|가까이|가깝)(?!말고|아니)")
_CHEAPEST = re.compile(r"(?:제일|가장|젤|최대한)(?:싼|싸|저렴)|(?:싼|저렴한|가격)(?:순|순서)|가격낮은순")
_NOT_SPICY = re.compile(r"안매운|안맵|맵지않|덜매운|맵찔|매운(?:거|것|건|걸|음식|거는|건|거를|것은)?"
                        r"(?:진짜|정말|잘|아예|좀|너무|전혀|하나도)?(?:못|싫|안|별로|빼|무리|노노|ㄴㄴ)")
# "카드 되는 곳", "카드도 돼야 됨": in this app a card that pays is the child's meal card.
_CARD_OK = re.compile(r"(?<!체크)(?<!신용)(?<!엄마)(?<!아빠)카드(?:도|로|는|만|가)?(?:돼|되|됨|받|써|쓸|결제|가능|ㄱㄴ|ok|오케)")
_GOOD_SHOP = re.compile(r"착한(?:가게|식당|집|곳|데)|선한영향력|선영가|착한가계")
# -- references to shown shops -------------------------------------------------------------------
_ORDINALS = {"첫": 1, "첫째": 1, "1": 1, "한": 1, "일": 1, "두": 2, "둘째": 2, "2": 2, "이": 2, "세": 3, "셋째": 3, "3": 3,
             "삼": 3, "네": 4, "넷째": 4, "4": 4, "사": 4, "다섯": 5, "다섯째": 5, "5": 5, "오": 5}
_ORDINAL = re.compile(r"(?P<n>첫째|둘째|셋째|넷째|다섯째|첫|두|세|네|다섯|[1-5])번?(?:째|번)(?:가게|집|곳|데|거|꺼|식당)?"
                      r"|(?P<n2>[1-5])번(?:가게|집|곳|식당)?(?![0-9])"
                      r"|(?P<last>마지막|맨끝|맨아래|맨밑|끝에)(?:가게|집|곳|데|거|꺼|식당|꺼)?")
_DEMONSTRATIVE = re.compile(r"(?:^|[^가-힣])?(?:거기|저기|그집|그가게|그곳|그식당|그데|거긴|거기는|그가겐|그집은|저집"
                            r"|그매장|이가게|이집|그거기|아까그|아까거기|방금그)")
_FACTS: tuple[tuple[ShopFact, re.Pattern], ...] = (
    (ShopFact.OPEN, re.compile(r"몇시(?:에|부터)(?:문)?(?:열|오픈|시작|해)|언제(?:문)?(?:열|오픈)|오픈(?:시간|언제|몇)|여는시간|문여")),
    (ShopFact.CLOSE, re.compile(r"몇시까지|언제(?:까지|문닫|닫)|마감|문닫|닫아|닫는|끝나|영업끝")),
    (ShopFact.HOURS, re.compile(r"영업시간|운영시간|영업(?:해|중|하|했)|쉬는날|휴무|지금가도|몇시|언제(?:가|해)|시간(?:알려|이|은|좀)|열어\?|열었|문열었|열려|하는시간|지금해|지금하")),
    (ShopFact.ADDRESS, re.compile(r"주소|위치|어딨|어디(?:야|에있|있|임|예요|에요|쯤|인지|에)|어떻게가|가는길|찾아가")),
    (ShopFact.WALK, re.compile(r"몇분|얼마나걸|얼마나멀|멀어\?|멀어|가까워|거리|걸어서|걸려")),
    (ShopFact.PHONE, re.compile(r"전화|번호|연락처|폰번")),
    (ShopFact.MEAL_CARD, re.compile(r"(?:급식카드|꿈나무카드|아동급식카드|급식|카드)(?:돼|되|받|써|사용|가능|결제)")),
    (ShopFact.GOOD, re.compile(r"착한가게(?:야|예요|에요|인가|맞)|선한영향력(?:가게)?(?:야|이야|맞)")),
    (ShopFact.PRICE, re.compile(r"얼마|가격|비싸|비싼|싸\?|값")),
    (ShopFact.MENU, re.compile(r"메뉴|뭐(?:팔|있|맛있|가맛|파)|뭘팔|뭐가있|추천메뉴|대표메뉴|인기메뉴")),
)
_CHITCHAT: tuple[tuple[ChitChat, re.Pattern], ...] = (
    (ChitChat.CAPABILITIES, re.compile(r"(?:뭐|뭘|무엇을?|머)(?:할수|해줄수|도와줄수|해줄|할줄)|할수있는거|할수있는게|기능|뭐하는(?:애|거|봇|앱|앱이야)"
                                       r"|넌뭐야|너뭐야|너는뭐야|넌누구|너누구|누구야|뭐하는애|사용법|어떻게써|어떻게사용|도움말|help")),
    (ChitChat.NAME, re.compile(r"이름(?:이|은|이뭐|뭐|알려|머)|너이름|니이름|네이름")),
    (ChitChat.THANKS, re.compile(r"고마워|고맙|감사|땡큐|땡스|ㄱㅅ|ㄳ|thank|thx|고마웡|감샤|덕분")),
    (ChitChat.GOODBYE, re.compile(r"잘가|잘있어|바이바이|^바이|빠이|안녕히|나중에봐|담에봐|다음에봐|ㅂㅂ|bye|ㅃㅃ|이만갈게|그만할게|이제갈게")),
    (ChitChat.GREETING, re.compile(r"안녕|하이|ㅎㅇ|hello|^hi|반가워|방가|헬로")),
)
# Words that ask for shops: a statement with one of these is also a search ("밀가루 못 먹는데 뭐 먹지").
_REQUEST = re.compile(r"추천|ㅊㅊ|맛집|맛있는데|알려|먹을|먹고|먹지|먹자|먹어야|먹으러|먹을래|먹을까|뭐먹|머먹|어디|찾아|보여|골라|있어\?|있나|있을까"
                      r"|ㄱㄱ|고고|가자|갈래|갈까|데있|곳있|집있|데는|곳은|데로|곳으로|데만|곳만|집만|땡|당겨|배고|출출|시켜|주문|갈만한|갈수")
_ADD_MENU = re.compile(r"도(?:있|파|되|팔|나오|같이|함께)|도같이|랑같이|도먹|도\s?있는")


@dataclass(frozen=True)
class SlotReadings:
    time: str | None = None            # "now" or "HH:MM"
    party: int | None = None
    walk_max_min: int | None = None
    sort: str | None = None            # "nearest" | "cheapest"
    near: bool = False                 # "근처", "가까운 데": close by, not a longer walk
    not_spicy: bool = False
    good_shop: bool = False
    card_ok: bool = False
    allergens: tuple[str, ...] = ()
    avoid_foods: tuple[str, ...] = ()
    reference: Reference | None = None
    questions: tuple[ShopFact, ...] = ()
    chitchat: ChitChat | None = None
    asks_for_shops: bool = False
    adds_menu: bool = False
    spans: tuple[tuple[int, int], ...] = field(default=())


def read_slots(text: str, has_shop_name: bool = False) -> SlotReadings:
    sq = Squashed.of(text).text
    reference = _reference(sq)
    questions = _questions(sq)
    allergens, foods = stated_avoidance(text)
    return SlotReadings(
        time=_time(sq), party=_party(sq), walk_max_min=_walk(sq), sort=_sort(sq), near=bool(_NEAR.search(sq)),
        not_spicy=bool(_NOT_SPICY.search(sq)), good_shop=bool(_GOOD_SHOP.search(sq)), card_ok=bool(_CARD_OK.search(sq)),
        allergens=allergens, avoid_foods=foods, reference=reference, questions=questions,
        chitchat=_chitchat(sq), asks_for_shops=bool(_REQUEST.search(sq)), adds_menu=bool(_ADD_MENU.search(sq)),
    )


def clock_time(part: str | None, hour: int, minute: int, text: str) -> str | None:
    """"저녁 8시" -> 20:00; a bare "3시" is afternoon and a bare "9시" evening, unless the message
    is about the morning ("아침", "학교 가기 전")."""
    if not 0 <= hour <= 24 or not 0 <= minute < 60:
        return None
    morning = re.search(_MORNING, text) is not None
    if part and re.fullmatch(_EVENING, part) or part == "낮":
        if hour < 12:
            hour += 12
    elif part == "점심":
        if hour < 6:
            hour += 12
    elif part is None and not morning and 1 <= hour <= 11:
        hour += 12   # children name after-school and evening hours without 오후
    if part and re.fullmatch(_MORNING, part) and hour == 12:
        hour = 0
    hour %= 24
    return f"{hour:02d}:{minute:02d}"


def _time(sq: str) -> str | None:
    for m in _CLOCK.finditer(sq):
        if m.group("hh") is not None:
            return f"{int(m.group('hh')):02d}:{m.group('mm')}"
        before = sq[max(0, m.start() - 1):m.start()]
        if before in ("몇", "번"):
            continue
        raw = m.group("h")
        hour = int(raw) if raw.isdigit() else _NATIVE_HOURS[raw]
        if raw.isdigit() and sq[m.start("h") - 1:m.start("h")].isdigit():
            continue
        mins = m.group("m") or ""
        minute = 30 if mins == "반" else (int(mins[:-1]) if mins[:-1].isdigit() else _SINO.get(mins[:-1], 0))
        return clock_time(m.group("part"), hour, minute, sq)
    if _OPEN_NOW.search(sq):
        return "now"
    return None


_PARTY = re.compile(
    r"(?P<friends>친구|동생|형|누나|언니|오빠|애들|친구들)(?P<n1>\d{1,2}|둘|셋|넷|다섯|여섯|한|두|세|네)명?(?:이랑|하고|랑|와|과)"
    r"|(?P<n2>\d{1,2}|둘|셋|넷|다섯|여섯|일곱|여덟|두|세|네)(?:명|사람)?(?:이서|이가|이|명이서|명이|명)(?=$|[^가-힣]|먹|가|같|서|만|야|예요|에요|라|고|랑|인데|[0-9일이삼사오육칠팔구천만])"
    r"|(?P<n3>\d{1,2}|두|세|네|다섯|여섯)명(?:이서|이|분|이랑|인데|정도|먹|가|있|같)"
)


def _party(sq: str) -> int | None:
    for m in _PARTY.finditer(sq):
        if m.group("n1"):
            n = _count(m.group("n1"))
            return None if n is None else n + 1      # friends + me
        raw = m.group("n2") or m.group("n3")
        if m.group("n2") and raw in ("두", "세", "네") and not sq[m.end("n2"):].startswith(("명", "사람")):
            continue                                 # "두 번째", "세 시": not people
        n = _count(raw)
        if n and n >= 2:
            return n
    return None


def _count(raw: str) -> int | None:
    if raw.isdigit():
        n = int(raw)
        return n if 1 <= n <= 30 else None
    return _NATIVE_COUNT.get(raw)


_WALKABLE = re.compile(r"걸어(?:서)?(?:갈|가는|갈수있는|다닐)(?:만한|수있|만해|정도|거리)|도보로갈|걸어갈")


def _walk(sq: str) -> int | None:
    if _WALKABLE.search(sq) and not _WALK.search(sq):
        return WALKABLE_MIN
    m = _WALK.search(sq)
    if m:
        n = m.group("lead") or m.group("n")
        value = int(n) if n.isdigit() else _SINO.get(n)
        return value if value and 1 <= value <= 120 else None
    m = _DISTANCE.search(sq)
    if m:
        metres = float(m.group("n")) * (1000 if m.group("unit") in ("km", "킬로", "키로") else 1)
        return max(1, min(120, math.ceil(metres / WALK_METERS_PER_MINUTE)))
    return None


def _sort(sq: str) -> str | None:
    if _NEAREST.search(sq):
        return "nearest"
    if _CHEAPEST.search(sq):
        return "cheapest"
    return None


def _reference(sq: str) -> Reference | None:
    m = _ORDINAL.search(sq)
    if m:
        if m.group("last"):
            return Reference(ordinal=-1)
        raw = m.group("n") or m.group("n2")
        return Reference(ordinal=_ORDINALS[raw])
    if _DEMONSTRATIVE.search(sq) and not re.search(r"(?:거기|여기|저기|그)말고", sq):
        return Reference(demonstrative=True)
    return None


def _questions(sq: str) -> tuple[ShopFact, ...]:
    found = [fact for fact, pattern in _FACTS if pattern.search(sq)]
    if ShopFact.OPEN in found or ShopFact.CLOSE in found:
        found = [f for f in found if f is not ShopFact.HOURS]
    return tuple(found)


def _chitchat(sq: str) -> ChitChat | None:
    return next((kind for kind, pattern in _CHITCHAT if pattern.search(sq)), None)
