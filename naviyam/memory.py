"""SQLite conversation memory: what was asked and shown, so follow-ups can refer back.

"거기 말고 다른 데는?" needs the previous turn's filters and shops; "더 싼 곳" needs their prices.
Each turn also stores the conversation's frame after it (``DialogueState``): the next turn
starts from it. One row per turn, keyed by the conversation (session id, or the user id when there is none).
A turn carries its request id, stored once: the graph router may retry an NLG call whose first try
was only slow, and both tries then finish (the interaction log is idempotent the same way).
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from naviyam.dialogue.state import DialogueState
from naviyam.schemas import SearchFilters

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL,
    turn_no INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    text TEXT NOT NULL,
    response TEXT NOT NULL,
    intent TEXT NOT NULL,
    filters TEXT NOT NULL,
    shown TEXT NOT NULL,
    request_id TEXT,
    state TEXT,
    PRIMARY KEY (conversation, turn_no)
)
"""
_REQUEST_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS turns_request ON turns(request_id)"


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
    def __init__(self, path: Path, max_turns: int = 20):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(turns)")}
        if "request_id" not in columns:  # a memory file from before request ids: add the column
            self._conn.execute("ALTER TABLE turns ADD COLUMN request_id TEXT")
        if "state" not in columns:  # from before the dialogue frame: old turns have none
            self._conn.execute("ALTER TABLE turns ADD COLUMN state TEXT")
        self._conn.execute(_REQUEST_INDEX)
        self._lock = threading.Lock()
        self._max_turns = max_turns

    @staticmethod
    def conversation_key(user_id: str, session_id: str | None) -> str:
        return f"{user_id}/{session_id or 'default'}"

    def last_turn(self, conversation: str) -> Turn | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT text, response, intent, filters, shown, state FROM turns WHERE conversation=? "
                "ORDER BY turn_no DESC LIMIT 1",
                (conversation,),
            ).fetchone()
        if row is None:
            return None
        shown = tuple(ShownShop(**s) for s in json.loads(row[4]))
        state = DialogueState.model_validate_json(row[5]) if row[5] else None
        return Turn(row[0], row[1], row[2], SearchFilters.model_validate_json(row[3]), shown, state)

    def add_turn(self, conversation: str, user_id: str, created_at: str, text: str, response: str,
                 intent: str, filters: SearchFilters, shown: list[ShownShop], request_id: str | None = None,
                 state: DialogueState | None = None) -> bool:
        """Store a turn; False when a turn with this ``request_id`` is already stored (a retry)."""
        shown_json = json.dumps([s.__dict__ for s in shown], ensure_ascii=False)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if request_id is not None and self._conn.execute(
                        "SELECT 1 FROM turns WHERE request_id=?", (request_id,)).fetchone():
                    self._conn.execute("ROLLBACK")
                    return False
                (last,) = self._conn.execute(
                    "SELECT COALESCE(MAX(turn_no), 0) FROM turns WHERE conversation=?", (conversation,)
                ).fetchone()
                self._conn.execute(
                    "INSERT INTO turns (conversation, turn_no, user_id, created_at, text, response, intent, filters,"
                    " shown, request_id, state) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (conversation, last + 1, user_id, created_at, text, response, intent,
                     filters.model_dump_json(), shown_json, request_id,
                     state.model_dump_json() if state is not None else None),
                )
                # Keep memory bounded: follow-ups only ever look a few turns back.
                self._conn.execute(
                    "DELETE FROM turns WHERE conversation=? AND turn_no<=?", (conversation, last + 1 - self._max_turns)
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return True

    def close(self) -> None:
        self._conn.close()
