"""Labelled NLU corpus: child-style Korean utterances with intent, entities and follow-up.

Utterances come from the templates and word pools of ``naviyam.nlu.phrasebook``, filled from
the shared lexicon, then roughed up the way children type: dropped spaces, ㅋㅋ/ㅠㅠ/emoji, slang
endings ("추천해죠", "머먹지"), jamo typos. Gold labels come from the fillers, never from the
tagger.

The test split is held out by construction: it uses a disjoint quarter of every intent's
templates, and half of its fillers come from words the train split never sees (a quarter of the
food words, places, meal-card names and shop-name prefixes; a sixth of the greeting, goodbye and
off-topic phrases). Its score measures generalisation to new phrasings, not recall.

Rows: {"text", "intent", "entities": {Entities fields}, "followup"}.
"""
from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from naviyam import lexicon
from naviyam.nlu import phrasebook as pb
from naviyam.nlu.food import VOCABULARY
from naviyam.schemas import CATEGORIES, Entities, FollowUp, Intent

log = logging.getLogger(__name__)

_KO_DIGITS = "영일이삼사오육칠팔구"
_JOSA = {
    "(이)가": ("이", "가"), "(을)를": ("을", "를"), "(은)는": ("은", "는"), "(과)와": ("과", "와"),
    "(으)로": ("으로", "로"), "(이)랑": ("이랑", "랑"), "(이)면": ("이면", "면"), "(이)야": ("이야", "야"),
    "(이)나": ("이나", "나"), "(이)에요": ("이에요", "예요"),
}
_JOSA_PATTERN = re.compile("|".join(re.escape(k) for k in _JOSA))
_SLOT = re.compile(r"\{(\w+)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_CHOICE = re.compile(r"<([^<>]*)>")
_VOWEL_SWAPS = {1: 5, 5: 1, 4: 6, 6: 4, 8: 13, 13: 8, 20: 19, 19: 20}  # ㅐ↔ㅔ, ㅓ↔ㅕ, ㅗ↔ㅜ, ㅣ↔ㅢ
TEST_HELD_OUT_RATE = 0.5   # share of test fillers drawn from held-out words
FOOD_TYPO_RATE = 0.03      # a misspelt food word; the gold still names the food


# ------------------------------------------------------------------------------ word pools
@dataclass
class Pools:
    """Filler words of one split; ``held_out`` are words only the test split uses."""

    words: dict[str, list[str]]
    held_out: dict[str, list[str]] = field(default_factory=dict)

    def pick(self, name: str, rng: random.Random, held_out_rate: float) -> str:
        held = self.held_out.get(name)
        if held and rng.random() < held_out_rate:
            return rng.choice(held)
        return rng.choice(self.words[name])


def _split_words(words, rng: random.Random, every: int) -> tuple[list[str], list[str]]:
    """Hold out about 1/every of ``words`` (at least one of three or more), at random; the
    design's own example words (``phrasebook.CORE_WORDS``) always stay in train."""
    core = sorted(set(words) & pb.CORE_WORDS)
    rest = sorted(set(words) - pb.CORE_WORDS)
    rng.shuffle(rest)
    n_out = min(len(rest), max(1 if len(words) >= 3 else 0, len(words) // every))
    return core + rest[n_out:], rest[:n_out]


def _key(word: str) -> str:
    return word.replace(" ", "").lower()


def _raw_pools() -> dict[str, tuple[list[str], int]]:
    """name -> (words, hold-out 1/every) before splitting."""
    pools: dict[str, tuple[list[str], int]] = {}
    for category in CATEGORIES:
        menus = list(lexicon.MENUS[category])
        menu_keys = {_key(m) for m in menus}
        synonyms = [w for w in lexicon.CATEGORY_SYNONYMS[category] if _key(w) not in menu_keys]
        pools[f"menu:{category}"] = (menus, 4)
        pools[f"cat:{category}"] = (synonyms, 4)
    pools.update({
        "places": (list(pb.PLACES), 4), "dongs": (list(pb.DONGS), 4), "stations": (list(pb.STATIONS), 4),
        "card_words": (list(lexicon.MEAL_CARD_WORDS), 4), "shop_prefixes": (list(lexicon.SHOP_NAME_PREFIXES), 4),
        "greet": (list(pb.GREETINGS), 6), "greet_tail": (list(pb.GREETING_TAILS), 6), "name": (list(pb.BOT_NAMES), 6),
        "who": (list(pb.WHO), 6), "bye": (list(pb.BYES), 6), "thanks": (list(pb.THANKS), 6),
        "topic": (list(pb.TOPICS), 6), "oos": (list(pb.OOS_SENTENCES), 6),
    })
    return pools


def make_pools(rng: random.Random) -> tuple[Pools, Pools]:
    train, test, held = {}, {}, {}
    for name, (words, every) in _raw_pools().items():
        keep, out = _split_words(words, rng, every)
        train[name], test[name] = keep, keep + out
        if out:
            held[name] = out
    # Shop names are prefix + stem like the catalog's; test names may use held-out prefixes.
    train["shops"] = _shop_names(rng, train["shop_prefixes"], 160)
    test["shops"] = _shop_names(rng, test["shop_prefixes"], 80)
    held["shops"] = _shop_names(rng, held["shop_prefixes"], 40)
    return Pools(train), Pools(test, held)


def _shop_names(rng: random.Random, prefixes, n: int) -> list[str]:
    stems = [s for ss in lexicon.SHOP_NAME_STEMS.values() for s in ss]
    names: set[str] = set()
    while len(names) < min(n, len(prefixes) * len(stems)):
        names.add(rng.choice(prefixes) + rng.choice(stems))
    return sorted(names)


# ------------------------------------------------------------------------------ spellings
def korean_number(value: int) -> str:
    """Korean reading of a won amount below 100,000,000: 15000 → 만오천, 5500 → 오천오백."""
    parts = []
    man, rest = divmod(value, 10000)
    if man:
        parts.append(("" if man == 1 else _small_korean(man)) + "만")
    if rest:
        parts.append(_small_korean(rest))
    return "".join(parts)


def _small_korean(value: int) -> str:
    out = []
    for unit, name in ((1000, "천"), (100, "백"), (10, "십"), (1, "")):
        digit, value = divmod(value, unit)
        if digit:
            out.append(("" if digit == 1 and name else _KO_DIGITS[digit]) + name)
    return "".join(out)


def spell_won(value: int, rng: random.Random, bare: bool = False) -> str:
    """One of the ways a child writes ``value`` won: "만원", "5천원", "8,000원", "칠천 원", "1만 2천원"."""
    style = rng.choice(("korean", "arabic", "comma", "mixed"))
    if style == "korean":
        text = korean_number(value)
        if value >= 10000 and value % 10000 and rng.random() < 0.3:
            man, rest = divmod(value, 10000)
            text = f"{'' if man == 1 else _small_korean(man)}만 {_small_korean(rest)}"
    elif style == "arabic":
        text = str(value)
    elif style == "comma":
        text = f"{value:,}"
    else:
        man, rest = divmod(value, 10000)
        thousands, hundreds = divmod(rest, 1000)
        text = (f"{man}만" if man else "") + (" " if man and rest and rng.random() < 0.3 else "")
        if thousands:
            text += f"{thousands}천"
        if hundreds:
            text += f"{hundreds // 100}백" if hundreds % 100 == 0 and rng.random() < 0.5 else str(hundreds)
    if bare:
        return text
    return text + (" 원" if rng.random() < 0.15 else "원")


def _budget_value(rng: random.Random) -> int:
    # Mostly a meal's worth (3,000-15,000 won), sometimes a snack or a bigger treat.
    roll = rng.random()
    if roll < 0.75:
        return rng.choice(range(3000, 15001, 500))
    if roll < 0.9:
        return rng.choice(range(1000, 3000, 500))
    return rng.choice(range(15000, 30001, 1000))


# ------------------------------------------------------------------------------- rendering
@dataclass
class Row:
    text: str
    intent: Intent
    entities: dict
    followup: FollowUp

    def as_json(self) -> dict:
        return {"text": self.text, "intent": self.intent.value, "entities": self.entities,
                "followup": self.followup.value}


class _Filler:
    """Fills one template's slots and records the gold entities the fillers imply."""

    _FIXED_POOLS = {"alcohol": pb.ALCOHOL, "bar": pb.BARS, "tobacco": pb.TOBACCO, "adult": pb.ADULT,
                    "gamble": pb.GAMBLE, "harm": pb.HARM, "context": pb.CONTEXTS}
    _PHRASE_POOLS = frozenset({"greet", "greet_tail", "name", "who", "bye", "thanks", "topic", "oos"})

    def __init__(self, pools: Pools, rng: random.Random, held_out_rate: float):
        self.pools, self.rng, self.held_out_rate = pools, rng, held_out_rate
        self.gold: dict = {}

    def pick(self, name: str) -> str:
        return self.pools.pick(name, self.rng, self.held_out_rate)

    def food_word(self, kind: str) -> str:
        """A menu name ("menu"), a category word ("cat") or either ("food"), any category."""
        category = self.rng.choice(CATEGORIES)
        if kind == "food":
            kind = "menu" if self.rng.random() < 0.5 else "cat"
        return self.pick(f"{kind}:{category}")

    def set_food(self, word: str) -> str:
        entry = VOCABULARY[_key(word)]
        self.gold["food_category"] = entry.category
        self.gold["menu_item"] = entry.menu
        return word

    def fill(self, slot: str) -> str:
        rng = self.rng
        if slot in ("food", "menu", "cat"):
            return self.set_food(self.food_word(slot))
        if slot == "nfood":   # the food in "X 말고 ...": rejected, so no gold
            return self.food_word("food")
        if slot == "menu2":   # the second menu of a comparison: the first one is the item
            return self.food_word("menu")
        if slot in ("budget", "budget_bare"):
            value = _budget_value(rng)
            self.gold["budget"] = value
            return spell_won(value, rng, bare=slot == "budget_bare")
        if slot == "card":
            self.gold["payment_method"] = "meal_card"
            return self.pick("card_words")
        if slot == "pay":
            cash = rng.random() < 0.5
            self.gold["payment_method"] = "cash" if cash else "card"
            return rng.choice(pb.CASH_WORDS if cash else pb.CARD_WORDS)
        if slot == "time":
            phrase, slot_value = rng.choice(pb.TIMES)
            self.gold["time_slot"] = slot_value
            return phrase
        if slot == "loc":
            return self._location()
        if slot == "shop":
            return self._shop()
        if slot == "store":
            self.gold["food_category"] = "편의점"
            return rng.choice(pb.STORES)
        if slot in self._PHRASE_POOLS:
            return self.pick(slot)
        if slot in self._FIXED_POOLS:
            return rng.choice(self._FIXED_POOLS[slot])
        raise KeyError(f"unknown slot {slot!r}")

    def _location(self) -> str:
        """A place phrase; the gold is its canonical spelling (place without spaces + relation)."""
        rng = self.rng
        kind = rng.random()
        particle = rng.choice(pb.PLACE_PARTICLES)
        if kind < 0.55:
            place, rel = self.pick("places"), rng.choice(pb.RELATIONS)
            canonical = f"{place.replace(' ', '')} {rel}"
            surface = f"{place}{'' if rng.random() < 0.25 else ' '}{rel}{particle}"
        elif kind < 0.75:
            dong = self.pick("dongs") + "동"
            canonical, surface = dong, f"{dong}{particle}"
        elif kind < 0.92:
            station = self.pick("stations") + "역"
            if rng.random() < 0.5:
                rel = rng.choice(pb.RELATIONS[:3])
                canonical, surface = f"{station} {rel}", f"{station} {rel}{particle}"
            else:
                canonical, surface = station, f"{station}{particle}"
        else:
            canonical, surface = "우리동네", f"우리 동네{particle}"
        self.gold["location"] = canonical
        return surface

    def _shop(self) -> str:
        rng = self.rng
        name = self.pick("shops")
        if rng.random() < 0.1:
            # Now and then the branch too, as the catalog writes it ("해피피자 역삼점").
            name = f"{name} {rng.choice(pb.DONGS)}점"
        self.gold["shop_name"] = name
        if rng.random() < 0.2:
            # Children sometimes put a space between the two parts of the name.
            for prefix in lexicon.SHOP_NAME_PREFIXES:
                if name.startswith(prefix) and len(name) > len(prefix):
                    return f"{prefix} {name[len(prefix):]}"
        return name


def _expand(template: str, rng: random.Random) -> str:
    template = _OPTIONAL.sub(lambda m: m.group(1) if rng.random() < 0.45 else "", template)
    return _CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), template)


def _has_batchim(ch: str) -> tuple[bool, bool]:
    """(has a final consonant, the final is ㄹ) for the syllable or digit before a particle."""
    if "가" <= ch <= "힣":
        final = (ord(ch) - 0xAC00) % 28
        return final != 0, final == 8
    if ch.isdigit():
        return ch in "0136789", ch in "178"
    return False, False


def apply_josa(text: str, before: str = "") -> str:
    """Resolve particle markers; ``before`` is the text preceding ``text`` (for a leading marker)."""
    def repl(m: re.Match) -> str:
        head = (before + text[:m.start()]).rstrip()
        batchim, rieul = _has_batchim(head[-1]) if head else (False, False)
        with_b, without_b = _JOSA[m.group(0)]
        if m.group(0) == "(으)로" and rieul:
            return without_b
        return with_b if batchim else without_b
    return _JOSA_PATTERN.sub(repl, text)


def render(template: str, pools: Pools, rng: random.Random, held_out_rate: float = 0.0) -> tuple[str, dict]:
    """Fill the slots, resolve particles, then rough up the template's own words.

    Noise never touches a slot filler, so the gold labels stay true to the text; a separate,
    rare typo in a food word keeps the classifier honest about misspelt foods.
    """
    filler = _Filler(pools, rng, held_out_rate)
    out: list[str] = []
    for part in re.split(r"(\{\w+\})", _expand(template, rng)):
        slot = _SLOT.fullmatch(part)
        if slot:
            word = filler.fill(slot.group(1))
            if slot.group(1) == "food" and rng.random() < FOOD_TYPO_RATE:
                word = jamo_typo(word, rng)
            out.append(word)
        elif part:
            out.append(_noisy_words(apply_josa(part, "".join(out)), rng))
    return "".join(out), filler.gold


# ------------------------------------------------------------------------------------ noise
def _noisy_words(text: str, rng: random.Random) -> str:
    """Slang endings and jamo typos, applied to template words only."""
    if rng.random() < 0.35:
        for plain, variants in pb.SLANG:
            if plain in text and rng.random() < 0.6:
                text = text.replace(plain, rng.choice(variants), 1)
    if rng.random() < 0.12:
        text = jamo_typo(text, rng)
    return text


def jamo_typo(text: str, rng: random.Random) -> str:
    """One realistic typo: a dropped or added final consonant, or a swapped vowel."""
    positions = [i for i, ch in enumerate(text) if "가" <= ch <= "힣"]
    if not positions:
        return text
    i = rng.choice(positions)
    code = ord(text[i]) - 0xAC00
    lead, vowel, final = code // 588, (code % 588) // 28, code % 28
    if final and rng.random() < 0.5:
        final = 0
    elif not final and rng.random() < 0.5:
        final = 21  # ㅇ: "뭐먹지" → "뭐먹징"
    elif vowel in _VOWEL_SWAPS:
        vowel = _VOWEL_SWAPS[vowel]
    else:
        return text
    return text[:i] + chr(0xAC00 + lead * 588 + vowel * 28 + final) + text[i + 1:]


def add_noise(text: str, intent: Intent, rng: random.Random) -> str:
    """Spacing, openers, laughter, crying and emoji, the way children type."""
    asks = (Intent.FOOD_RECOMMENDATION, Intent.BUDGET_INQUIRY, Intent.MENU_INQUIRY, Intent.SHOP_INFO)
    if intent in asks and rng.random() < 0.05:
        text = rng.choice(pb.GREETING_PREFIXES) + text   # "안녕 치킨 추천해줘" is still a request
    elif rng.random() < 0.18:
        text = rng.choice(pb.PREFIXES) + text
    roll = rng.random()
    if roll < 0.12:
        text = text.replace(" ", "")
    elif roll < 0.3:
        text = "".join(ch for ch in text if ch != " " or rng.random() < 0.6)
    if rng.random() < 0.45:
        suffix = rng.choice(pb.SUFFIXES)
        text = text.rstrip("?!. ") + suffix if rng.random() < 0.5 else text + suffix
    return text


# ------------------------------------------------------------------------------- generation
def split_templates(templates: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Every fourth template is test-only: the split is by phrasing, not by sentence."""
    train = [t for i, t in enumerate(templates) if i % 4 != 3]
    test = [t for i, t in enumerate(templates) if i % 4 == 3]
    return train, test


def generate_rows(n: int, split: str, pools: Pools, rng: random.Random,
                  exclude: frozenset[str] = frozenset()) -> list[Row]:
    """``n`` rows of one split; test rows are unique and never appear in ``exclude`` (train texts)."""
    held_out_rate = TEST_HELD_OUT_RATE if split == "test" else 0.0
    side = 0 if split == "train" else 1
    per_intent = {intent: split_templates(t)[side] for intent, t in pb.TEMPLATES.items()}
    intents, weights = zip(*pb.INTENT_SHARE.items())
    rows: list[Row] = []
    seen: set[str] = set()
    for _ in range(n * 50):
        if len(rows) >= n:
            break
        intent = rng.choices(intents, weights)[0]
        template = rng.choice(per_intent[intent])
        text, gold = render(template, pools, rng, held_out_rate)
        text = add_noise(text, intent, rng)
        if split == "test" and (text in seen or text in exclude):
            continue
        seen.add(text)
        entities = Entities(**gold).model_dump(mode="json")   # validates category and budget
        rows.append(Row(text, intent, entities, pb.FOLLOWUPS.get(template, FollowUp.NONE)))
    return rows


def _write_jsonl(rows: list[Row], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row.as_json(), ensure_ascii=False) + "\n")


def build_nlu_corpus(out_dir: Path, seed: int, n_train: int = 4000, n_test: int = 1000) -> dict:
    """Write ``nlu_train.jsonl`` and ``nlu_test.jsonl`` under ``out_dir``; return a summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    train_pools, test_pools = make_pools(rng)
    train = generate_rows(n_train, "train", train_pools, random.Random(seed + 1))
    test = generate_rows(n_test, "test", test_pools, random.Random(seed + 2), frozenset(r.text for r in train))
    _write_jsonl(train, out_dir / "nlu_train.jsonl")
    _write_jsonl(test, out_dir / "nlu_test.jsonl")
    summary = {
        "n_train": len(train), "n_test": len(test), "seed": seed,
        "templates": {i.value: len(t) for i, t in pb.TEMPLATES.items()},
        "train_intents": dict(Counter(r.intent.value for r in train)),
        "test_intents": dict(Counter(r.intent.value for r in test)),
    }
    log.info("NLU corpus: %d train / %d test rows in %s", len(train), len(test), out_dir)
    return summary
