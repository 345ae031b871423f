"""Food words → (category, menu item), through the shared lexicon plus everyday extras.

"떡볶이" → 분식 + menu 떡볶이, "통닭"/"치맥" → 치킨, "짜장면" → 중식. The first food word the child
wants wins; one followed by "말고"/"빼고"/"싫어" is skipped ("치킨 말고 피자" → 피자).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from naviyam import lexicon
from naviyam.nlu.text_index import Squashed, longest_matches

# Everyday food words, brands and common misspellings children use that the shared lexicon lacks.
# Kept here (not in lexicon.py) because only recognition needs them; none is a menu name.
EXTRA_CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "치킨": ("치느님", "닭다리", "순살", "닭봉", "bbq", "bhc", "교촌", "굽네", "처갓집", "치큰", "치낑", "치퀸",
            "후라이드치킨", "양념통닭", "닭똥집", "찜닭", "너겟"),
    "피자": ("도미노", "피자헛", "파파존스", "피쟈", "피잣", "피자스쿨"),
    "햄버거": ("맥도날드", "맥날", "버거킹", "kfc", "노브랜드버거", "감튀", "햄버가", "햄부기", "헴버거", "햄벜",
             "햄버거세트", "버거세트"),
    "분식": ("엽떡", "엽기떡볶이", "신전떡볶이", "떡볶기", "떡뽀끼", "떡복기", "떡뽁기", "떡보끼", "떡볶잉", "떡꼬치",
            "핫도그", "닭꼬치", "떡튀순", "분식점", "김말이", "컵볶이", "라뽁이", "쫄볶이", "김빱", "떡국", "주먹밥", "호떡",
            "붕어빵", "소떡소떡", "김떡순"),
    "한식": ("돈까스", "돈카스", "돈가쓰", "칼국수", "냉면", "삼겹살", "고기", "부대찌개", "감자탕", "갈비", "불고기",
            "김치볶음밥", "닭갈비", "육개장", "설렁탕", "순대국", "순댓국", "한정식", "보쌈", "족발", "비빔국수",
            "수제비", "김치찌게", "된장찌게", "제육덮밥", "국수", "곱창", "막창"),
    "중식": ("마라탕", "마라샹궈", "꿔바로우", "깐풍기", "양장피", "유린기", "중국요리", "짬짜면", "짬뽕밥", "팔보채",
            "양꼬치", "딤섬", "울면", "잡채밥", "짜장맨", "짬봉", "탕슉", "탕수욕", "짜장라면", "훠궈"),
    "일식": ("텐동", "카레", "규카츠", "소바", "사시미", "오니기리", "타코야끼", "연어", "돈까스정식", "쵸밥",
            "일본라멘", "돈코츠"),
    "양식": ("그라탕", "라자냐", "필라프", "브런치", "까르보나라", "알리오올리오", "로제파스타", "스빠게티",
            "피자파스타", "수프", "스프", "타코", "부리또"),
    "카페·디저트": ("커피", "아이스크림", "케이크", "케익", "팥빙수", "설빙", "스벅", "스타벅스", "이디야", "메가커피",
                "빽다방", "컴포즈", "공차", "밀크티", "주스", "쥬스", "에이드", "요거트", "요아정", "젤라또",
                "츄러스", "라떼", "프라푸치노", "쿠키", "배스킨라빈스", "베라", "파르페", "팬케이크", "푸딩",
                "달달한것", "달달구리", "달다구리", "디저트집"),
    "베이커리": ("파리바게뜨", "파바", "뚜레쥬르", "뚜쥬", "도넛", "도너츠", "베이글", "크루아상", "크로와상",
              "소금빵", "모닝빵", "토스트", "꽈배기", "마늘빵", "바게트", "머핀", "스콘", "피자빵"),
    "편의점": ("cu", "지에스", "이마트24", "미니스톱", "편의잠", "과자", "젤리", "초코우유", "딸기우유", "빼빼로",
            "컵누들", "편의점라면", "편의점김밥", "gs"),
    "도시락": ("본도시락", "봉구스", "봉구스밥버거", "도시락통", "한솥도시락"),
}

# Short words that are also grammar: "먹을 거라면" has 라면 as an ending, not noodles. Glued to
# the word before, they count only when kiwipiepy read a noun containing them ("신라면").
_NEEDS_NOUN_MORPHEME = frozenset({"라면", "빵"})
_NOUN_TAGS = frozenset({"NNG", "NNP", "NNB", "SL", "XR"})
# Right after a food word: the child does *not* want it - or cannot have it ("돼지고기 알레르기
#있어 치킨 먹고 싶어" asks for chicken; the allergy itself becomes a hard filter in safety.py).
# "X 알레르기 있어" is about the child; "X 알레르기 정보 알려줘" asks about X, which stays the food.
_NEGATED_AFTER = re.compile(r"^(?:은|는|이|가|을|를|도|에)?(?:말고|말구|빼고|아니고|대신|싫|별로|질려|질렸|지겨|지겹|안먹"
                            r"|(?:알레르기|알러지|앨러지)(?:가|이)?(?:있|때문|라서|이라서|심해|생겼|나서)"
                            r"|못먹|먹으면안|먹으면탈|들어간거빼|들어간건빼)")


@dataclass(frozen=True)
class FoodEntry:
    category: str
    menu: str | None      # canonical lexicon.MENUS name when the word is a menu


@dataclass(frozen=True)
class FoodHit:
    start: int            # span in the source (cleaned) text
    end: int
    surface: str
    entry: FoodEntry
    negated: bool


# Spellings of a menu the data writes one way ("돈까스" is 돈가스 on every menu board here).
MENU_VARIANTS: dict[str, tuple[str, ...]] = {
    "돈가스": ("돈까스", "돈카스", "돈가쓰", "돈까쓰", "돈깟", "돈까쯔", "tonkatsu"),
    "떡볶이": ("떡볶기", "떡뽀끼", "떡복기", "떡뽁기", "떡보끼", "떡볶잉", "떡뽁이", "떡복이", "떡볶", "tteokbokki"),
    "김밥": ("김빱", "김반", "gimbap", "kimbap"),
    "짜장면": ("자장면", "짜장", "짜짱면", "jjajangmyeon"),
    "짬뽕": ("짬봉", "짭뽕"),
    "탕수육": ("탕슉", "탕수욕", "탕수유"),
    "라면": ("라멘", "ramen", "ramyeon"),
    "감자튀김": ("감튀", "프렌치프라이", "후렌치후라이", "fries", "french fries"),
    "샌드위치": ("샌드이치", "샌위치", "sandwich"),
    "샐러드": ("salad",),
    "빙수": ("팥빙수", "빙스"),
    "와플": ("waffle",),
    "우동": ("udon",),
    "마카롱": ("macaron",),
}
# English food words children mix in ("pizza 먹고싶어"): category words, not menu names.
ENGLISH_CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "치킨": ("chicken", "fried chicken"), "피자": ("pizza", "piza"), "햄버거": ("burger", "hamburger", "burgers"),
    "분식": ("snack bar",), "한식": ("korean food", "bibimbap"), "중식": ("chinese food", "chinese"),
    "일식": ("japanese food", "japanese"), "양식": ("pasta", "spaghetti", "steak", "western food"),
    "카페·디저트": ("cafe", "coffee", "dessert", "ice cream", "cake", "smoothie"),
    "베이커리": ("bakery", "bread", "donut", "bagel"), "편의점": ("convenience store",),
    "도시락": ("lunchbox", "dosirak", "bento"),
}


def _vocabulary() -> dict[str, FoodEntry]:
    vocab: dict[str, FoodEntry] = {}
    # Menus first, in lexicon order, so "샌드위치" is 베이커리 like lexicon.category_of_word says.
    for category, menus in lexicon.MENUS.items():
        for menu in menus:
            vocab.setdefault(_key(menu), FoodEntry(category, menu))
            vocab.setdefault(_key(menu) + "집", FoodEntry(category, menu))   # "김밥집": where the dish is
    menu_category = {menu: category for category, menus in lexicon.MENUS.items() for menu in menus}
    for menu, variants in MENU_VARIANTS.items():
        for word in variants:
            vocab.setdefault(_key(word), FoodEntry(menu_category[menu], menu))
            vocab.setdefault(_key(word) + "집", FoodEntry(menu_category[menu], menu))
    for table in (lexicon.CATEGORY_SYNONYMS, EXTRA_CATEGORY_WORDS, ENGLISH_CATEGORY_WORDS):
        for category, words in table.items():
            for word in words:
                vocab.setdefault(_key(word), FoodEntry(category, None))
    return vocab


def _key(word: str) -> str:
    return word.replace(" ", "").lower()


VOCABULARY: dict[str, FoodEntry] = _vocabulary()
_MAX_LEN = max(len(k) for k in VOCABULARY)


def find_food(text: str, noun_forms: frozenset[str] = frozenset()) -> list[FoodHit]:
    """Food words in ``text`` (cleaned, shop names already blanked), in order.

    ``noun_forms`` are the message's noun morphemes; a word in _NEEDS_NOUN_MORPHEME glued to the
    word before it counts only when some noun contains it.
    """
    squashed = Squashed.of(text)
    hits = []
    for start, end, key in longest_matches(squashed.text, VOCABULARY, _MAX_LEN):
        src_start, src_end = squashed.span(start, end)
        glued = src_start > 0 and "가" <= text[src_start - 1] <= "힣"
        if key in _NEEDS_NOUN_MORPHEME and glued and not any(key in form for form in noun_forms):
            continue
        negated = _NEGATED_AFTER.match(squashed.text[end:]) is not None
        hits.append(FoodHit(src_start, src_end, text[src_start:src_end], VOCABULARY[key], negated))
    return hits


def noun_forms(morphemes) -> frozenset[str]:
    return frozenset(m.form.lower() for m in morphemes if m.tag in _NOUN_TAGS)


# Food emoji stand for a food only when no food word was written ("배고파 🍗🍗").
EMOJI_CATEGORIES: dict[str, str] = {
    "🍗": "치킨", "🐔": "치킨", "🍕": "피자", "🍔": "햄버거", "🍟": "햄버거", "🍢": "분식", "🍜": "분식",
    "🍲": "한식", "🍚": "한식", "🥘": "한식", "🥟": "중식", "🥡": "중식", "🍣": "일식", "🍤": "일식", "🍛": "일식",
    "🍝": "양식", "🥩": "양식", "🥗": "양식", "🍰": "카페·디저트", "🧁": "카페·디저트", "🍦": "카페·디저트",
    "🍨": "카페·디저트", "🍧": "카페·디저트", "🧋": "카페·디저트", "☕": "카페·디저트", "🥤": "카페·디저트",
    "🍩": "베이커리", "🍞": "베이커리", "🥐": "베이커리", "🥖": "베이커리", "🥯": "베이커리", "🥪": "베이커리",
    "🍙": "편의점", "🍱": "도시락",
}


def emoji_category(original: str) -> str | None:
    return next((EMOJI_CATEGORIES[ch] for ch in original if ch in EMOJI_CATEGORIES), None)


def resolve_food(hits: list[FoodHit]) -> tuple[str | None, str | None]:
    """(category, menu_item): the first wanted food word decides the category; the first wanted
    menu name is the menu item ("분식집 떡볶이" → 분식, 떡볶이)."""
    wanted = [h for h in hits if not h.negated]
    category = wanted[0].entry.category if wanted else None
    menu = next((h.entry.menu for h in wanted if h.entry.menu), None)
    return category, menu
