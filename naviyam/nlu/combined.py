"""Step 4, combined: the LLM reads the message when it can, the fast NLU whenever it cannot.

    nlu = CombinedNLU(fast, LLMNLU(llm, min_confidence), timeout_s=settings.llm.nlu_timeout_s)
    result = nlu.parse(pre, shop_names)
    result.backend   # "llm" | "fast" (safety or no LLM) | "fast-fallback" (LLM failed or too slow)

Order: the fast NLU always runs first (a few ms). When it (or the shared safety check) finds an
unsafe request, that result is final and the LLM is not asked: unsafe detection never depends
on a generative model. Otherwise the LLM gets ``timeout_s``; no usable answer in time (invalid
JSON, low confidence, busy model, error) means the fast result, marked ``fast-fallback``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from naviyam.nlu.unsafe import unsafe_terms
from naviyam.outcomes import Outcomes
from naviyam.schemas import Intent, NLUResult, Preprocessed

log = logging.getLogger(__name__)


class CombinedNLU:
    backend = "combined"

    def __init__(self, fast, llm_nlu=None, timeout_s: float = 2.0):
        self.fast = fast
        self.llm_nlu = llm_nlu
        self.timeout_s = timeout_s
        self.stats = Outcomes()

    @property
    def version(self) -> str:
        if self.llm_nlu is None:
            return self.fast.version
        return f"{self.fast.version}+{self.llm_nlu.version}"

    def parse(self, pre: Preprocessed, known_shop_names: Sequence[str] = ()) -> NLUResult:
        fast = self.fast.parse(pre, known_shop_names)
        if fast.intent is Intent.UNSAFE_REQUEST or unsafe_terms(pre) or self.llm_nlu is None:
            self.stats.add("fast")
            return fast.model_copy(update={"backend": "fast"})
        start = time.perf_counter()
        try:
            result = self.llm_nlu.parse(pre, known_shop_names, max_time=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - the fast answer is always there
            log.warning("LLM NLU failed: %s", exc)
            result = None
        elapsed = time.perf_counter() - start
        if result is None or elapsed > self.timeout_s:
            self.stats.add("fast-fallback")
            return fast.model_copy(update={"backend": "fast-fallback"})
        self.stats.add("llm")
        return result.model_copy(update={"backend": "llm"})
