"""The contract every NLU backend (fast classifier, LLM, combiner) satisfies."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from naviyam.schemas import NLUResult, Preprocessed


@runtime_checkable
class NLUBackend(Protocol):
    version: str

    def parse(self, pre: Preprocessed, known_shop_names: Sequence[str] = ()) -> NLUResult:
        """Intent, entities, follow-up, filters and retrieval query of one preprocessed message."""
        ...
