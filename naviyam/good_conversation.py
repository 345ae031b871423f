"""Which logged turns are good conversations to teach the language model (LoRA).

One rule for every caller: the retrain pipeline's LoRA data (``naviyam.monitoring.live``) and
``naviyam train lora`` (``naviyam.llm.lora``). A turn is good when the child picked one of the
shown shops, rated it well on average (every rating of the turn counts: one 5 does not hide a 1),
and the answer came quickly enough to have been read.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

GOOD = "good"


@dataclass(frozen=True)
class GoodConversationRule:
    min_satisfaction: float = 4.0
    max_response_time_s: float = 3.0

    @classmethod
    def of(cls, llm_settings) -> "GoodConversationRule":
        return cls(llm_settings.good_min_satisfaction, llm_settings.good_max_response_time_s)

    def verdict(self, ratings: Iterable[float | None], selected: bool, response_time: float | None) -> str:
        """``"good"``, or why not: ``no_shop_selected``, ``low_satisfaction``, ``slow``."""
        if not selected:
            return "no_shop_selected"
        scores = [float(r) for r in ratings if r is not None and not math.isnan(float(r))]
        if not scores or sum(scores) / len(scores) < self.min_satisfaction:
            return "low_satisfaction"
        if float(response_time or 0.0) > self.max_response_time_s:
            return "slow"
        return GOOD
