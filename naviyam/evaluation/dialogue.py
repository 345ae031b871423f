"""Whole conversations, checked turn by turn: turn success and joint goal accuracy.

A corpus line is one conversation: {"id", "user", "turns": [{"text", "check", "state"}], optional
"ts" (ISO local time of every turn) and "lat"/"lon" (device position)}. ``check`` names what a
child relies on in that turn's answer (the vocabulary is in ``CHECKS``); ``state`` is the gold frame
after the turn in ``DialogueState.goal()``'s vocabulary. Joint goal accuracy (as in MultiWOZ) counts
a turn only when every slot of the tracked frame equals the gold one.

    report = evaluate_dialogues(turn_fn, conversations, shop_locations)

``turn_fn(body) -> (answer dict, goal dict | None)`` runs one turn: in-process here
(``naviyam eval dialogue``) or through the served graph.
"""
from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from naviyam.bounds import TRAFFIC_HEADER
from naviyam.clock import Clock
from naviyam.schemas import UserInput

DEFAULT_TS = "2026-12-02T15:40:00"   # a Wednesday after school: corpus turns pin their clock
CORPUS_DIR = Path(__file__).parent / "dialogues"
CHECKS = ("cat", "card", "good", "item_max", "allergen_free", "walk_max", "open_at", "menu_has", "near", "sorted_walk",
          "new_shops", "recs_min", "recs_max", "text_any", "text_none", "ref_name", "ref_open", "ref_close", "ref_walk",
          "ref_address")
_SHOP_CHECKS = ("cat", "card", "good", "item_max", "allergen_free", "walk_max", "open_at", "menu_has", "near",
                "sorted_walk", "new_shops")
TurnFn = Callable[[dict], "tuple[dict, dict | None]"]


@dataclass
class DialogueReport:
    turns: int = 0
    passed: int = 0
    goal_turns: int = 0
    goal_matched: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def turn_success(self) -> float:
        return self.passed / self.turns if self.turns else 0.0

    @property
    def joint_goal_accuracy(self) -> float:
        return self.goal_matched / self.goal_turns if self.goal_turns else 0.0

    def summary(self) -> dict:
        return {"turns": self.turns, "turn_success": round(self.turn_success, 4),
                "joint_goal_accuracy": round(self.joint_goal_accuracy, 4), "goal_turns": self.goal_turns,
                "failed_turns": len(self.failures)}


