"""Step 4 with the language model: message -> strict JSON {intent, entities, frame, confidence}.

    nlu = LLMNLU(llm, min_confidence=settings.nlu.min_confidence)
    result = nlu.parse(pre, shop_names)       # NLUResult(backend="llm") or None

``parse`` returns None (the caller falls back to the fast NLU) when the output is not exactly
one JSON object of the schema (unknown keys, unknown intent or category, a cut-off answer), when
generation fails or runs out of time, or when the confidence is below ``min_confidence``. The
confidence is the lower of what the model wrote and the probability the model gave the intent it
wrote, so a model that always writes 0.9 is still gated by how sure it really was.

Entities the message does not support (a shop, menu or place that is not in the text) are
dropped: a hallucinated entity would become a hard search filter.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from naviyam.dialogue import places
from naviyam.dialogue.acts import FrameUpdate
from naviyam.llm.prompts import nlu_prompt
from naviyam.nlu.budget import find_amounts
from naviyam.nlu.filters import semantic_query, to_filters
from naviyam.nlu.followup import detect_followup
from naviyam.nlu.frame import frame_update
from naviyam.outcomes import Outcomes
from naviyam.schemas import Entities, Intent, NLUResult, Preprocessed

log = logging.getLogger(__name__)


class StrictEntities(Entities):
    model_config = ConfigDict(extra="forbid")


class LLMNLUOutput(BaseModel):
    """The only shape accepted from the model."""

    model_config = ConfigDict(extra="forbid")
    intent: Intent
    entities: StrictEntities = Field(default_factory=StrictEntities)
    # The dialogue act and slot operations (the same contract the fast NLU fills); optional, so a
    # model trained before the frame existed still parses: the frame is then read from the entities.
    frame: FrameUpdate | None = None
    confidence: float = Field(ge=0.0, le=1.0)


class InvalidOutput(ValueError):
    pass


def parse_output(text: str) -> LLMNLUOutput:
    """Strict: the whole answer is one JSON object of the schema (surrounding spaces allowed)."""
    raw = text.strip()
    if not raw.startswith("{") or not raw.endswith("}"):
        raise InvalidOutput("not a JSON object")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidOutput("not a JSON object")
    try:
        return LLMNLUOutput.model_validate(data)
    except ValidationError as exc:
        raise InvalidOutput(f"schema: {exc.errors()[0]['msg']}") from exc


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def supported_entities(entities: Entities, text: str) -> Entities:
    """Drop entities the message does not state: a shop, menu or place not in the text, a budget
    that is not one of the amounts the text spells ("만원" -> 10000)."""
    squashed = _squash(text)
    update = {}
    for name in ("menu_item", "location"):
        value = getattr(entities, name)
        if value is not None and _squash(value) not in squashed:
            update[name] = None
    shop = entities.shop_name
    if shop is not None and _squash(shop) not in squashed:
        update["shop_name"] = None
    if entities.budget is not None and entities.budget not in {a.value for a in find_amounts(text)}:
        update["budget"] = None
    return entities.model_copy(update=update) if update else entities


def supported_frame(frame: FrameUpdate | None, entities: Entities, text: str) -> FrameUpdate | None:
    """The model's frame update when the message supports it, else None (read it from the entities).

    Food and money operations must agree with the supported entities (a hallucinated value would
    become a hard filter), and a place must be one the gazetteer finds in the message, with the
    gazetteer's coordinates, never the model's.
    """
    if frame is None:
        return None
    menus = {entities.menu_item} - {None}
    found = {p.place.name: p.place for p in places.find_places(text)}
    ops = []
    for op in frame.ops:
        value = getattr(op, "value", None)
        if op.slot == "category" and op.op == "set" and value != entities.food_category:
            return None
        if op.slot == "menu_items" and op.op in ("set", "add") and not set(value or []) <= menus:
            return None
        if op.slot == "budget" and op.op == "set" and value != entities.budget:
            return None
        if op.slot == "place" and op.op == "set":
            if value is None or value.name not in found:
                return None
            place = found[value.name]
            op = op.model_copy(update={"value": value.model_copy(update={"lat": place.lat, "lon": place.lon})})
        ops.append(op)
    return frame.model_copy(update={"ops": ops})


def intent_probability(generation, tokenizer, text: str, intent: str) -> float | None:
    """Probability the model gave to the tokens that spell the intent value (None if unknown)."""
    logprobs = getattr(generation, "logprobs", None)
    ids = getattr(generation, "token_ids", None)
    if not logprobs or not ids or tokenizer is None:
        return None
    start = text.find(intent)
    if start < 0:
        return None
    end = start + len(intent)
    total, used, prev = 0.0, 0, 0
    for k in range(len(ids)):
        upto = len(tokenizer.decode(ids[: k + 1], skip_special_tokens=True))
        if upto > start and prev < end and k < len(logprobs):
            total += logprobs[k]
            used += 1
        prev = upto
        if prev >= end:
            break
    return math.exp(total) if used else None


class LLMNLU:
    backend = "llm"

    def __init__(self, llm, min_confidence: float = 0.5, max_time: float | None = None):
        self.llm = llm
        self.min_confidence = min_confidence
        self.max_time = max_time
        self.stats = Outcomes()

    @property
    def version(self) -> str:
        return f"llm-nlu:{getattr(self.llm, 'version', 'unknown')}"

    def _generate(self, prompt: str, max_time: float | None):
        complete = getattr(self.llm, "complete", None)
        if complete is not None:
            return complete(prompt, task="nlu", max_time=max_time)
        return self.llm.generate(prompt, task="nlu")

    def parse(self, pre: Preprocessed, known_shop_names: Sequence[str] = (),
              max_time: float | None = None) -> NLUResult | None:
        del known_shop_names  # the message itself is the evidence; see supported_entities
        text = pre.original_text or pre.cleaned_text
        try:
            gen = self._generate(nlu_prompt(text), max_time if max_time is not None else self.max_time)
        except Exception as exc:  # noqa: BLE001 - busy, too long, CUDA OOM...: the fast NLU answers
            log.info("LLM NLU generation failed: %s", exc)
            self.stats.add("error")
            return None
        answer = gen if isinstance(gen, str) else gen.text
        if not isinstance(gen, str) and (gen.timed_out or not gen.finished):
            self.stats.add("timeout" if gen.timed_out else "truncated")
            return None
        try:
            out = parse_output(answer)
        except InvalidOutput as exc:
            log.info("LLM NLU output rejected (%s): %.120s", exc, answer)
            self.stats.add("invalid")
            return None
        confidence = out.confidence
        p_intent = intent_probability(gen, getattr(self.llm, "tokenizer", None), answer, out.intent.value)
        if p_intent is not None:
            confidence = min(confidence, p_intent)
        if confidence < self.min_confidence:
            self.stats.add("low_confidence")
            return None
        entities = supported_entities(Entities.model_validate(out.entities.model_dump()), text)
        followup = detect_followup(pre.cleaned_text)
        frame = supported_frame(out.frame, entities, pre.cleaned_text)
        if frame is None:
            frame = frame_update(out.intent, entities, followup, pre.cleaned_text)
        self.stats.add("ok")
        return NLUResult(
            intent=out.intent,
            entities=entities,
            confidence=round(confidence, 4),
            filters=to_filters(entities),
            semantic_query=semantic_query(entities, pre.keywords),
            followup=followup,
            frame=frame,
            backend=self.backend,
            intent_scores={out.intent.value: round(confidence, 4)},
        )
