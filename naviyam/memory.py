"""Conversation memory: what was asked and shown, so follow-ups can refer back.

"거기 말고 다른 데는?" needs the previous turn's filters and shops; "더 싼 곳" needs their prices.
Each turn also stores the conversation's frame after it (``DialogueState``): the next turn
starts from it. One row per turn, keyed by the conversation (session id, or the user id when there is none).
A turn carries its request id, stored once: the graph router may retry an NLG call whose first try
was only slow, and both tries then finish (the interaction log is idempotent the same way).

Stored in SQLite (a path) or PostgreSQL (a DSN), naviyam.storage: several replicas may write the
same conversation at once, so a turn number taken twice is retried, never overwritten.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError

from naviyam.dialogue.state import DialogueState
from naviyam.schemas import SearchFilters
from naviyam.storage import TURNS, open_store, reader

WRITE_ATTEMPTS = 5

@dataclass(frozen=True)
class ShownShop:
    shop_id: str
    min_price: int
    distance_m: int | None


@dataclass(frozen=True)
class Turn:
    text: str
    response: str
    intent: str
    filters: SearchFilters
    shown: tuple[ShownShop, ...]
    state: DialogueState | None = None

    @property
    def category(self) -> str | None:
        return self.filters.category


class ConversationMemory:
    def __init__(self, target: Path | str, max_turns: int = 20):
        self._engine = open_store(target, "memory")
        self._max_turns = max_turns

    @staticmethod
    def conversation_key(user_id: str, session_id: str | None) -> str:
        return f"{user_id}/{session_id or 'default'}"

    def last_turn(self, conversation: str) -> Turn | None:
        t = TURNS.c
        query = (select(t.text, t.response, t.intent, t.filters, t.shown, t.state)
                 .where(t.conversation == conversation).order_by(t.turn_no.desc()).limit(1))
        with reader(self._engine).connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        shown = tuple(ShownShop(**s) for s in json.loads(row.shown))
        state = DialogueState.model_validate_json(row.state) if row.state else None
        return Turn(row.text, row.response, row.intent, SearchFilters.model_validate_json(row.filters), shown, state)

    def add_turn(self, conversation: str, user_id: str, created_at: str, text: str, response: str,
                 intent: str, filters: SearchFilters, shown: list[ShownShop], request_id: str | None = None,
                 state: DialogueState | None = None) -> bool:
        """Store a turn; False when a turn with this ``request_id`` is already stored (a retry)."""
        row = {"conversation": conversation, "user_id": user_id, "created_at": created_at, "text": text,
               "response": response, "intent": intent, "filters": filters.model_dump_json(),
               "shown": json.dumps([s.__dict__ for s in shown], ensure_ascii=False), "request_id": request_id,
               "state": state.model_dump_json() if state is not None else None}
        t = TURNS.c
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self._engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        # Replicas answering one conversation queue here instead of racing for
                        # the next turn number (SQLite's BEGIN IMMEDIATE already serialises).
                        conn.execute(sql("SELECT pg_advisory_xact_lock(hashtext(:c))"), {"c": conversation})
                    if request_id is not None and conn.execute(
                            select(t.turn_no).where(t.request_id == request_id)).first():
                        return False
                    last = conn.execute(select(func.coalesce(func.max(t.turn_no), 0))
                                        .where(t.conversation == conversation)).scalar_one()
                    conn.execute(TURNS.insert().values(turn_no=last + 1, **row))
                    # Keep memory bounded: follow-ups only ever look a few turns back.
                    conn.execute(delete(TURNS).where(t.conversation == conversation,
                                                     t.turn_no <= last + 1 - self._max_turns))
                return True
            except IntegrityError:
                # Another replica took this turn number, or stored this very request first.
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
        return False

    def close(self) -> None:
        self._engine.dispose()
