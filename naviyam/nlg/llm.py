"""Step 7 with the language model, behind the grounding guard.

    answerer = LLMAnswerer(llm, all_shop_names=catalog_names, settings=llm_settings)
    text, used_llm, violations = answerer.answer(answer_input, question="급식카드 되는 치킨집 추천해줘")

The prompt carries the child's question (quoted, as data) and the grounded facts of the top
recommendations: names, menus with prices, meal card, 착한가게, opening hours, walking time.
The generated answer must pass ``check_grounding`` (no shop, menu, price or property that the
facts do not state; no unsafe words) plus a few checks of its own (finished in time, not empty,
names a recommended shop, no made-up "<name> <branch>점"). Otherwise, or on any error or time-out,
the template answer is used. The child-friendly normaliser is applied to either.

Greetings, goodbyes, off-topic and unsafe requests always get their fixed template answers.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from naviyam.llm.prompts import facts_block, nlg_prompt
from naviyam.llm.settings import LLMSettings
from naviyam.nlg.grounding import check_grounding
from naviyam.nlg.normalizer import normalise_for_children
from naviyam.nlg.templates import AnswerInput, allowed_amounts, compose_answer
from naviyam.outcomes import Outcomes
from naviyam.safety import check_text
from naviyam.schemas import Intent, Recommendation
from naviyam.shop_names import ShopNames

log = logging.getLogger(__name__)

TEMPLATE_ONLY = frozenset({Intent.GREETING, Intent.GOODBYE, Intent.OUT_OF_SCOPE, Intent.UNSAFE_REQUEST})
# "바삭치킨 역삼점"-like names: a word, a space, a branch ending in 점. Our catalog's naming; a
# name of that shape that is not a recommended shop is an invented one.
_BRANCH_NAME = re.compile(r"[가-힣A-Za-z0-9]{2,}\s([가-힣]{1,8}점)")
_NOT_BRANCHES = frozenset({"장점", "단점", "시점", "관점", "초점", "요점", "점점", "문제점", "공통점", "차이점",
                           "약점", "강점", "만점", "출발점", "중간점", "편의점"})
_MAX_CHARS = 1200


def extra_violations(text: str, recommendations: list[Recommendation]) -> list[str]:
    """Checks on top of ``check_grounding`` for generated (not template) text."""
    out = []
    if not text.strip():
        out.append("empty answer")
    if len(text) > _MAX_CHARS:
        out.append("answer too long")
    names = [r.name for r in recommendations]
    if recommendations and not any(n in text for n in names):
        out.append("names no recommended shop")
    rest = text
    for name in sorted(names, key=len, reverse=True):
        rest = rest.replace(name, "\0")
    for match in _BRANCH_NAME.finditer(rest):
        if match.group(1) not in _NOT_BRANCHES:
            out.append(f"mentions unknown shop: {match.group(0)}")
    return out


class LLMAnswerer:
    def __init__(self, llm, all_shop_names: Iterable[str], settings=None):
        self.llm = llm
        self.all_shop_names = all_shop_names if isinstance(all_shop_names, ShopNames) else ShopNames(all_shop_names)
        self.settings = settings or LLMSettings()
        self.stats = Outcomes()

    @property
    def version(self) -> str:
        return f"llm-nlg:{getattr(self.llm, 'version', 'unknown')}"

    def template(self, inp: AnswerInput) -> str:
        return normalise_for_children(compose_answer(inp), inp.nlu.entities.food_category)

    def _generate(self, prompt: str):
        complete = getattr(self.llm, "complete", None)
        if complete is not None:
            return complete(prompt, task="nlg", max_time=self.settings.nlg_timeout_s)
        return self.llm.generate(prompt, task="nlg")

    def answer(self, inp: AnswerInput, question: str) -> tuple[str, bool, list[str]]:
        """(text, used_llm, violations): the LLM's answer when it is grounded, else the template's."""
        if inp.nlu.intent in TEMPLATE_ONLY or (inp.safety is not None and inp.safety.unsafe) \
                or check_text(question).unsafe:
            self.stats.add("template_only")
            return self.template(inp), False, []
        recs = inp.recommendations[: self.settings.nlg_max_recommendations]
        facts = facts_block(inp.nlu.intent, inp.nlu.entities, recs, inp.profile, inp.nlu.followup.value,
                            inp.nlu.filters.meal_card)
        try:
            gen = self._generate(nlg_prompt(question, facts))
        except Exception as exc:  # noqa: BLE001 - busy, prompt too long, device error: the template answers
            log.info("LLM NLG failed: %s", exc)
            self.stats.add("error")
            return self.template(inp), False, [f"generation failed: {type(exc).__name__}"]
        raw = gen if isinstance(gen, str) else gen.text
        violations: list[str] = []
        if not isinstance(gen, str) and gen.timed_out:
            violations.append("generation timed out")
        elif not isinstance(gen, str) and not gen.finished:
            violations.append("generation cut off (no end of answer)")
        amounts = allowed_amounts(inp)
        text = normalise_for_children(raw.strip(), inp.nlu.entities.food_category)
        for candidate in (raw, text):
            violations += check_grounding(candidate, recs, self.all_shop_names, amounts).violations
            violations += extra_violations(candidate, recs)
        violations = list(dict.fromkeys(violations))
        if violations:
            log.info("LLM answer rejected: %s", "; ".join(violations[:5]))
            self.stats.add("rejected")
            return self.template(inp), False, violations
        self.stats.add("llm")
        return text, True, []