def load_corpus(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        unknown = {k for t in row["turns"] for k in t.get("check", {})} - set(CHECKS)
        if unknown:
            raise ValueError(f"{row.get('id')}: unknown checks {sorted(unknown)}")
    return rows


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 6371 * 2 * math.asin(math.sqrt(h))


def open_at(hours: str | None, hhmm: str) -> bool:
    m = re.match(r"(\d\d):(\d\d)-(\d\d):(\d\d)", hours or "")
    if not m:
        return False
    start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    t = int(hhmm[:2]) * 60 + int(hhmm[3:])
    return start <= t < end if start < end else (t >= start or t < end)


def check_turn(check: dict, answer: dict, previous: dict, shops: dict[str, tuple[float, float]]) -> list[str]:
    """What in ``answer`` breaks ``check`` (empty when the turn passes)."""
    recs = answer.get("recommendations") or []
    text = answer.get("response") or ""
    bad: list[str] = []
    if "recs_min" in check and len(recs) < check["recs_min"]:
        bad.append(f"{len(recs)} recs < {check['recs_min']}")
    if "recs_max" in check and len(recs) > check["recs_max"]:
        bad.append(f"{len(recs)} recs > {check['recs_max']}")
    if any(k in check for k in _SHOP_CHECKS) and not recs and "recs_min" not in check and "recs_max" not in check:
        bad.append("no recs")
    for rec in recs:
        bad += _shop_problems(check, rec, shops)
    if check.get("sorted_walk"):
        walks = [r.get("walk_minutes") or 999 for r in recs]
        if walks != sorted(walks):
            bad.append(f"not nearest first: {walks}")
    if check.get("new_shops"):
        before = {r.get("shop_id") for r in previous.get("recommendations") or []}
        again = [r.get("name") for r in recs if r.get("shop_id") in before]
        if again:
            bad.append(f"repeats {again[:2]}")
    bad += _reference_problems(check, text, previous.get("recommendations") or [])
    if check.get("text_any") and not any(t in text for t in check["text_any"]):
        bad.append(f"answer has none of {check['text_any']}")
    bad += [f"answer says {t!r}" for t in check.get("text_none", []) if t in text]
    return bad


def _shop_problems(check: dict, rec: dict, shops: dict[str, tuple[float, float]]) -> list[str]:
    name, menus, bad = rec.get("name"), rec.get("menus") or [], []
    if "cat" in check and rec.get("category") != check["cat"]:
        bad.append(f"{name}: category {rec.get('category')}")
    if check.get("card") and not rec.get("accepts_meal_card"):
        bad.append(f"{name}: no meal card")
    if check.get("good") and not rec.get("is_good_influence_shop"):
        bad.append(f"{name}: not good-influence")
    if "item_max" in check and not any(m.get("price", 1e12) <= check["item_max"] for m in menus):
        bad.append(f"{name}: no shown item <= {check['item_max']}")
    for allergen in check.get("allergen_free", []):
        hit = [m["name"] for m in menus if allergen in (m.get("allergens") or [])]
        if hit:
            bad.append(f"{name}: shows {hit[0]} with {allergen}")
    if "walk_max" in check and (rec.get("walk_minutes") or 999) > check["walk_max"]:
        bad.append(f"{name}: {rec.get('walk_minutes')} min walk")
    if "open_at" in check and not open_at(rec.get("opening_hours"), check["open_at"]):
        bad.append(f"{name}: {rec.get('opening_hours')} not open at {check['open_at']}")
    if "menu_has" in check and not any(re.search(check["menu_has"], m.get("name", "")) for m in menus):
        bad.append(f"{name}: no shown menu matching {check['menu_has']}")
    if "near" in check:
        lat, lon, limit = check["near"]
        where = shops.get(rec.get("shop_id"))
        if where is None or km((lat, lon), where) > limit:
            bad.append(f"{name}: not within {limit} km of the place")
    return bad


def _reference_problems(check: dict, text: str, shown: list[dict]) -> list[str]:
    bad = []
    for key in ("ref_name", "ref_open", "ref_close", "ref_walk", "ref_address"):
        if key not in check:
            continue
        k = check[key]
        if k == 0 or len(shown) < abs(k):
            bad.append(f"{key}: previous answer showed {len(shown)} shops")
            continue
        ref = shown[k - 1] if k > 0 else shown[k]
        hours = (ref.get("opening_hours") or "-").split("-")
        want = {"ref_name": ref.get("name"), "ref_open": hours[0], "ref_close": hours[-1],
                "ref_walk": f"{ref.get('walk_minutes')}분", "ref_address": ref.get("address")}[key]
        if not want or want not in text:
            bad.append(f"{key}: {want!r} not in answer")
    return bad


def evaluate_dialogues(turn_fn: TurnFn, conversations: Iterable[dict],
                       shops: dict[str, tuple[float, float]]) -> DialogueReport:
    report = DialogueReport()
    for conv in conversations:
        session = "eval-" + uuid.uuid4().hex[:10]
        previous: dict = {}
        for turn in conv["turns"]:
            body = {"user_id": conv["user"], "text": turn["text"], "session_id": session,
                    "timestamp": conv.get("ts", DEFAULT_TS)}
            if "lat" in conv:
                body.update(lat=conv["lat"], lon=conv["lon"])
            answer, goal = turn_fn(body)
            report.turns += 1
            bad = check_turn(turn.get("check", {}), answer, previous, shops)
            if bad:
                report.failures.append(f"{conv['id']}: {turn['text']!r}: " + "; ".join(bad[:3]))
            else:
                report.passed += 1
            if "state" in turn:
                report.goal_turns += 1
                if goal == turn["state"]:
                    report.goal_matched += 1
                else:
                    report.failures.append(f"{conv['id']} (state): {turn['text']!r}: {goal} != gold {turn['state']}")
            previous = answer
    return report


def in_process_turn(bot) -> TurnFn:
    """A ``TurnFn`` over a NaviyamChatbot: the answer as the graph returns it, and the frame's goal.

    Each turn is replayed at its recorded time: the bot's server clock is pinned to the turn's
    timestamp, so a conversation written for "Wednesday 15:40" is judged at 15:40 whenever the
    evaluation runs (the device clock alone is only believed near the server's)."""
    def run(body: dict):
        user_input = UserInput.model_validate(body)
        bot.clock = Clock(user_input.timestamp)
        response = bot.process(user_input, traffic="eval")
        return response.model_dump(mode="json"), response.metadata.dialogue_state

    return run


def served_turn(url: str, timeout_s: float = 60.0) -> TurnFn:
    """A ``TurnFn`` through the served graph (POST the chat request to the router)."""
    import httpx

    def run(body: dict):
        resp = httpx.post(url, json=body, timeout=timeout_s, headers={TRAFFIC_HEADER: "eval"})
        if resp.status_code != 200:
            return {"response": f"HTTP {resp.status_code}", "recommendations": []}, None
        answer = resp.json()
        return answer, (answer.get("metadata") or {}).get("dialogue_state")

    return run
