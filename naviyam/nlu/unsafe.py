"""Unsafe words in a message, via ``naviyam.safety`` (one list of terms and one rule for the whole system)."""
from __future__ import annotations

from naviyam.safety import check_request
from naviyam.schemas import Preprocessed


def unsafe_terms(pre: Preprocessed) -> tuple[str, ...]:
    return check_request(pre).terms
