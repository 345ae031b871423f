"""How each call of an LLM-backed step ended (llm, fallback, rejected...), tallied per process.

A ``Counter`` so callers and tests read it as one (``nlu.stats["llm"]``); the lock is there
because the step runs on the serving thread pool, where ``+=`` on a dict entry is not atomic.
"""
from __future__ import annotations

import threading
from collections import Counter


class Outcomes(Counter):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(self, outcome: str) -> None:
        with self._lock:
            self[outcome] += 1
