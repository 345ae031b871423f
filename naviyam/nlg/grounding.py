"""Grounding guard: an answer may only state what the recommendations (the data) say.

Applied to every answer before it leaves the system. Template answers pass by construction;
LLM answers that invent a shop, a menu, a price or a property fail and are replaced by the
template answer.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from naviyam.lexicon import MENUS
from naviyam.safety import check_text
from naviyam.schemas import Recommendation
from naviyam.shop_names import ShopNames

_PRICE = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)\s*원")
_LISTED_ITEM = re.compile(r"^\s*\d+[.)]\s*(.+?)\s*$", re.MULTILINE)
_MEAL_CARD_CLAIM = re.compile(r"(급식카드|아동카드|꿈나무카드)[^\n.!?·]{0,12}?(돼|되|가능|사용|쓸 수|OK)")
_NEGATION = re.compile(r"안\s?[돼되]|못|불가|없")
_GOOD_SHOP_CLAIM = re.compile(r"착한가게|선한영향력")
_ALL_MENU_NAMES = {name for menus in MENUS.values() for name in menus}


@dataclass
class GroundingReport:
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def check_grounding(
    text: str,
    recommendations: list[Recommendation],
    all_shop_names: Iterable[str],
    allowed_amounts: Iterable[int] = (),
    stated_words: Iterable[str] = (),
) -> GroundingReport:
    """``allowed_amounts``: numbers the answer may state besides menu prices (budget, balance);
    ``stated_words``: what the child said they avoid, which the answer may repeat ("치즈 빼고")."""
    stated = set(stated_words)
    report = GroundingReport()
    rec_names = {r.name for r in recommendations}
    prices = {m.price for r in recommendations for m in r.menus} | set(allowed_amounts)
    rec_menus = {m.name for r in recommendations for m in r.menus}

    # Blank out the recommended names first: "행복한치킨" is part of a recommended "행복한치킨 역삼점".
    rest = text
    for name in sorted(rec_names, key=len, reverse=True):
        rest = rest.replace(name, "\0")
    names = all_shop_names if isinstance(all_shop_names, ShopNames) else ShopNames(all_shop_names)
    for name in names.found_in(rest):
        if name not in rec_names:
            report.violations.append(f"mentions shop not recommended: {name}")
    for match in _LISTED_ITEM.finditer(text):
        item = match.group(1)
        if not any(item.startswith(n) or n in item for n in rec_names | rec_menus):
            report.violations.append(f"listed item not in recommendations: {item[:40]}")
    for match in _PRICE.finditer(text):
        amount = int(match.group(1).replace(",", ""))
        if amount not in prices:
            report.violations.append(f"price not in data: {match.group(0)}")
    for menu in _ALL_MENU_NAMES:
        if menu in text and menu not in rec_menus and menu not in stated and not _is_part_of_shown(menu, rec_menus | rec_names):
            report.violations.append(f"menu not shown for any recommended shop: {menu}")
    _check_properties(text, recommendations, report)
    verdict = check_text(text)
    if verdict.unsafe:
        report.violations.append("unsafe terms: " + ",".join(verdict.terms))
    return report


def _is_part_of_shown(menu: str, shown: set[str]) -> bool:
    # "떡볶이" inside a shown "치즈떡볶이" (or a shop called "…떡볶이") is not a new claim.
    return any(menu in s for s in shown)


def _mentions(text: str, recommendations: list[Recommendation]) -> list[tuple[int, Recommendation]]:
    """First position of each recommended name that is not part of a longer recommended name
    ("하늘식당" inside "하늘식당 문정점" is the other shop)."""
    covered: list[tuple[int, int]] = []
    found: list[tuple[int, Recommendation]] = []
    for rec in sorted(recommendations, key=lambda r: len(r.name), reverse=True):
        start = text.find(rec.name)
        while start != -1 and any(a <= start < b or a < start + len(rec.name) <= b for a, b in covered):
            start = text.find(rec.name, start + 1)
        if start != -1:
            covered.append((start, start + len(rec.name)))
            found.append((start, rec))
    return found


def _check_properties(text: str, recommendations: list[Recommendation], report: GroundingReport) -> None:
    """Claims about a shop (meal card, 착한가게) must hold for the shop the text is talking about."""
    positions = sorted(_mentions(text, recommendations), key=lambda p: p[0])
    for i, (start, rec) in enumerate(positions):
        end = positions[i + 1][0] if i + 1 < len(positions) else len(text)
        segment = text[start:end]
        for claim in _MEAL_CARD_CLAIM.finditer(segment):
            negative = bool(_NEGATION.search(claim.group(0)))
            if negative and rec.accepts_meal_card:
                report.violations.append(f"denies meal card for {rec.name}")
            elif not negative and not rec.accepts_meal_card:
                report.violations.append(f"claims meal card for {rec.name}")
        if _GOOD_SHOP_CLAIM.search(segment) and not rec.is_good_influence_shop:
            report.violations.append(f"claims 착한가게 for {rec.name}")
